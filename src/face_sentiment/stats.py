"""One definition of each statistic the workbench reports, used by every stage (a top-level
module, like `preprocessing`: data, model, evaluation, responsible and monitoring all use it).

- `macro_f1`: the mean F1 over the classes of an explicit set that occur in the labels. A class
  the labels do not contain is left out rather than scored zero (a model with an extra class,
  the FER+ variant's contempt, or a subgroup without disgust faces is not charged for a class
  the set cannot show); predictions of such a class still count as misses of the true one.
- `accuracy_interval`, `balanced_accuracy_interval`, `bootstrap_difference`: percentile
  bootstrap intervals, resampling images, or whole clusters (people, tracks) when given,
  because images of one person are not independent.
- `bootstrap`: the same resampling for any other metric of labelled predictions.
- `resample`: one draw of units (images or clusters): what `bootstrap` and the bias audit's
  stratified bootstrap resample.
- `mcnemar_exact` (paired correctness) and `wilson_interval` (a proportion).
- `majority_class`: the most frequent label and its share, the accuracy of always answering it
  (the floor every accuracy is read against).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.stats import binomtest


def macro_f1(labels: np.ndarray, predicted: np.ndarray,
             classes: np.ndarray | list | tuple | None = None) -> float:
    """Mean F1 over the classes of `classes` (default: those in `labels`) that occur in
    `labels`; NaN when none does."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    candidates = np.unique(labels) if classes is None else classes
    scores = []
    for cls in candidates:
        support = int(np.sum(labels == cls))
        if support == 0:
            continue
        hits = int(np.sum((labels == cls) & (predicted == cls)))
        false_alarms = int(np.sum((labels != cls) & (predicted == cls)))
        scores.append(2 * hits / (2 * hits + false_alarms + (support - hits)))
    return float(np.mean(scores)) if scores else math.nan


def majority_class(labels: np.ndarray, num_classes: int | None = None) -> tuple[int, float]:
    """(most frequent label, its share of `labels`): the accuracy of a model that always
    answers that class. (0, NaN) for no labels."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0:
        return 0, math.nan
    counts = np.bincount(labels, minlength=num_classes or 0)
    return int(counts.argmax()), float(counts.max() / labels.size)


def cluster_units(count: int, clusters: np.ndarray | None = None) -> list[np.ndarray]:
    """The resampling units of `count` items: each item alone, or the items of each cluster."""
    if clusters is None:
        return [np.array([i]) for i in range(count)]
    codes, _ = pd.factorize(pd.Series(np.asarray(clusters)))
    order = np.argsort(codes, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(codes[order])) + 1)


def resample(rng: np.random.Generator, units: list[np.ndarray]) -> np.ndarray:
    """Item indices of one bootstrap resample: as many units as there are, drawn with
    replacement."""
    if not units:
        return np.zeros(0, int)
    return np.concatenate([units[i] for i in rng.integers(0, len(units), len(units))])


def bootstrap(metric: Callable[..., float], *arrays: np.ndarray,
              clusters: np.ndarray | None = None, resamples: int = 1000,
              confidence: float = 0.95, seed: int | np.random.Generator = 0
              ) -> tuple[float, float, float]:
    """(metric(*arrays), low, high): the percentile bootstrap interval of any metric of
    aligned arrays (e.g. `macro_f1` of labels and predictions), resampling items or whole
    `clusters`. Resamples where the metric is NaN are left out of the interval. `seed` may be
    a Generator, to go on drawing from it (several windows from one stream)."""
    arrays = tuple(np.asarray(a) for a in arrays)
    if not len(arrays[0]):
        return math.nan, math.nan, math.nan
    point = float(metric(*arrays))
    rng = np.random.default_rng(seed)
    units = cluster_units(len(arrays[0]), clusters)
    draws = []
    for _ in range(resamples):
        picked = resample(rng, units)
        draws.append(metric(*(a[picked] for a in arrays)))
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(draws, [tail, 100 - tail])
    return point, float(low), float(high)


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[int, int, float]:
    """(only A correct, only B correct, exact two-sided p) from paired correctness."""
    correct_a, correct_b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a = int((correct_a & ~correct_b).sum())
    only_b = int((~correct_a & correct_b).sum())
    if only_a + only_b == 0:
        return only_a, only_b, 1.0
    return only_a, only_b, float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def _resampled_means(values: np.ndarray, resamples: int, rng: np.random.Generator
                     ) -> np.ndarray:
    """Means of `resamples` bootstrap resamples (with replacement) of `values`."""
    means = np.empty(resamples)
    for start in range(0, resamples, 1000):  # chunks keep memory flat on large test sets
        count = min(1000, resamples - start)
        means[start:start + count] = values[rng.integers(0, len(values), (count, len(values)))
                                            ].mean(axis=1)
    return means


def _percentile_interval(estimates: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(estimates, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_difference(correct_a: np.ndarray, correct_b: np.ndarray, resamples: int = 10_000,
                         confidence: float = 0.95, seed: int = 0,
                         clusters: np.ndarray | None = None) -> tuple[float, float, float]:
    """Accuracy difference B - A and its percentile bootstrap interval (paired resampling; of
    whole `clusters`, e.g. people, when given, as `accuracy_interval` does)."""
    delta = np.asarray(correct_b, float) - np.asarray(correct_a, float)
    rng = np.random.default_rng(seed)
    if clusters is None:
        means = _resampled_means(delta, resamples, rng)
    else:
        codes, _ = pd.factorize(pd.Series(np.asarray(clusters)))
        sums, sizes = np.bincount(codes, weights=delta), np.bincount(codes)
        picks = rng.integers(0, len(sizes), (resamples, len(sizes)))
        means = sums[picks].sum(1) / sizes[picks].sum(1)
    return (float(delta.mean()), *_percentile_interval(means, confidence))


def accuracy_interval(correct: np.ndarray, resamples: int = 10_000, confidence: float = 0.95,
                      seed: int = 0, clusters: np.ndarray | None = None
                      ) -> tuple[float, float, float]:
    """Accuracy of per-image outcomes `correct` and its percentile bootstrap interval:
    (accuracy, low, high).

    Without `clusters`, images are resampled with replacement (the same draws, and so the same
    bounds, as `bootstrap_difference` of an always-wrong model against this one, for a given
    seed). With `clusters` (one id per image, e.g. the person), whole clusters are resampled
    and each resample's accuracy is its hits over its images: images of one person are not
    independent, so the interval must not treat them as such. An empty `correct` gives NaNs.
    """
    correct = np.asarray(correct, float)
    if len(correct) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    if clusters is None:
        estimates = _resampled_means(correct, resamples, rng)
    else:
        codes, _ = pd.factorize(pd.Series(np.asarray(clusters)))
        hits = np.bincount(codes, weights=correct)
        sizes = np.bincount(codes)
        picks = rng.integers(0, len(sizes), (resamples, len(sizes)))
        estimates = hits[picks].sum(1) / sizes[picks].sum(1)
    return (float(correct.mean()), *_percentile_interval(estimates, confidence))


def balanced_accuracy_interval(labels: np.ndarray, predicted: np.ndarray,
                               resamples: int = 10_000, confidence: float = 0.95, seed: int = 0,
                               clusters: np.ndarray | None = None
                               ) -> tuple[float, float, float]:
    """Balanced accuracy (mean recall over the classes present in `labels`) and its percentile
    bootstrap interval, resampling whole `clusters` (e.g. people) when given, else images.
    A resample that lacks a class averages the recalls of the classes it has."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    if len(labels) == 0:
        return float("nan"), float("nan"), float("nan")
    classes, label_codes = np.unique(labels, return_inverse=True)
    units = (np.arange(len(labels)) if clusters is None
             else pd.factorize(pd.Series(np.asarray(clusters)))[0])
    shape = (units.max() + 1, len(classes))
    hits = np.zeros(shape)
    sizes = np.zeros(shape)
    np.add.at(hits, (units, label_codes), (labels == predicted).astype(float))
    np.add.at(sizes, (units, label_codes), 1.0)
    point = float(np.mean(hits.sum(0) / sizes.sum(0)))
    rng = np.random.default_rng(seed)
    estimates = np.empty(resamples)
    for start in range(0, resamples, 500):  # chunks keep memory flat on large sets
        picks = rng.integers(0, shape[0], (min(500, resamples - start), shape[0]))
        seen = sizes[picks].sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            estimates[start:start + len(picks)] = np.nanmean(hits[picks].sum(1) / seen, axis=1)
    return (point, *_percentile_interval(estimates, confidence))


def wilson_interval(hits: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    if total == 0:
        return math.nan, math.nan
    p = hits / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)
