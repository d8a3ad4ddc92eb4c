"""Explainability on a tiny untrained CNN (no data, no shipped model): shapes of SHAP and
Grad-CAM maps, example picking, class averages and the weight-randomisation check."""

import numpy as np
import pandas as pd
import pytest

from face_sentiment.model.architecture import build_model
from face_sentiment.responsible import explainability as ex
from face_sentiment.responsible import plots

pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="module")
def model():
    return build_model(augment=False, stem_filters=4, stage_filters=(4, 4, 4, 4), seed=0)


@pytest.fixture(scope="module")
def inputs():
    return np.random.default_rng(0).normal(0, 1, (3, 48, 48, 1)).astype(np.float32)


@pytest.mark.slow
def test_shap_and_grad_cam_maps(model, inputs):
    shap_maps = ex.shap_values(model, inputs, inputs, [0, 3, 6], samples=8)
    assert shap_maps.shape == (3, 48, 48) and np.isfinite(shap_maps).all()
    cams = ex.grad_cam(model, inputs, [0, 3, 6])
    assert cams.shape == (3, 48, 48)
    assert cams.min() >= 0 and cams.max() <= 1 + 1e-6


def test_randomised_copy_changes_every_weight_and_keeps_the_model(model, inputs):
    copy = ex.randomised_copy(model, seed=1)
    for before, after in zip(model.get_weights(), copy.get_weights(), strict=True):
        assert before.shape == after.shape and not np.allclose(before, after)
    assert model.predict(inputs, verbose=0).shape == copy.predict(inputs, verbose=0).shape


def test_rank_similarity():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2, 8, 8))
    assert ex.rank_similarity(a, a) == pytest.approx([1.0, 1.0])
    flat = np.zeros((1, 8, 8))
    assert np.isnan(ex.rank_similarity(a[:1], flat)[0])


def test_pick_examples_and_class_average():
    labels = np.array([0, 0, 1, 1, 2])
    probabilities = np.eye(3)[[0, 1, 1, 1, 0]]
    chosen = ex.pick_examples(np.zeros((5, 48, 48)), labels, probabilities, per_class=1)
    assert chosen[0] == 0 and chosen[1] in (2, 3)  # correctly classified faces first
    assert set(labels[chosen]) == {0, 1, 2}  # class 2 has no correct face: falls back
    maps = np.arange(5, dtype=float)[:, None, None] * np.ones((5, 2, 2))
    means = ex.class_average_maps(maps, labels, 4)
    assert means[0, 0, 0] == 0.5 and means[1, 0, 0] == 2.5 and np.isnan(means[3]).all()


def test_region_shares_by_hand():
    """Class 0: all mass in the top half; class 1: 1 above, 3 below (|-3| counts); class 2 has
    no faces (NaN map)."""
    maps = np.zeros((3, 4, 2))
    maps[0, :2] = 1.0
    maps[1, 0, 0], maps[1, 3, 1] = 1.0, -3.0
    maps[2] = np.nan
    table = ex.region_shares(maps, np.array([0, 0, 1]), ["a", "b", "c"])
    assert table.index.name == "class" and list(table.index) == ["a", "b", "c"]
    assert table.upper_half_share.tolist()[:2] == [1.0, 0.25]
    assert table.lower_half_share.tolist()[:2] == [0.0, 0.75]
    assert table.loc["c"][["upper_half_share", "lower_half_share"]].isna().all()
    assert table.faces.tolist() == [2, 1, 0]
    flat = ex.region_shares(np.zeros((1, 4, 2)), np.array([0]), ["a"])
    assert np.isnan(flat.upper_half_share.iloc[0])
    assert isinstance(table, pd.DataFrame)


def test_background_inputs_and_example_titles():
    from types import SimpleNamespace

    from face_sentiment.preprocessing import PreprocessingSpec

    predictor = SimpleNamespace(spec=PreprocessingSpec())
    faces = np.arange(10, dtype=np.uint8)[:, None, None] * np.ones((10, 48, 48), np.uint8)
    background = ex.background_inputs(predictor, faces, 4, seed=3)
    assert background.shape == (4, 48, 48, 1)
    chosen = np.random.default_rng(3).choice(10, 4, replace=False)  # seeded, no repeats
    assert np.array_equal(background, ex.model_inputs(predictor, faces[chosen]))
    probabilities = np.array([[0.9, 0.1], [0.3, 0.7]])
    assert ex.example_titles(np.array([1, 0]), probabilities, [1, 0], ["x", "y"]) == [
        "x (0.70)", "y (0.90)"]


def test_sanity_check_verdicts_and_flat_maps():
    rng = np.random.default_rng(0)
    repeat = rng.uniform(0.5, 0.7, 12)
    low = rng.uniform(-0.1, 0.2, 12)
    low[2] = np.nan  # a flat randomised map: counted, left out
    table = ex.sanity_check({"SHAP": low, "Grad-CAM": low, "same": repeat},
                            {"SHAP": repeat, "Grad-CAM": 1.0, "same": repeat},
                            resamples=200)
    assert table.loc["SHAP", "verdict"] == "passes" and table.loc["SHAP", "flat_maps"] == 1
    assert table.loc["SHAP", "faces"] == 11
    assert table.loc["Grad-CAM", "repeatability"] == 1.0
    assert table.loc["Grad-CAM", "verdict"] == "passes"
    assert table.loc["same", "verdict"] == "fails"  # identical to its repeatability
    row = table.loc["SHAP"]
    assert row.trained_vs_randomised_ci_low <= row.trained_vs_randomised <= \
        row.trained_vs_randomised_ci_high


def test_plots_keep_at_most_four_panels_a_row_with_colour_bars():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    faces = rng.integers(0, 255, (7, 48, 48)).astype(np.uint8)
    figures = plots.plot_explanations(faces, rng.normal(size=(7, 48, 48)),
                                   rng.uniform(size=(7, 48, 48)), [str(i) for i in range(7)])
    assert len(figures) == 2  # 4 + 3 faces
    for figure in figures:
        bars = [ax for ax in figure.axes if ax.get_label() == "<colorbar>"]
        assert len(bars) == 2 and len(figure.axes) == 3 * 4 + 2
    figure = plots.plot_class_maps(faces.mean(0), rng.normal(size=(7, 48, 48)), list("abcdefg"),
                                "title")
    assert sum(ax.get_label() == "<colorbar>" for ax in figure.axes) == 1
    assert len(figure.axes) == 2 * 4 + 1
    plt.close("all")


def test_region_share_intervals_resample_each_class_faces():
    maps = np.zeros((5, 4, 2))
    maps[:3, 2:] = 1.0  # class 0: all mass in the lower half, three faces
    maps[3, :2], maps[4, 2:] = 1.0, 1.0  # class 1: one face up, one down
    table = ex.region_share_intervals(maps, np.array([0, 0, 0, 1, 1]), ["a", "b", "c"],
                                      resamples=200)
    assert table.loc["a", "lower_half_share"] == 1.0
    assert table.loc["a", "lower_half_share_ci_low"] == 1.0  # every resample is all-lower
    assert table.loc["b", "lower_half_share"] == 0.5
    assert table.loc["b", "lower_half_share_ci_low"] < 0.5 < table.loc["b",
                                                                       "lower_half_share_ci_high"]
    assert table.loc["c", "faces"] == 0 and np.isnan(table.loc["c", "lower_half_share"])
