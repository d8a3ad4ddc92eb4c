"""Per-group metrics: fairlearn `MetricFrame` tables of accuracy, macro-F1 and each class's
recall, by one sensitive attribute or by the intersection of several.

The metric functions are plain numpy (fast enough for the thousands of recomputations of the
gap tests' bootstrap and permutations); macro-F1 is `face_sentiment.stats.macro_f1` over the
classes present in the audited labels.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame

from face_sentiment.stats import macro_f1


def accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    return float((np.asarray(labels) == np.asarray(predicted)).mean()) if len(labels) else np.nan


def recall_of(labels: np.ndarray, predicted: np.ndarray, cls: int) -> float:
    members = np.asarray(labels) == cls
    return float((np.asarray(predicted)[members] == cls).mean()) if members.any() else np.nan


def metric_functions(classes: tuple[str, ...], present: tuple[int, ...]) -> dict:
    """MetricFrame metrics: accuracy, macro-F1 over present classes, recall of each class."""
    functions = {"accuracy": accuracy, "macro_f1": partial(macro_f1, classes=present)}
    functions.update({f"recall_{classes[c]}": partial(recall_of, cls=c) for c in present})
    return functions


def group_metrics(labels: np.ndarray, predicted: np.ndarray, sensitive: pd.DataFrame,
                  classes: tuple[str, ...]) -> MetricFrame:
    """fairlearn MetricFrame; several sensitive columns give their intersections."""
    present = tuple(sorted(set(np.asarray(labels).tolist())))
    functions = metric_functions(classes, present)
    frame = MetricFrame(metrics=functions, y_true=np.asarray(labels),
                        y_pred=np.asarray(predicted), sensitive_features=sensitive)
    counts = MetricFrame(metrics={"n": lambda y, p: len(y)}, y_true=np.asarray(labels),
                         y_pred=np.asarray(predicted), sensitive_features=sensitive)
    frame.counts = counts.by_group["n"]  # group sizes, shown beside the metrics
    return frame


def by_group_table(frame: MetricFrame) -> pd.DataFrame:
    return pd.concat([frame.counts.rename("n"), frame.by_group], axis=1)


def by_group_models(predictions: dict[str, np.ndarray], labels: np.ndarray,
                    sensitive: pd.DataFrame, classes: tuple[str, ...],
                    metrics: tuple[str, ...] = ("accuracy", "macro_f1")) -> pd.DataFrame:
    """One column per (model, metric), one row per group, with group sizes."""
    parts = {}
    for name, predicted in predictions.items():
        frame = group_metrics(labels, predicted, sensitive, classes)
        parts[name] = by_group_table(frame)[["n", *metrics]]
    return pd.concat(parts, axis=1)


def intersection_key(sensitive: pd.DataFrame) -> pd.Series:
    return sensitive.astype(str).agg(" & ".join, axis=1)
