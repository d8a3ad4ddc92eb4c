"""The model stage's figures: what training feeds the network (augmentation and camera
degradation, notebook 03), how a run went (its history, notebook 04) and the TFLite variants
measured (size, accuracy, latency against fer's model, notebook 08).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from face_sentiment.model.augmentation import augmentation_layers
from face_sentiment.model.camera import degraded_examples
from face_sentiment.model.export import VARIANTS

# --------------------------------------------------------------------------------------------
# Notebook 03: what training feeds the network (`augmentation`, `camera`)


def plot_augmentations(inputs: np.ndarray, variants: int = 6, seed: int = 0):
    """Each preprocessed face (rows) and `variants` random training-time augmentations of it,
    on one value scale with its colour bar (give `variants` 3 for four panels a row)."""
    augment = augmentation_layers(seed)
    low, high = float(np.min(inputs)), float(np.max(inputs))
    fig, axes = plt.subplots(len(inputs), variants + 1, squeeze=False, layout="constrained",
                             figsize=(1.25 * (variants + 1) + 1.0, 1.25 * len(inputs) + 0.5))
    for row, face in enumerate(inputs):
        shown = axes[row][0].imshow(face[..., 0], cmap="gray", vmin=low, vmax=high)
        batch = np.repeat(face[np.newaxis], variants, axis=0)
        augmented = np.asarray(augment(batch, training=True))
        for column in range(variants):
            axes[row][column + 1].imshow(augmented[column, ..., 0], cmap="gray", vmin=low,
                                         vmax=high)
    axes[0][0].set_title("input", fontsize=8)
    for column in range(variants):
        axes[0][column + 1].set_title(f"augmented {column + 1}", fontsize=8)
    for ax in axes.ravel():
        ax.axis("off")
    fig.colorbar(shown, ax=axes.ravel().tolist(), fraction=0.04, pad=0.02,
                 label="normalised input value")
    fig.suptitle("Training-time augmentation (flip, shift, rotation, zoom, "
                 "brightness/contrast, erasing)", fontsize=9)
    return fig


def plot_degraded(faces: np.ndarray, variants: int = 6, rate: float = 0.5, seed: int = 0):
    """Each raw face (rows) and `variants` camera-degraded copies of it, as the training
    pipeline draws them at this rate (notebook 03)."""
    degraded = degraded_examples(faces, variants, rate, seed)
    fig, axes = plt.subplots(len(faces), variants + 1,
                             figsize=(1.3 * (variants + 1), 1.3 * len(faces)), squeeze=False)
    for row, face in enumerate(faces):
        for column, image in enumerate([face, *degraded[row]]):
            axes[row][column].imshow(image, cmap="gray", vmin=0, vmax=255)
            axes[row][column].axis("off")
    axes[0][0].set_title("input", fontsize=8)
    for column in range(1, variants + 1):
        axes[0][column].set_title(f"degraded {column}", fontsize=8)
    fig.suptitle(f"Camera augmentation at rate {rate} (resolution, blur, gamma, noise, JPEG)",
                 fontsize=9)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Notebook 04: a run's history (`training.read_history`)


def plot_history(history: pd.DataFrame) -> Figure:
    """Loss and accuracy per epoch, Training vs PublicTest (an ensemble run's history: each
    member's PublicTest curves)."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.5))
    if "member" in history:
        for member, curve in history.groupby("member"):
            loss_ax.plot(curve["epoch"] + 1, curve["val_loss"], "o-", markersize=3,
                         label=f"member {member}")
            acc_ax.plot(curve["epoch"] + 1, curve["val_accuracy"], "o-", markersize=3,
                        label=f"member {member}")
        for ax, name in ((loss_ax, "PublicTest loss"), (acc_ax, "PublicTest accuracy")):
            ax.set_xlabel("epoch")
            ax.set_ylabel(name.split()[-1])
            ax.set_title(name)
            ax.legend(fontsize=8)
        fig.suptitle("Training curves of each member")
        fig.tight_layout()
        return fig
    epochs = history["epoch"] + 1
    loss_ax.plot(epochs, history["loss"], "o-", markersize=3,
                 label="Training (augmented, smoothed labels)")
    loss_ax.plot(epochs, history["val_loss"], "o-", markersize=3, label="PublicTest")
    acc_ax.plot(epochs, history["accuracy"], "o-", markersize=3, label="Training (augmented)")
    acc_ax.plot(epochs, history["val_accuracy"], "o-", markersize=3, label="PublicTest")
    best = history["val_accuracy"].idxmax()
    acc_ax.axvline(epochs[best], color="grey", linestyle=":", label=f"best epoch {epochs[best]}")
    for ax, name in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(name)
        ax.legend(fontsize=8)
    fig.suptitle("Training curves")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Notebook 08: the TFLite variants (`export`)


def _p50_errors(table: pd.DataFrame, column: str) -> np.ndarray | None:
    """Error bars (below, above) of a p50 column from its interval columns, when present."""
    low, high = f"{column}_ci_low", f"{column}_ci_high"
    if low not in table or high not in table:
        return None
    return np.vstack([table[column] - table[low], table[high] - table[column]]).clip(0)


def plot_benchmark(table: pd.DataFrame, variants: list[str] | tuple[str, ...] = VARIANTS):
    """Three panels from `benchmark_variants` (optionally `add_fer_row`): file size, PrivateTest
    accuracy of our `variants`, and latency per face (p50 for 1 and 2 threads, with their
    intervals when the table has them, else 1 thread's bar to p95)."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    ours = table[table.variant.isin(variants)]
    axes[0].bar(table.variant, table.size_kb)
    axes[0].set_title("file size")
    axes[0].set_ylabel("KB")
    accuracy_errors = _p50_errors(ours, "accuracy")
    axes[1].bar(ours.variant, 100 * ours.accuracy,
                yerr=None if accuracy_errors is None else 100 * accuracy_errors, capsize=3)
    low = ours["accuracy_ci_low"] if "accuracy_ci_low" in ours else ours.accuracy
    high = ours["accuracy_ci_high"] if "accuracy_ci_high" in ours else ours.accuracy
    axes[1].set_ylim(100 * low.min() - 2, 100 * high.max() + 1)
    axes[1].set_title("PrivateTest accuracy")
    axes[1].set_ylabel("accuracy (%)")
    width = 0.4
    x = np.arange(len(table))
    one = _p50_errors(table, "p50_ms_1t")
    axes[2].bar(x - width / 2, table.p50_ms_1t, width,
                yerr=table.p95_ms_1t - table.p50_ms_1t if one is None else one, capsize=2,
                label="1 thread (p50, bar to p95)" if one is None else "1 thread (p50, 95% CI)")
    two = _p50_errors(table, "p50_ms_2t")
    axes[2].bar(x + width / 2, table.p50_ms_2t, width, yerr=two, capsize=2,
                label="2 threads (p50)" if two is None else "2 threads (p50, 95% CI)")
    axes[2].set_xticks(x, table.variant)
    axes[2].set_title("latency per face, batch 1")
    axes[2].set_ylabel("ms")
    axes[2].legend(fontsize=7)
    for ax in axes:
        ax.tick_params(axis="x", rotation=30, labelsize=7)
        ax.set_xlabel("variant", fontsize=8)
    fig.suptitle("TFLite variants of the shipped model (fer's TFLite model for scale)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def plot_runtimes(runtimes: pd.DataFrame, target_ms: float | None = 0.5,
                  target_ratio: float | None = None):
    """p50 latency of our int8 model beside fer's on each runtime (`runtime_comparison` or
    `latency_against_fer` rows, with their intervals when present), with an absolute target
    as a dotted line (`target_ms`) and/or the ratio target as a mark at `target_ratio` x fer's
    p50 on each runtime. A log scale when the runtimes differ more than tenfold."""
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    width = 0.4
    x = np.arange(len(runtimes))
    ax.bar(x - width / 2, runtimes.p50_ms, width, yerr=_p50_errors(runtimes, "p50_ms"),
           capsize=3, label="ours, int8")
    ax.bar(x + width / 2, runtimes.fer_p50_ms, width, yerr=_p50_errors(runtimes, "fer_p50_ms"),
           capsize=3, label="fer mini-Xception")
    if target_ms is not None:
        ax.axhline(target_ms, color="grey", linestyle=":", label=f"{target_ms:g} ms target")
    if target_ratio is not None:
        ax.hlines(target_ratio * runtimes.fer_p50_ms, x - width, x + width, color="black",
                  linestyle="--", label=f"target: {target_ratio:g}x fer's p50")
    values = np.concatenate([runtimes.p50_ms, runtimes.fer_p50_ms])
    if values.max() > 10 * values.min():
        ax.set_yscale("log")
    ax.set_xticks(x, runtimes.runtime)
    ax.set_xlabel("TFLite runtime")
    ax.set_ylabel("p50 ms per face, 1 thread")
    ax.set_title("int8 against fer's TFLite model, batch 1, 1 thread (95% CI)"
                 if "p50_ms_ci_low" in runtimes else "int8 against fer's TFLite model",
                 fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
