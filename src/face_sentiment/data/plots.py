"""The data stage's figures, one place for each notebook's: FER2013 as it is (notebook 01),
the input of the TFDV drift checks (02), the lighting normalisations and the transform's quality
buckets (03).

Each function takes what its notebook already holds (the cached dataset, the validated feature
table, a few faces, the processed records) and returns a matplotlib Figure; the tables beside
them are in `exploration`, `validation` and `processed`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from face_sentiment.data.cache import Fer2013Dataset
from face_sentiment.data.exploration import class_balance, montage
from face_sentiment.data.processed import ProcessedData
from face_sentiment.data.transform import BUCKET_NAMES, BUCKETED
from face_sentiment.labels import FER2013_CLASSES, SPLITS
from face_sentiment.preprocessing import (
    METHODS,
    PreprocessingSpec,
    preprocess_faces,
    to_gray_square,
)

# --------------------------------------------------------------------------------------------
# Notebook 01: FER2013 as it is (its tables: `exploration`)


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


# --------------------------------------------------------------------------------------------
# Notebook 02: the validated features (`validation`)


FEATURE_UNITS = {"brightness": "mean grey level", "contrast": "grey-level standard deviation",
                 "sharpness": "variance of the Laplacian",
                 "clipped_fraction": "share of pixels at 0 or 255"}


def plot_feature_distributions(table: pd.DataFrame, splits: tuple[str, ...] = SPLITS):
    """Density histograms of each numeric feature per split (2 x 2 panels): the input of the
    drift checks."""
    from face_sentiment.data.validation import NUMERIC_FEATURES  # imports TFDV and Beam

    fig, axes = plt.subplots(2, 2, figsize=(8.5, 5.8))
    for ax, name in zip(axes.ravel(), NUMERIC_FEATURES, strict=True):
        for split in splits:
            ax.hist(table.loc[table.split == split, name], bins=40, density=True,
                    histtype="step", label=split)
        ax.set_title(name)
        ax.set_xlabel(FEATURE_UNITS.get(name, name), fontsize=8)
        ax.set_ylabel("density", fontsize=8)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Feature distributions per split (the input to the drift checks)")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Notebook 03: the one preprocessing definition and the transform's records (`processed`)


def plot_methods(faces: np.ndarray, methods: tuple[str, ...] = METHODS):
    """Grid: each lighting normalisation (rows, the original first) of each face (columns; give
    at most four for a printed page), with a colour bar of the values each row holds, for
    notebook 03."""
    rows = [("original (grey level)", np.asarray([to_gray_square(f, 48) for f in faces]))]
    rows += [(method, preprocess_faces(faces, PreprocessingSpec(method=method))[..., 0])
             for method in methods]
    fig, axes = plt.subplots(len(rows), len(faces), squeeze=False, layout="constrained",
                             figsize=(1.15 * len(faces) + 1.1, 1.15 * len(rows) + 0.4))
    for row, (name, images) in enumerate(rows):
        low, high = (0, 255) if row == 0 else (float(images.min()), float(images.max()))
        for column, image in enumerate(images):
            shown = axes[row][column].imshow(image, cmap="gray", vmin=low, vmax=high)
            axes[row][column].set_xticks([])
            axes[row][column].set_yticks([])
        axes[row][0].set_ylabel(name, fontsize=8)
        fig.colorbar(shown, ax=list(axes[row]), fraction=0.05, pad=0.02).ax.tick_params(
            labelsize=7)
    fig.suptitle("Lighting normalisations (rows) of the same faces; colour bar: input values",
                 fontsize=9)
    return fig


def plot_buckets(processed: ProcessedData, split: str = "Training"):
    """Histogram of each bucketed quality feature on `split`, coloured by bucket: where the
    transform's Training-quantile boundaries fall."""
    part = processed.table[processed.table["split"] == split]
    fig, axes = plt.subplots(1, len(BUCKETED), figsize=(3 * len(BUCKETED), 3))
    for ax, name in zip(axes, BUCKETED, strict=True):
        values = part[name].to_numpy()
        upper = np.quantile(values, 0.99)
        bins = np.linspace(values.min(), upper, 50)
        for bucket, label in enumerate(BUCKET_NAMES):
            ax.hist(values[part[f"{name}_bucket"].to_numpy() == bucket], bins=bins,
                    label=label, alpha=0.8)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(name, fontsize=8)
        ax.set_ylabel("faces", fontsize=8)
    axes[0].legend(title="bucket", fontsize=8)
    fig.suptitle(f"Quality buckets at Training's tertile boundaries ({split})", fontsize=9)
    fig.tight_layout()
    return fig
