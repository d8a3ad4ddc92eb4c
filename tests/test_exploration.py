"""Notebook 01's tables and plots: class balance, quality per class, duplicate groups, figures."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from face_sentiment.data import exploration, plots
from face_sentiment.data.cache import Fer2013Dataset, load_dataset
from face_sentiment.data.quality import duplicate_groups, quality_features
from face_sentiment.labels import FER2013_CLASSES, SPLITS

ANGRY, DISGUST, FEAR, HAPPY, SAD, SURPRISE, NEUTRAL = range(7)
TRAIN, PUBLIC, PRIVATE = range(3)


@pytest.fixture(autouse=True)
def agg_backend():
    """Draw off-screen and close every figure a test leaves open."""
    plt.switch_backend("Agg")
    yield
    plt.close("all")


def make_dataset(images, labels, splits) -> Fer2013Dataset:
    images = np.asarray(images, dtype=np.uint8)
    features = quality_features(images)
    features["duplicate_group"] = duplicate_groups(images)
    return Fer2013Dataset(
        images=images, labels=np.asarray(labels, np.int8), splits=np.asarray(splits, np.int8),
        source_ids=np.array([f"row-{i}" for i in range(len(images))]), features=features,
        manifest={"source_sha256": "hand-made"},
    )


@pytest.fixture
def full_dataset():
    """Every class in every split, two images each (42 distinct random images)."""
    rng = np.random.default_rng(1)
    labels = np.tile(np.repeat(np.arange(7), 2), 3)
    splits = np.repeat(np.arange(3), 14)
    return make_dataset(rng.integers(0, 256, (42, 48, 48)), labels, splits)


# --- tables ----------------------------------------------------------------------------------

def test_class_balance_counts_and_totals(fer2013_csv, sample):
    table = exploration.class_balance(load_dataset(fer2013_csv))
    assert list(table.index) == [*SPLITS, "total"]
    assert list(table.columns) == [*FER2013_CLASSES, "total"]
    assert (table.index.name, table.columns.name) == ("split", "class")
    expected = pd.crosstab(sample.splits, sample.labels).reindex(
        index=range(3), columns=range(7), fill_value=0).to_numpy()
    np.testing.assert_array_equal(table.iloc[:3, :7].to_numpy(), expected)
    # Sample labels: Training angry/happy/neutral, PublicTest disgust/sad/surprise,
    # PrivateTest fear/happy/neutral.
    assert table.loc["total"].drop("total").tolist() == [1, 1, 1, 2, 1, 1, 2]
    assert table["total"].tolist() == [3, 3, 3, 9]
    assert table.loc["Training", "disgust"] == 0  # empty cells are kept, as zeros


def test_quality_by_class_medians_and_near_blank_counts():
    flat = np.full((48, 48), 100, np.uint8)
    bright = np.full((48, 48), 200, np.uint8)
    board = (np.indices((48, 48)).sum(axis=0) % 2 * 255).astype(np.uint8)
    dataset = make_dataset([flat, bright, board, flat + 1],
                           [HAPPY, HAPPY, SAD, HAPPY], [TRAIN, TRAIN, TRAIN, PUBLIC])
    summary = exploration.quality_by_class(dataset)
    assert list(summary.index) == list(FER2013_CLASSES)
    assert "near_blank" not in summary.columns
    assert summary.loc["happy", "brightness"] == pytest.approx(150)  # PublicTest not counted
    assert summary.loc["happy", "near_blank_images"] == 2
    assert summary.loc["sad", "contrast"] == pytest.approx(127.5)
    assert summary.loc["sad", "near_blank_images"] == 0
    assert summary.loc["angry"].isna().all()  # no angry Training image


def test_duplicate_report_marks_cross_split_and_label_conflicts():
    rng = np.random.default_rng(7)
    a, b, c, d, e = rng.integers(0, 256, (5, 48, 48))
    images = [a, a, b, b, c, c, c, d, e]
    labels = [HAPPY, HAPPY, SAD, ANGRY, FEAR, FEAR, NEUTRAL, SURPRISE, SURPRISE]
    splits = [TRAIN, PUBLIC, TRAIN, TRAIN, TRAIN, PRIVATE, PRIVATE, TRAIN, PUBLIC]
    dataset = make_dataset(images, labels, splits)
    report = exploration.duplicate_report(dataset)
    assert list(report.columns) == ["images", "splits", "labels", "cross_split",
                                    "label_conflict"]
    assert report.images.tolist() == [3, 2, 2]  # largest group first; d and e are unique
    groups = dataset.features.duplicate_group.to_numpy()
    rows = {name: report.loc[groups[index]] for name, index in (("a", 0), ("b", 2), ("c", 4))}
    assert (rows["a"].splits, rows["a"].labels) == ("PublicTest,Training", "happy")
    assert rows["a"].cross_split and not rows["a"].label_conflict
    assert (rows["b"].splits, rows["b"].labels) == ("Training", "angry,sad")
    assert not rows["b"].cross_split and rows["b"].label_conflict
    assert (rows["c"].images, rows["c"].splits) == (3, "PrivateTest,Training")
    assert rows["c"].labels == "fear,neutral"
    assert rows["c"].cross_split and rows["c"].label_conflict


def test_duplicate_report_of_the_sample(fer2013_csv):
    report = exploration.duplicate_report(load_dataset(fer2013_csv))
    # Rows 0 (Training) and 4 (PublicTest) are byte-identical, labelled angry and sad.
    assert len(report) == 1
    row = report.iloc[0]
    assert (row.images, row.splits, row.labels) == (2, "PublicTest,Training", "angry,sad")
    assert row.cross_split and row.label_conflict


def test_duplicate_report_without_duplicates_is_empty(full_dataset):
    assert exploration.duplicate_report(full_dataset).empty


# --- figures ---------------------------------------------------------------------------------

def test_plot_class_balance(full_dataset):
    fig = plots.plot_class_balance(full_dataset)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(FER2013_CLASSES)
    assert len(ax.patches) == len(SPLITS) * len(FER2013_CLASSES)
    # Every split is balanced: each bar is a 1/7 share.
    assert all(p.get_height() == pytest.approx(1 / 7) for p in ax.patches)


def test_sample_grid_shows_up_to_per_class_faces(full_dataset):
    fig = plots.sample_grid(full_dataset, per_class=3, split="PublicTest", seed=5)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 7  # one panel per class, at most two side by side
    assert all(len(ax.images) == 1 for ax in fig.axes)
    tiled = fig.axes[0].images[0].get_array()
    assert tiled.shape == (48, 3 * 48 + 2 * 2)  # three slots across, 2-pixel gaps
    assert (np.asarray(tiled[:, 2 * 50:]) == 255).all()  # two PublicTest faces: third slot empty
    assert fig.axes[0].get_title(loc="left") == "angry (2 in PublicTest)"
    assert "seed 5" in fig._suptitle.get_text()


def test_montage_tiles_rows_of_faces():
    faces = np.arange(5 * 2 * 3).reshape(5, 2, 3).astype(np.uint8)
    tiled = exploration.montage(faces, per_row=2, gap=1)
    assert tiled.shape == (3 * 2 + 2, 2 * 3 + 1)
    np.testing.assert_array_equal(tiled[3:5, 4:7], faces[3])
    assert (tiled[6:, 4:] == 255).all()  # the sixth slot is empty


def test_majority_baseline_and_provenance(full_dataset):
    table = exploration.majority_baseline(full_dataset)
    assert list(table.index) == list(SPLITS)
    assert table.loc["Training", "majority class"] == "angry"  # a tie: the first class
    assert table.loc["PublicTest", "majority share %"] == pytest.approx(100 / 7)
    assert table.loc["PrivateTest", "images"] == 14
    facts = exploration.provenance(full_dataset)["value"]
    assert facts["images"] == 42 and facts["sha256"] == full_dataset.data_hash


def test_duplicate_summary_counts_leaked_test_faces(fer2013_csv):
    dataset = load_dataset(fer2013_csv)
    summary = exploration.duplicate_summary(dataset, exploration.duplicate_report(dataset))
    counts = summary["count"]
    # Rows 0 (Training) and 4 (PublicTest) are byte-identical.
    assert counts["duplicate groups"] == 1 and counts["images in them"] == 2
    assert counts["groups with conflicting labels"] == 1
    assert counts["PublicTest images with a copy in Training"] == 1
    assert counts["PrivateTest images with a copy in Training"] == 0
    assert counts["pairs of copies within Training"] == 0
    near_blank = exploration.near_blank_by_split(dataset)
    assert list(near_blank.index) == list(SPLITS)
    assert near_blank["images"].sum() == len(dataset.labels)


def test_intensity_histograms_one_line_per_class(full_dataset):
    fig = plots.intensity_histograms(full_dataset, split="PrivateTest")
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == list(FER2013_CLASSES)
    assert all(np.isfinite(line.get_ydata()).all() for line in lines)


def test_plot_quality_by_class_four_panels(full_dataset):
    fig = plots.plot_quality_by_class(full_dataset)
    assert [ax.get_title() for ax in fig.axes] == [
        "brightness", "contrast", "sharpness", "clipped_fraction"]
    assert fig.axes[2].get_yscale() == "log"


def test_show_images_strip(full_dataset):
    fig = plots.show_images(full_dataset, np.arange(20), "first faces", max_images=5)
    assert len(fig.axes) == 5 and all(len(ax.images) == 1 for ax in fig.axes)
    assert fig.axes[0].get_title() == "Train\nangry"
    empty = plots.show_images(full_dataset, np.array([], dtype=int), "none")
    assert isinstance(empty, Figure) and len(empty.axes) == 1 and not empty.axes[0].images


def test_figures_render(full_dataset, tmp_path):
    """Every plot draws completely (savefig runs the full Agg render)."""
    figures = [plots.plot_class_balance(full_dataset),
               plots.sample_grid(full_dataset, per_class=2),
               plots.intensity_histograms(full_dataset),
               plots.plot_quality_by_class(full_dataset)]
    for number, fig in enumerate(figures):
        path = tmp_path / f"{number}.png"
        fig.savefig(path, dpi=40)
        assert path.stat().st_size > 500


def test_conflicting_duplicate_examples_take_two_per_conflicting_group():
    from types import SimpleNamespace

    import pandas as pd

    from face_sentiment.data.exploration import conflicting_duplicate_examples

    groups = np.array([-1, 0, 1, 0, 1, 1, 2, 2])
    dataset = SimpleNamespace(features=pd.DataFrame({"duplicate_group": groups}))
    duplicates = pd.DataFrame({"label_conflict": [True, False, True]}, index=[1, 0, 2])
    assert conflicting_duplicate_examples(dataset, duplicates) == [2, 4, 6, 7]
    assert conflicting_duplicate_examples(dataset, duplicates, groups=1) == [2, 4]
