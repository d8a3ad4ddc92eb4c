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


def class_balance(dataset: Fer2013Dataset) -> pd.DataFrame:
    """Images per split (rows) and class (columns), with totals."""
    table = pd.crosstab(pd.Categorical.from_codes(dataset.splits, SPLITS, ordered=True),
                        pd.Categorical.from_codes(dataset.labels, FER2013_CLASSES, ordered=True),
                        margins=True, margins_name="total", dropna=False)
    table.index.name, table.columns.name = "split", "class"
    return table


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


def sample_grid(dataset: Fer2013Dataset, per_class: int = 8, split: str = "Training",
                seed: int = 0) -> Figure:
    """A row of random example faces for every class."""
    rng = np.random.default_rng(seed)
    in_split = dataset.split_mask(split)
    fig, axes = plt.subplots(len(FER2013_CLASSES), per_class,
                             figsize=(per_class * 0.9, len(FER2013_CLASSES) * 0.95))
    for row, name in enumerate(FER2013_CLASSES):
        candidates = np.flatnonzero(in_split & (dataset.labels == row))
        chosen = rng.choice(candidates, size=min(per_class, len(candidates)), replace=False)
        for column, ax in enumerate(axes[row]):
            ax.axis("off")
            if column < len(chosen):
                ax.imshow(dataset.images[chosen[column]], cmap="gray", vmin=0, vmax=255)
        axes[row][0].set_title(name, fontsize=8, loc="left")
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


def plot_quality_by_class(dataset: Fer2013Dataset, split: str = "Training") -> Figure:
    """Box plots of brightness, contrast, sharpness and clipping per class."""
    mask = dataset.split_mask(split)
    features = dataset.features.loc[mask]
    labels = dataset.labels[mask]
    names = ("brightness", "contrast", "sharpness", "clipped_fraction")
    fig, axes = plt.subplots(1, len(names), figsize=(14, 3.4))
    for ax, name in zip(axes, names, strict=True):
        values = [features[name].to_numpy()[labels == i] for i in range(len(FER2013_CLASSES))]
        ax.boxplot(values, showfliers=False)
        ax.set_xticks(range(1, len(FER2013_CLASSES) + 1), FER2013_CLASSES, rotation=60,
                      fontsize=8)
        ax.set_title(name)
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


def show_images(dataset: Fer2013Dataset, indices: np.ndarray, title: str,
                max_images: int = 12) -> Figure:
    """A strip of the given images with their split and label."""
    indices = np.asarray(indices)[:max_images]
    fig, axes = plt.subplots(1, max(len(indices), 1), figsize=(max(len(indices), 1) * 1.1, 1.6),
                             squeeze=False)
    for ax, index in zip(axes[0], indices, strict=False):
        ax.imshow(dataset.images[index], cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{SPLITS[dataset.splits[index]][:5]}\n{FER2013_CLASSES[dataset.labels[index]]}",
                     fontsize=7)
    for ax in axes[0]:
        ax.axis("off")
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
