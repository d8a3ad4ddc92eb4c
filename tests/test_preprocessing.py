"""The single preprocessing definition: shapes, dtypes and each lighting normalisation."""

import json

import numpy as np
import pytest
from synthetic import random_faces

from face_sentiment.preprocessing import METHODS, PreprocessingSpec, preprocess_faces


@pytest.fixture
def faces():
    return random_faces(4, seed=5)


@pytest.mark.parametrize("method", METHODS)
def test_array_of_48x48_faces(method, faces):
    out = preprocess_faces(faces, PreprocessingSpec(method))
    assert out.shape == (4, 48, 48, 1) and out.dtype == np.float32
    assert np.isfinite(out).all()


def test_list_of_larger_bgr_and_gray_crops_is_resized():
    rng = np.random.default_rng(6)
    crops = [
        rng.integers(0, 256, (120, 100, 3), dtype=np.uint8),  # BGR, shrunk
        rng.integers(0, 256, (30, 30), dtype=np.uint8),  # grayscale, enlarged
        np.full((96, 96, 3), 200, np.uint8),
    ]
    out = preprocess_faces(crops, PreprocessingSpec("scale"))
    assert out.shape == (3, 48, 48, 1) and out.dtype == np.float32
    # A flat BGR (200, 200, 200) crop stays flat grey 200 after conversion and resizing.
    np.testing.assert_allclose(out[2], 200 / 127.5 - 1, atol=1e-6)


def test_other_size():
    out = preprocess_faces([np.zeros((80, 80), np.uint8)], PreprocessingSpec(size=64))
    assert out.shape == (1, 64, 64, 1)


def test_empty_input():
    assert preprocess_faces([]).shape == (0, 48, 48, 1)


def test_standardize_gives_zero_mean_unit_std(faces):
    out = preprocess_faces(faces)  # the default spec standardizes
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), 1, rtol=1e-4)


@pytest.mark.parametrize("value", [0, 128, 255])
def test_standardize_flat_image_maps_to_zeros(value):
    out = preprocess_faces(np.full((1, 48, 48), value, np.uint8))
    assert not np.isnan(out).any()
    np.testing.assert_array_equal(out, 0.0)


def test_scale_maps_0_to_minus_1_and_255_to_1():
    image = np.zeros((1, 48, 48), np.uint8)
    image[0, :, 24:] = 255
    out = preprocess_faces(image, PreprocessingSpec("scale"))[0, :, :, 0]
    np.testing.assert_array_equal(out[:, :24], -1.0)
    np.testing.assert_array_equal(out[:, 24:], 1.0)


@pytest.mark.parametrize("method", ["clahe", "histeq"])
def test_equalisation_spreads_a_narrow_histogram(method):
    # Values 100..131 only: equalisation must stretch them over a much wider range.
    image = (100 + np.indices((48, 48)).sum(axis=0) % 32).astype(np.uint8)[np.newaxis]
    out = preprocess_faces(image, PreprocessingSpec(method))
    plain = preprocess_faces(image, PreprocessingSpec("scale"))
    assert out.shape == (1, 48, 48, 1)
    assert np.ptp(out) > 2 * np.ptp(plain)
    assert out.min() >= -1.0 and out.max() <= 1.0


def test_non_uint8_array_is_rejected():
    with pytest.raises(ValueError, match="must be uint8"):
        preprocess_faces(np.zeros((2, 48, 48), np.float32))


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown preprocessing method 'zscore'"):
        PreprocessingSpec("zscore")
    with pytest.raises(ValueError, match="unknown preprocessing method"):
        PreprocessingSpec.from_dict({"method": "zscore"})


def test_spec_round_trips_through_a_dict_and_json():
    spec = PreprocessingSpec("clahe", size=64, clahe_clip_limit=3.5, clahe_tile_grid=8)
    assert spec.to_dict() == {"method": "clahe", "size": 64, "clahe_clip_limit": 3.5,
                              "clahe_tile_grid": 8}
    assert PreprocessingSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_from_dict_ignores_unknown_keys_and_fills_defaults():
    spec = PreprocessingSpec.from_dict({"method": "histeq", "model_version": 3})
    assert spec == PreprocessingSpec("histeq")
    assert PreprocessingSpec.from_dict({}) == PreprocessingSpec()
