"""The evaluation stage's figures: the confusion matrix and reliability diagram of FER2013
evaluations (`metrics`, notebook 05), other datasets' confusions and per-subject accuracy
(`cross_dataset`) and the accuracy curves under perturbations (`robustness`, notebook 09).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import confusion_matrix

from face_sentiment.evaluation.cross_dataset import CrossResult, accuracy_by, confusion
from face_sentiment.evaluation.metrics import (
    Evaluation,
    expected_calibration_error,
    reliability_table,
)
from face_sentiment.evaluation.robustness import PERTURBATIONS

# --------------------------------------------------------------------------------------------
# Notebook 05: FER2013 evaluations (`metrics`)


def plot_confusion_matrix(counts: np.ndarray, rows: list[str] | tuple[str, ...],
                          columns: list[str] | tuple[str, ...] | None = None,
                          normalise: bool = True, title: str = "", ax=None) -> Figure:
    """Draw one confusion matrix: `counts[i, j]` images of true class `rows[i]` predicted as
    `columns[j]` (default: the same classes as the rows; a dataset may lack some of the model's
    classes, so the matrix need not be square).

    `normalise` shows each row as shares of its true class (a row without images stays zero)
    and writes every row's image count beside its class name; otherwise the raw counts are
    shown. Every cell is annotated. Draws into `ax` when given (side-by-side panels; the caller
    lays out the figure), else into a new figure.
    """
    counts = np.asarray(counts)
    columns = rows if columns is None else columns
    totals = counts.sum(axis=1)
    shown = counts / np.maximum(totals[:, None], 1) if normalise else counts
    own_figure = ax is None
    fig, ax = plt.subplots(figsize=(5.5, 4.8)) if own_figure else (ax.figure, ax)
    top = 1.0 if normalise else max(float(shown.max()), 1.0)
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=top)
    for (row, col), value in np.ndenumerate(shown):
        ax.text(col, row, f"{value:.2f}" if normalise else str(int(value)), ha="center",
                va="center", fontsize=7, color="white" if value > 0.5 * top else "black")
    ax.set_xticks(range(len(columns)), list(columns), rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), [f"{name} ({int(total)})" for name, total in
                                     zip(rows, totals, strict=True)] if normalise else list(rows))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (images)" if normalise else "true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046)
    if own_figure:
        fig.tight_layout()
    return fig


def plot_confusion(evaluation: Evaluation, normalise: bool = True) -> Figure:
    """The confusion matrix of one evaluation over all of its classes."""
    matrix = confusion_matrix(evaluation.labels, evaluation.predicted,
                              labels=np.arange(len(evaluation.classes)))
    return plot_confusion_matrix(
        matrix, evaluation.classes, normalise=normalise,
        title=f"Confusion ({'row-normalised' if normalise else 'counts'}): {evaluation.name}")


def plot_reliability(evaluations: list[Evaluation], bins: int = 15) -> Figure:
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    for evaluation in evaluations:
        table = reliability_table(evaluation.labels, evaluation.probabilities, bins).dropna()
        ece = expected_calibration_error(evaluation.labels, evaluation.probabilities, bins)
        ax.plot(table.confidence, table.accuracy, "o-", markersize=3,
                label=f"{evaluation.name} (ECE {ece:.3f})")
    ax.set_xlabel("confidence (top class)")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability diagram")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Notebook 09: other datasets (`cross_dataset`) and perturbations (`robustness`)


def plot_confusions(results: dict[str, CrossResult]):
    """Row-normalised confusion matrices side by side (`plot_confusion_matrix`): rows
    are the dataset's classes, columns every class the model can predict."""
    fig, axes = plt.subplots(1, len(results), figsize=(5.6 * len(results), 4.6), squeeze=False)
    for ax, (name, result) in zip(axes[0], results.items(), strict=True):
        counts = confusion(result, normalise=False)
        plot_confusion_matrix(counts.to_numpy(), list(counts.index), list(counts.columns),
                              title=f"{result.dataset}: {name}", ax=ax)
    fig.tight_layout()
    return fig


def plot_accuracy_by(results: dict[str, CrossResult], column: str, bins: int = 10):
    """Histogram of per-`column` accuracy (how many subjects score how well), one series per
    model: a mean over people hides whether a model fails some of them entirely."""
    fig, ax = plt.subplots(figsize=(6, 3))
    dataset = next(iter(results.values())).dataset if results else ""
    ax.hist([accuracy_by(result, column) for result in results.values()], bins=bins,
            range=(0, 1), label=list(results))
    ax.set_xlabel(f"accuracy of one {column}'s images")
    ax.set_ylabel(f"{column}s")
    ax.legend(fontsize=7)
    ax.set_title(f"{dataset}: accuracy split by {column}")
    fig.tight_layout()
    return fig


def plot_curves(curves: pd.DataFrame) -> Figure:
    """A panel per perturbation, a line per model, levels sorted along the x axis."""
    names = list(dict.fromkeys(curves.perturbation))
    columns = 4
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.8 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        part = curves[curves.perturbation == name].sort_values("level")
        for model, line in part.groupby("model", sort=False):
            ax.plot(line.level, 100 * line.accuracy, "o-", markersize=3, label=model)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(PERTURBATIONS[name][2] if name in PERTURBATIONS else "level", fontsize=8)
        ax.set_ylabel("accuracy (%)", fontsize=8)
        ax.set_ylim(0, 100)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"Accuracy under perturbations ({int(curves['n'].iloc[0])} faces)"
                 if "n" in curves and len(curves) else "Accuracy under perturbations",
                 fontsize=10)
    fig.tight_layout()
    return fig
