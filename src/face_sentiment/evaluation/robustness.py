"""Robustness to image conditions: accuracy curves under controlled perturbations.

"Works in different lighting" is a claim to measure, not to assume. Each perturbation acts on
the 48x48 uint8 crops at a ladder of strengths (the first level of each is the identity, scored
once) and every model is scored on the same perturbed images with its own preprocessing:
brightness scaling, gamma, contrast, Gaussian noise, Gaussian blur, JPEG quality and
down/up-scaling (`face_sentiment.degradations`, the definitions that camera augmentation
trains with). Noise is seeded per level, so curves are reproducible.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from face_sentiment.degradations import (
    blur,
    brightness,
    contrast,
    gamma,
    gaussian_noise,
    jpeg,
    rescale,
)

Perturbation = Callable[..., np.ndarray]
# name: (function, levels with the identity first, axis label)
PERTURBATIONS: dict[str, tuple[Perturbation, tuple[float, ...], str]] = {
    "brightness": (brightness, (1.0, 0.5, 0.25, 1.5, 2.0), "pixel scale factor"),
    "gamma": (gamma, (1.0, 0.5, 0.7, 1.5, 2.5), "gamma"),
    "contrast": (contrast, (1.0, 0.6, 0.3, 0.15, 2.0), "contrast factor"),
    "noise": (gaussian_noise, (0.0, 8.0, 16.0, 30.0, 45.0), "noise sigma (grey levels)"),
    "blur": (blur, (0.0, 0.75, 1.25, 2.0, 3.0), "blur sigma (pixels)"),
    "jpeg": (jpeg, (100.0, 50.0, 25.0, 10.0, 5.0), "JPEG quality"),
    "resolution": (rescale, (48.0, 32.0, 20.0, 14.0, 8.0), "down-scaled side (pixels)"),
}


def sample_split(dataset, split: str = "PrivateTest", count: int | None = None,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of a split, a seeded random subset of `count` when given."""
    images, labels = dataset.select(split)
    if count and count < len(labels):
        chosen = np.sort(np.random.default_rng(seed).choice(len(labels), count, replace=False))
        images, labels = images[chosen], labels[chosen]
    return images, labels


def perturb(faces: np.ndarray, name: str, level: float, seed: int = 0) -> np.ndarray:
    function = PERTURBATIONS[name][0]
    return function(faces, level, seed=seed)


def accuracy_curves(predictors: list, images: np.ndarray, labels: np.ndarray,
                    perturbations: dict | None = None, seed: int = 0) -> pd.DataFrame:
    """One row per (model, perturbation, level): accuracy and the share of unchanged
    predictions relative to the clean images."""
    perturbations = perturbations or PERTURBATIONS
    rows = []
    clean = {p.name: p.predict(images).argmax(1) for p in predictors}
    for name, (_, levels, _) in perturbations.items():
        for index, level in enumerate(levels):
            perturbed = perturb(images, name, level, seed + index) if index else None
            for predictor in predictors:  # the first level is the identity: reuse clean
                predicted = predictor.predict(perturbed).argmax(1) if index else \
                    clean[predictor.name]
                rows.append({"model": predictor.name, "perturbation": name, "level": level,
                             "accuracy": float((predicted == labels).mean()),
                             "unchanged": float((predicted == clean[predictor.name]).mean()),
                             "n": int(len(labels))})
    return pd.DataFrame(rows)


def summary_table(curves: pd.DataFrame) -> pd.DataFrame:
    """Per model and perturbation: clean accuracy, worst accuracy over levels, the drop."""
    grouped = curves.groupby(["perturbation", "model"], sort=False)
    table = grouped.agg(clean=("accuracy", "first"), worst=("accuracy", "min"))
    table["drop"] = table["clean"] - table["worst"]
    return table


def reader_summary(curves: pd.DataFrame) -> pd.DataFrame:
    """`summary_table` for a report: clean and worst accuracy in percent, the level where the
    worst occurs, and the drop in points."""
    table = summary_table(curves)
    worst_rows = curves.loc[curves.groupby(["perturbation", "model"], sort=False)
                            ["accuracy"].idxmin()].set_index(["perturbation", "model"])
    return pd.DataFrame({"clean (%)": 100 * table["clean"], "worst (%)": 100 * table["worst"],
                         "at level": worst_rows["level"].reindex(table.index),
                         "drop (points)": 100 * table["drop"]}, index=table.index)


def occlude_mouth(faces: np.ndarray, height: float = 0.22, width: float = 0.5) -> np.ndarray:
    """Cover the mouth region of FER2013-framed crops with each face's mean grey.

    The box is centred where FER2013 puts the mouth (`faces.FER2013_FRAMING.mouth_y`), `height`
    and `width` given as fractions of the crop side.
    """
    from face_sentiment.live.faces import FER2013_FRAMING

    side = faces.shape[1]
    top = int(round((FER2013_FRAMING.mouth_y - height / 2) * side))
    bottom = int(round((FER2013_FRAMING.mouth_y + height / 2) * side))
    left, right = int(round((0.5 - width / 2) * side)), int(round((0.5 + width / 2) * side))
    covered = faces.copy()
    means = faces.reshape(len(faces), -1).mean(1).round().astype(np.uint8)
    covered[:, top:bottom, left:right] = means[:, None, None]
    return covered
