"""Robustness perturbations: identity at the first level, monotone effects, seeded noise, the
mouth occluder's position, and the accuracy-curve table on a stub predictor (no data)."""

import numpy as np
import pytest

from face_sentiment.evaluation import plots
from face_sentiment.evaluation import robustness as rb


@pytest.fixture
def faces():
    rng = np.random.default_rng(0)
    return rng.integers(30, 220, (4, 48, 48)).astype(np.uint8)


@pytest.mark.parametrize("name", list(rb.PERTURBATIONS))
def test_first_level_is_the_identity(faces, name):
    identity = rb.PERTURBATIONS[name][1][0]
    out = rb.perturb(faces, name, identity)
    assert out.dtype == np.uint8 and out.shape == faces.shape
    tolerance = 3 if name == "jpeg" else 0  # quality 100 is near-lossless
    assert np.abs(out.astype(int) - faces).mean() <= tolerance


def test_effects_go_the_right_way(faces):
    assert rb.brightness(faces, 0.5).mean() < faces.mean()
    assert rb.gamma(faces, 2.0).mean() < faces.mean() < rb.gamma(faces, 0.5).mean()
    assert rb.contrast(faces, 0.5).std() < faces.std()
    assert rb.blur(faces, 2.0).std() < faces.std()
    assert rb.rescale(faces, 12).std() < faces.std()
    noisy = rb.gaussian_noise(faces, 20.0, seed=1)
    assert np.array_equal(noisy, rb.gaussian_noise(faces, 20.0, seed=1))
    assert not np.array_equal(noisy, rb.gaussian_noise(faces, 20.0, seed=2))


def test_occlude_mouth_covers_the_lower_middle(faces):
    covered = rb.occlude_mouth(faces)
    changed = (covered != faces).any(0)
    rows, cols = np.nonzero(changed)
    assert rows.min() >= 28 and rows.max() <= 42  # FER2013 mouth at 0.757 of 48 = 36
    assert cols.min() >= 10 and cols.max() <= 37
    assert np.array_equal(covered[:, :20], faces[:, :20])  # eyes untouched


class Threshold:
    """Predicts class 1 when a face's mean grey is above 128, else 0."""

    name = "threshold"
    classes = ("dark", "light")

    def predict(self, faces):
        light = faces.reshape(len(faces), -1).mean(1) > 128
        return np.stack([~light, light], 1).astype(float)


def test_accuracy_curves_and_summary():
    faces = np.concatenate([np.full((5, 48, 48), 60, np.uint8), np.full((5, 48, 48), 200,
                                                                         np.uint8)])
    labels = np.repeat([0, 1], 5)
    subset = {"brightness": rb.PERTURBATIONS["brightness"]}
    curves = rb.accuracy_curves([Threshold()], faces, labels, subset)
    assert len(curves) == len(subset["brightness"][1])
    assert curves.iloc[0].accuracy == 1.0 and curves.iloc[0].unchanged == 1.0
    darkest = curves[curves.level == 0.25].iloc[0]
    assert darkest.accuracy == 0.5  # light faces become dark
    summary = rb.summary_table(curves)
    assert summary.loc[("brightness", "threshold"), "drop"] == pytest.approx(0.5)
    assert plots.plot_curves(curves) is not None


def test_sample_split_is_seeded():
    class Data:
        def select(self, split):
            return np.arange(100)[:, None, None].astype(np.uint8), np.arange(100)

    a = rb.sample_split(Data(), "PrivateTest", 10, seed=3)
    b = rb.sample_split(Data(), "PrivateTest", 10, seed=3)
    assert np.array_equal(a[1], b[1]) and len(a[1]) == 10


def test_reader_summary_in_percent_with_the_worst_level():
    faces = np.concatenate([np.full((5, 48, 48), 60, np.uint8), np.full((5, 48, 48), 200,
                                                                         np.uint8)])
    labels = np.repeat([0, 1], 5)
    curves = rb.accuracy_curves([Threshold()], faces, labels,
                                {"brightness": rb.PERTURBATIONS["brightness"]})
    row = rb.reader_summary(curves).loc[("brightness", "threshold")]
    assert row["clean (%)"] == 100.0 and row["worst (%)"] == 50.0
    assert row["drop (points)"] == pytest.approx(50.0)
    assert row["at level"] in (0.25, 0.5)
