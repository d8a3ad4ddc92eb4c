"""The responsible stage's figures: a metric by group and model (the bias audit's
`by_group_models` table, notebook 06) and the SHAP and Grad-CAM maps of `explainability`, per
face and averaged per class (notebook 07).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

# --------------------------------------------------------------------------------------------
# Notebook 06: the bias audit (`bias_audit`)


def plot_by_group(table: pd.DataFrame, metric: str = "accuracy", title: str = ""):
    """Bars of `metric` (in percent) per group, one bar per model (from `by_group_models`)."""
    values = 100 * table.xs(metric, axis=1, level=1)
    ax = values.plot.bar(figsize=(max(4.0, 0.8 * len(values) + 2), 3.2), rot=30)
    ax.set_ylabel(f"{metric.replace('_', '-')} (%)")
    ax.set_xlabel(" x ".join(str(n) for n in values.index.names if n) or "group")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.figure.tight_layout()
    return ax.figure


# --------------------------------------------------------------------------------------------
# Notebook 07: SHAP and Grad-CAM maps (`explainability`)


def _bare(ax) -> None:
    """A map panel: no ticks, but room for a row label."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def plot_explanations(faces: np.ndarray, shap_maps: np.ndarray, cams: np.ndarray,
                      titles: list[str], per_figure: int = 4, title: str = "") -> list[Figure]:
    """Figures of at most `per_figure` faces (columns): the face, its SHAP map (red raises the
    class, blue lowers it; one colour scale per figure, clipped at the 99th percentile of
    |SHAP|) and its Grad-CAM over the face (0-1), each row with a colour bar."""
    figures = []
    for start in range(0, len(faces), per_figure):
        chunk = range(start, min(start + per_figure, len(faces)))
        fig, axes = plt.subplots(3, per_figure, figsize=(1.9 * per_figure + 1.4, 6.4),
                                 squeeze=False, constrained_layout=True)
        limit = float(np.nanpercentile(np.abs(shap_maps[list(chunk)]), 99)) or 1.0
        shap_image = cam_image = None
        for column, i in enumerate(chunk):
            axes[0, column].imshow(faces[i], cmap="gray")
            axes[0, column].set_title(titles[i], fontsize=8)
            shap_image = axes[1, column].imshow(shap_maps[i], cmap="bwr", vmin=-limit,
                                                vmax=limit)
            axes[2, column].imshow(faces[i], cmap="gray")
            cam_image = axes[2, column].imshow(cams[i], cmap="jet", alpha=0.45, vmin=0, vmax=1)
        for column in range(per_figure):
            for row in range(3):
                _bare(axes[row, column])
                if column >= len(chunk):
                    axes[row, column].axis("off")
        for row, label in enumerate(("face (true class,\ntop probability)", "SHAP",
                                     "Grad-CAM")):
            axes[row, 0].set_ylabel(label, fontsize=8)
        fig.colorbar(shap_image, ax=axes[1, :], shrink=0.9, label="SHAP value")
        fig.colorbar(cam_image, ax=axes[2, :], shrink=0.9, label="Grad-CAM (0-1)")
        fig.suptitle(f"{title} (faces {chunk.start + 1}-{chunk.stop} of {len(faces)})"
                     if title else f"faces {chunk.start + 1}-{chunk.stop} of {len(faces)}",
                     fontsize=10)
        figures.append(fig)
    return figures


def plot_class_maps(mean_face: np.ndarray, maps: np.ndarray, names: list[str],
                    title: str, colorbar_label: str = "mean attribution",
                    symmetric: bool = True, columns: int = 4) -> Figure:
    """One panel per class (at most `columns` a row): its mean map over the average face, on
    one colour scale for all classes (symmetric red/blue for signed maps, else 0 to the
    largest value), with a colour bar."""
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.9 * columns + 1.2, 2.1 * rows + 0.5),
                             squeeze=False, constrained_layout=True)
    finite = maps[np.isfinite(maps)]
    largest = float(np.abs(finite).max()) if finite.size else 1.0
    scale = (dict(cmap="bwr", vmin=-largest, vmax=largest) if symmetric
             else dict(cmap="inferno", vmin=0, vmax=largest))
    image = None
    for ax, cls_map, name in zip(axes.flat, maps, names, strict=False):
        ax.imshow(mean_face, cmap="gray")
        image = ax.imshow(cls_map, alpha=0.6, **scale)
        ax.set_title(name, fontsize=8)
        _bare(ax)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.colorbar(image, ax=axes, shrink=0.8, label=colorbar_label)
    fig.suptitle(title, fontsize=10)
    return fig
