"""Quality features on hand-made images, and exact-duplicate grouping."""

import cv2
import numpy as np
import pytest

from face_sentiment.data.quality import (
    QUALITY_COLUMNS,
    duplicate_groups,
    duplicate_summary,
    quality_features,
)
from face_sentiment.labels import SPLITS


def features_of(image):
    frame = quality_features(image[np.newaxis])
    assert list(frame.columns) == list(QUALITY_COLUMNS) and len(frame) == 1
    return frame.iloc[0]


def test_constant_image():
    row = features_of(np.full((48, 48), 100, np.uint8))
    assert row.brightness == pytest.approx(100)
    assert row.contrast == 0 and row.sharpness == 0
    assert row.clipped_fraction == 0
    assert row.near_blank


@pytest.mark.parametrize("value", [0, 255])
def test_saturated_constant_image_is_fully_clipped(value):
    row = features_of(np.full((48, 48), value, np.uint8))
    assert row.clipped_fraction == 1.0 and row.near_blank


def test_checkerboard():
    board = (np.indices((48, 48)).sum(axis=0) % 2 * 255).astype(np.uint8)
    row = features_of(board)
    assert row.brightness == pytest.approx(127.5)
    assert row.contrast == pytest.approx(127.5)
    assert row.clipped_fraction == 1.0
    assert not row.near_blank
    # Every interior pixel's four neighbours hold the opposite value: the Laplacian is +1020 on
    # the 0 squares and -1020 on the 255 squares, half each over the 46x46 interior, so its
    # mean is 0 and its variance 1020**2.
    assert row.sharpness == pytest.approx(1020.0**2)


def test_vertical_step_edge():
    step = np.zeros((48, 48), np.uint8)
    step[:, 24:] = 100
    row = features_of(step)
    assert row.brightness == pytest.approx(50)
    assert row.contrast == pytest.approx(50)
    assert row.clipped_fraction == pytest.approx(0.5)  # the zeros; 100 is not clipped
    # Per interior row (46 columns) the Laplacian is +100 at column 23, -100 at column 24 and 0
    # elsewhere: mean 0, variance 2 * 100**2 / 46.
    assert row.sharpness == pytest.approx(2 * 100**2 / 46)


@pytest.mark.parametrize("high, near_blank", [(103, True), (105, False)])
def test_near_blank_threshold(high, near_blank):
    image = np.full((48, 48), 100, np.uint8)
    image[:, 24:] = high  # std = (high - 100) / 2: 1.5 or 2.5 against the 2.0 threshold
    row = features_of(image)
    assert row.contrast == pytest.approx((high - 100) / 2)
    assert bool(row.near_blank) is near_blank


def test_sharpness_matches_cv2_laplacian_on_the_interior():
    images = np.random.default_rng(1).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    expected = [
        cv2.Laplacian(image.astype(np.float32), cv2.CV_32F, ksize=1)[1:-1, 1:-1].var()
        for image in images
    ]
    np.testing.assert_allclose(quality_features(images).sharpness, expected, rtol=1e-4)


def test_one_row_per_image_in_order():
    images = np.stack([np.full((48, 48), v, np.uint8) for v in (10, 200, 30)])
    frame = quality_features(images)
    np.testing.assert_allclose(frame.brightness, [10, 200, 30])


# --- duplicates ------------------------------------------------------------------------------

def make_duplicates():
    rng = np.random.default_rng(7)
    a, b, c, d = rng.integers(0, 256, (4, 48, 48), dtype=np.uint8)
    almost_a = a.copy()
    almost_a[0, 0] ^= 1  # one bit off: not a duplicate
    images = np.stack([a, b, a, c, b, a, d, a, almost_a])
    splits = np.array([0, 0, 0, 1, 0, 2, 1, 2, 1], dtype=np.int8)
    return images, splits


def test_duplicate_groups():
    images, _ = make_duplicates()
    groups = duplicate_groups(images)
    assert groups.dtype == np.int64 and groups.shape == (9,)
    assert groups[[3, 6, 8]].tolist() == [-1, -1, -1]  # c, d and the near-copy of a
    assert len(set(groups[[0, 2, 5, 7]])) == 1  # every copy of a
    assert groups[1] == groups[4]  # both copies of b
    assert groups[0] != groups[1] and groups[0] >= 0 and groups[1] >= 0


def test_duplicate_summary():
    images, splits = make_duplicates()
    summary = duplicate_summary(duplicate_groups(images), splits, SPLITS)
    assert summary == {
        "duplicate_groups": 2,  # a and b
        "images_in_groups": 6,
        # Training: a twice (1 pair) and b twice (1 pair); PrivateTest: a twice (1 pair).
        "within_split_pairs": {"Training": 2, "PublicTest": 0, "PrivateTest": 1},
        "cross_split_groups": 1,  # a is in Training and PrivateTest
    }


def test_no_duplicates():
    images = np.random.default_rng(3).integers(0, 256, (4, 48, 48), dtype=np.uint8)
    groups = duplicate_groups(images)
    assert groups.tolist() == [-1] * 4
    summary = duplicate_summary(groups, np.array([0, 1, 2, 0], np.int8), SPLITS)
    assert summary["duplicate_groups"] == 0 and summary["cross_split_groups"] == 0
    assert summary["within_split_pairs"] == dict.fromkeys(SPLITS, 0)
