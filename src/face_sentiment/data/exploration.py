"""Tables and plots for notebook 01 (data exploration): who is in FER2013 and how it looks.

Every function takes the cached `Fer2013Dataset` and returns a DataFrame or a matplotlib
Figure, so the notebook only calls and shows.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from face_sentiment.data.cache import Fer2013Dataset
from face_sentiment.data.quality import QUALITY_COLUMNS
from face_sentiment.labels import FER2013_CLASSES, SPLITS
from face_sentiment.stats import majority_class


def class_balance(dataset: Fer2013Dataset) -> pd.DataFrame:
    """Images per split (rows) and class (columns), with totals."""
    table = pd.crosstab(pd.Categorical.from_codes(dataset.splits, SPLITS, ordered=True),
                        pd.Categorical.from_codes(dataset.labels, FER2013_CLASSES, ordered=True),
                        margins=True, margins_name="total", dropna=False)
    table.index.name, table.columns.name = "split", "class"
    return table


def provenance(dataset: Fer2013Dataset) -> pd.DataFrame:
    """Where the data came from, for citing it: source file, format, sha256 and images."""
    manifest = dataset.manifest
    return pd.Series({
        "source": manifest.get("source", ""), "format": manifest.get("source_format", ""),
        "sha256": dataset.data_hash, "images": int(len(dataset.labels)),
    }, name="value").rename_axis("FER2013").to_frame()


def majority_baseline(dataset: Fer2013Dataset) -> pd.DataFrame:
    """Per split: its most frequent class, the accuracy of always answering that class
    (its share) and uniform chance over the classes, both in percent: the floor any model's
    accuracy is read against."""
    rows = {}
    for index, split in enumerate(SPLITS):
        labels = dataset.labels[dataset.splits == index]
        top, share = majority_class(labels, len(FER2013_CLASSES))
        rows[split] = {"images": int(len(labels)), "majority class": FER2013_CLASSES[top],
                       "majority share %": 100 * share,
                       "chance %": 100 / len(FER2013_CLASSES)}
    return pd.DataFrame(rows).T.rename_axis("split")


def plot_class_balance(dataset: Fer2013Dataset) -> Figure:
    """Share of each class per split (bars side by side), counts on the Training bars."""
    counts = class_balance(dataset).drop(index="total", columns="total")
    shares = counts.div(counts.sum(axis=1), axis=0)
    fig, ax = plt.subplots(figsize=(9, 3.8))
    width = 0.8 / len(SPLITS)
    positions = np.arange(len(FER2013_CLASSES))
    for offset, split in enumerate(SPLITS):
        bars = ax.bar(positions + offset * width, shares.loc[split], width, label=split)
        if split == "Training":
            ax.bar_label(bars, counts.loc[split].to_numpy(), fontsize=7, padding=2)
    ax.set_xticks(positions + width, FER2013_CLASSES)
    ax.set_ylabel("share of split")
    ax.set_title("Class balance per split (labels: Training counts)")
    ax.legend()
    fig.tight_layout()
    return fig


def montage(images: np.ndarray, per_row: int, gap: int = 2) -> np.ndarray:
    """Equal-sized grey images tiled into one, `per_row` across, on a white ground (an empty
    slot stays white)."""
    images = np.asarray(images)
    count, height, width = images.shape[:3]
    rows = max(1, -(-count // per_row))
    canvas = np.full((rows * (height + gap) - gap, per_row * (width + gap) - gap), 255,
                     np.uint8)
    for index, image in enumerate(images):
        top, left = (index // per_row) * (height + gap), (index % per_row) * (width + gap)
        canvas[top:top + height, left:left + width] = image
    return canvas


def sample_grid(dataset: Fer2013Dataset, per_class: int = 8, split: str = "Training",
                seed: int = 0, faces_per_row: int = 4, panels_per_row: int = 2) -> Figure:
    """Random example faces of every class: one panel per class (its faces tiled, at most
    `faces_per_row` across; a slot stays white when the class has fewer faces), at most
    `panels_per_row` panels side by side so that the faces stay legible on a printed page."""
    rng = np.random.default_rng(seed)
    in_split = dataset.split_mask(split)
    across = max(1, min(faces_per_row, per_class))
    face_rows = -(-per_class // across)
    panel_rows = -(-len(FER2013_CLASSES) // panels_per_row)
    fig, axes = plt.subplots(panel_rows, panels_per_row, squeeze=False,
                             figsize=(panels_per_row * across * 0.95,
                                      panel_rows * (face_rows * 0.95 + 0.35) + 0.4))
    size = dataset.images.shape[1:3]
    for index, (ax, name) in enumerate(zip(axes.ravel(), FER2013_CLASSES, strict=False)):
        candidates = np.flatnonzero(in_split & (dataset.labels == index))
        chosen = rng.choice(candidates, size=min(per_class, len(candidates)), replace=False)
        faces = np.full((per_class, *size), 255, np.uint8)
        faces[:len(chosen)] = dataset.images[chosen]
        ax.imshow(montage(faces, across), cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{name} ({len(candidates)} in {split})", fontsize=9, loc="left")
        ax.axis("off")
    for ax in axes.ravel()[len(FER2013_CLASSES):]:
        fig.delaxes(ax)
    fig.suptitle(f"Random {split} faces per class (seed {seed})", fontsize=10)
    fig.tight_layout()
    return fig


def intensity_histograms(dataset: Fer2013Dataset, split: str = "Training") -> Figure:
    """Pixel-intensity distribution per class (normalised histograms)."""
    in_split = dataset.split_mask(split)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    bins = np.arange(0, 257, 4)
    for index, name in enumerate(FER2013_CLASSES):
        pixels = dataset.images[in_split & (dataset.labels == index)].ravel()
        density, edges = np.histogram(pixels, bins=bins, density=True)
        ax.plot(edges[:-1], density, label=name)
    ax.set_xlabel("grey level")
    ax.set_ylabel("density")
    ax.set_title(f"Pixel intensities per class ({split})")
    ax.legend(ncol=4, fontsize=8)
    fig.tight_layout()
    return fig


def quality_by_class(dataset: Fer2013Dataset, split: str = "Training") -> pd.DataFrame:
    """Median of each quality feature per class, and the share of near-blank images."""
    frame = dataset.features.loc[dataset.split_mask(split), list(QUALITY_COLUMNS)].copy()
    frame["class"] = np.asarray(FER2013_CLASSES)[dataset.labels[dataset.split_mask(split)]]
    summary = frame.groupby("class").median(numeric_only=True).drop(columns="near_blank")
    summary["near_blank_images"] = frame.groupby("class")["near_blank"].sum()
    return summary.reindex(FER2013_CLASSES)


QUALITY_UNITS = {"brightness": "mean grey level (0-255)",
                 "contrast": "grey-level standard deviation",
                 "sharpness": "variance of the Laplacian (log scale)",
                 "clipped_fraction": "share of pixels at 0 or 255"}


def plot_quality_by_class(dataset: Fer2013Dataset, split: str = "Training") -> Figure:
    """Box plots of brightness, contrast, sharpness and clipping per class (2 x 2 panels)."""
    mask = dataset.split_mask(split)
    features = dataset.features.loc[mask]
    labels = dataset.labels[mask]
    fig, axes = plt.subplots(2, 2, figsize=(8.5, 6.2))
    for ax, (name, unit) in zip(axes.ravel(), QUALITY_UNITS.items(), strict=True):
        values = [features[name].to_numpy()[labels == i] for i in range(len(FER2013_CLASSES))]
        ax.boxplot(values, showfliers=False)
        ax.set_xticks(range(1, len(FER2013_CLASSES) + 1), FER2013_CLASSES, rotation=45,
                      fontsize=8)
        ax.set_title(name)
        ax.set_ylabel(unit, fontsize=8)
        if name == "sharpness":
            ax.set_yscale("log")
    fig.suptitle(f"Image quality per class ({split}; whiskers 1.5 IQR, outliers hidden)")
    fig.tight_layout()
    return fig


def duplicate_report(dataset: Fer2013Dataset) -> pd.DataFrame:
    """Every duplicate group: size, the splits it spans and whether its labels disagree."""
    groups = dataset.features["duplicate_group"].to_numpy()
    members = pd.DataFrame({"group": groups, "split": np.asarray(SPLITS)[dataset.splits],
                            "label": np.asarray(FER2013_CLASSES)[dataset.labels]})
    members = members[members.group >= 0]
    report = members.groupby("group").agg(
        images=("label", "size"),
        splits=("split", lambda s: ",".join(sorted(set(s)))),
        labels=("label", lambda s: ",".join(sorted(set(s)))),
    )
    report["cross_split"] = report.splits.str.contains(",")
    report["label_conflict"] = report.labels.str.contains(",")
    return report.sort_values("images", ascending=False)


def duplicate_summary(dataset: Fer2013Dataset, duplicates: pd.DataFrame) -> pd.DataFrame:
    """The counts behind `duplicate_report` (its result is `duplicates`): groups, images in
    them, groups spanning splits or carrying conflicting labels, pairs of copies within each
    split, and the test images with a copy in Training (faces a model may have trained on)."""
    groups = dataset.features["duplicate_group"].to_numpy()
    in_groups = groups >= 0
    training = SPLITS.index("Training")
    training_groups = np.unique(groups[in_groups & (dataset.splits == training)])
    rows = {"duplicate groups": len(duplicates),
            "images in them": int(duplicates["images"].sum()),
            "groups spanning splits": int(duplicates["cross_split"].sum()),
            "groups with conflicting labels": int(duplicates["label_conflict"].sum())}
    for index, split in enumerate(SPLITS):
        sizes = np.bincount(groups[in_groups & (dataset.splits == index)]) if in_groups.any() \
            else np.zeros(0, int)
        rows[f"pairs of copies within {split}"] = int((sizes * (sizes - 1) // 2).sum())
    for index, split in enumerate(SPLITS):
        if index != training:
            leaked = (dataset.splits == index) & in_groups & np.isin(groups, training_groups)
            rows[f"{split} images with a copy in Training"] = int(leaked.sum())
    return pd.Series(rows, name="count").to_frame()


def near_blank_by_split(dataset: Fer2013Dataset) -> pd.DataFrame:
    """Near-blank images (no face: pixel standard deviation under 2 grey levels) per split."""
    near_blank = dataset.features["near_blank"].to_numpy(bool)
    return pd.DataFrame({"near-blank images": [int((near_blank & (dataset.splits == i)).sum())
                                               for i in range(len(SPLITS))],
                         "images": [int((dataset.splits == i).sum())
                                    for i in range(len(SPLITS))]},
                        index=pd.Index(SPLITS, name="split"))


def show_images(dataset: Fer2013Dataset, indices: np.ndarray, title: str,
                max_images: int = 12, per_row: int = 4) -> Figure:
    """The given images with their split and label, at most `per_row` side by side."""
    indices = np.asarray(indices)[:max_images]
    columns = max(1, min(len(indices), per_row))
    rows = max(1, -(-len(indices) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.35, rows * 1.55 + 0.35),
                             squeeze=False)
    for ax, index in zip(axes.ravel(), indices, strict=False):
        ax.imshow(dataset.images[index], cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{SPLITS[dataset.splits[index]][:5]}\n{FER2013_CLASSES[dataset.labels[index]]}",
                     fontsize=8)
    for ax in axes.ravel():
        ax.axis("off")
    for ax in axes.ravel()[max(len(indices), 1):]:
        fig.delaxes(ax)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def conflicting_duplicate_examples(dataset: Fer2013Dataset, duplicates: pd.DataFrame,
                                   groups: int = 6) -> list[int]:
    """Image indices of the first `groups` duplicate groups whose labels disagree, two per
    group, for showing side by side (`duplicates` is `duplicate_report(dataset)`)."""
    conflicting = duplicates[duplicates.label_conflict].index[:groups]
    members = dataset.features.duplicate_group.to_numpy()
    return [int(i) for group in conflicting for i in np.flatnonzero(members == group)[:2]]
