"""Gaps between groups with their uncertainty: is a difference real or noise?

A gap is the largest difference and the worst/best ratio of a metric across groups, each with
a stratified bootstrap interval (units resampled within their group with
`face_sentiment.stats.resample`: images, or whole clusters such as people) and a
permutation-test p-value (group labels shuffled: how often would chance alone give a gap this
large?). An audit runs many such tests per model (attributes x metrics), so the difference
p-values are also Holm-adjusted within each model's audit, and `significant` reads the
adjusted ones.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from face_sentiment.responsible.groups import accuracy, intersection_key
from face_sentiment.stats import cluster_units, macro_f1, resample

GAP_METRICS = ("accuracy", "macro_f1")


def _group_codes(groups: pd.Series | np.ndarray) -> tuple[np.ndarray, list[str]]:
    codes, names = pd.factorize(pd.Series(groups).astype(str), sort=True)
    return codes, list(names)


def _gap(values: np.ndarray) -> tuple[float, float]:
    """(max - min, min / max) over the groups' metric values."""
    values = values[~np.isnan(values)]
    high, low = values.max(), values.min()
    return float(high - low), float(low / high) if high > 0 else np.nan


def _per_group(metric, labels, predicted, codes, count: int) -> np.ndarray:
    return np.array([metric(labels[codes == g], predicted[codes == g]) for g in range(count)])


def _clustered(codes: np.ndarray, clusters: np.ndarray | None) -> np.ndarray | None:
    """Cluster code per image when every cluster lies in one group (else None)."""
    if clusters is None:
        return None
    cluster_codes, _ = pd.factorize(pd.Series(clusters).astype(str))
    spread = pd.Series(codes).groupby(cluster_codes).nunique()
    return cluster_codes if (spread == 1).all() else None


def _group_units(codes: np.ndarray, cluster_codes: np.ndarray | None,
                 count: int) -> list[list[np.ndarray]]:
    """Each group's bootstrap units: its images, or its clusters' images (people)."""
    units = []
    for g in range(count):
        members = np.flatnonzero(codes == g)
        clusters = None if cluster_codes is None else cluster_codes[members]
        units.append([members[unit] for unit in cluster_units(len(members), clusters)])
    return units


def _permuted(rng, codes: np.ndarray, cluster_codes: np.ndarray | None) -> np.ndarray:
    """Group labels shuffled across images, or across clusters when clustered."""
    if cluster_codes is None:
        return rng.permutation(codes)
    group_of = pd.Series(codes).groupby(cluster_codes).first().to_numpy()
    return rng.permutation(group_of)[cluster_codes]


def gap_test(labels: np.ndarray, predicted: np.ndarray, groups, metric: str = "accuracy",
             resamples: int = 1000, permutations: int = 1000, seed: int = 0,
             confidence: float = 0.95, clusters: np.ndarray | None = None) -> dict:
    """Largest difference and worst/best ratio of `metric` across groups, each with a
    stratified bootstrap interval and a permutation-test p-value.

    `clusters` (e.g. the person in each image): when every cluster falls in one group, the
    bootstrap resamples clusters and the permutation shuffles groups across clusters, because
    images of one person are not independent. The bootstrap interval of a max-min gap is
    biased upwards (noise alone makes groups differ), so the p-value decides significance.
    """
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    codes, names = _group_codes(groups)
    cluster_codes = _clustered(codes, clusters)
    present = tuple(sorted(set(labels.tolist())))
    function = accuracy if metric == "accuracy" else partial(macro_f1, classes=present)
    values = _per_group(function, labels, predicted, codes, len(names))
    difference, ratio = _gap(values)
    rng = np.random.default_rng(seed)
    units = _group_units(codes, cluster_codes, len(names))  # resampled within each group
    boot = np.array([_gap(np.array([function(labels[i], predicted[i]) for i in
                                    (resample(rng, group) for group in units)]))
                     for _ in range(resamples)])
    null = np.array([_gap(_per_group(function, labels, predicted,
                                     _permuted(rng, codes, cluster_codes), len(names)))
                     for _ in range(permutations)])
    tail = (1 - confidence) / 2 * 100
    return {
        "metric": metric, "groups": len(names),
        "unit": "cluster" if cluster_codes is not None else "image",
        "worst_group": names[int(np.nanargmin(values))], "worst": float(np.nanmin(values)),
        "best_group": names[int(np.nanargmax(values))], "best": float(np.nanmax(values)),
        "difference": difference,
        "difference_ci_low": float(np.percentile(boot[:, 0], tail)),
        "difference_ci_high": float(np.percentile(boot[:, 0], 100 - tail)),
        "difference_p": float((1 + np.sum(null[:, 0] >= difference)) / (1 + permutations)),
        "ratio": ratio,
        "ratio_ci_low": float(np.nanpercentile(boot[:, 1], tail)),
        "ratio_ci_high": float(np.nanpercentile(boot[:, 1], 100 - tail)),
        "ratio_p": float((1 + np.sum(null[:, 1] <= ratio)) / (1 + permutations)),
    }


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (family-wise error control), in the input order."""
    p_values = np.asarray(p_values, dtype=float)
    count = len(p_values)
    order = np.argsort(p_values, kind="stable")
    scaled = p_values[order] * (count - np.arange(count))
    adjusted = np.empty(count)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


def audit(labels: np.ndarray, predicted: np.ndarray, sensitive: pd.DataFrame,
          resamples: int = 1000, permutations: int = 1000, seed: int = 0,
          intersections: bool = True, clusters: np.ndarray | None = None) -> pd.DataFrame:
    """Gap tests for every sensitive column (and their intersection) and GAP_METRICS."""
    columns = {c: sensitive[c] for c in sensitive.columns}
    if intersections and sensitive.shape[1] > 1:
        columns[" & ".join(sensitive.columns)] = intersection_key(sensitive)
    rows = [{"attribute": name, **gap_test(labels, predicted, groups.to_numpy(), metric,
                                          resamples, permutations, seed, clusters=clusters)}
            for name, groups in columns.items() for metric in GAP_METRICS]
    table = pd.DataFrame(rows)
    table["difference_p_holm"] = holm(table["difference_p"].to_numpy())
    return table


def audit_models(predictions: dict[str, np.ndarray], labels: np.ndarray,
                 sensitive: pd.DataFrame, **kwargs) -> pd.DataFrame:
    """`audit` for several models on the same images: their gaps side by side."""
    tables = [audit(labels, predicted, sensitive, **kwargs).assign(model=name)
              for name, predicted in predictions.items()]
    table = pd.concat(tables, ignore_index=True)
    return table.set_index(["attribute", "metric", "model"]).sort_index(level=[0, 1],
                                                                         sort_remaining=False)


def significant(table: pd.DataFrame, alpha: float = 0.05, adjusted: bool = True
                ) -> pd.DataFrame:
    """Rows whose difference is significant by the permutation test (Holm-adjusted unless
    `adjusted` is False)."""
    column = "difference_p_holm" if adjusted else "difference_p"
    return table[table[column] < alpha]
