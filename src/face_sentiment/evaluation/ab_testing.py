"""A/B comparison of two models on the same test images: McNemar's exact test and a bootstrap
confidence interval of the accuracy difference, plus the rule for promoting a challenger; and
the percentile bootstrap interval of one model's accuracy (`accuracy_interval`), by image or by
cluster (e.g. the person), that every evaluation reports.

Promotion rule (the champion is the shipped model): a challenger replaces it only when, on
PublicTest (the selection split; PrivateTest is for reporting and never decides), its accuracy
is higher with McNemar's exact two-sided p < 0.05 AND the 95% bootstrap interval of the
difference lies above zero AND its macro-F1 is not lower by more than one point.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.stats import binomtest
from sklearn.metrics import f1_score

ALPHA = 0.05
MAX_MACRO_F1_DROP = 0.01


@dataclass(frozen=True)
class ABResult:
    name_a: str
    name_b: str
    n: int
    accuracy_a: float
    accuracy_b: float
    difference: float  # accuracy_b - accuracy_a
    ci_low: float
    ci_high: float
    only_a_correct: int
    only_b_correct: int
    mcnemar_p: float
    macro_f1_a: float
    macro_f1_b: float

    @property
    def promote_b(self) -> bool:
        """The documented promotion rule, B as challenger."""
        return (self.difference > 0 and self.mcnemar_p < ALPHA and self.ci_low > 0
                and self.macro_f1_b >= self.macro_f1_a - MAX_MACRO_F1_DROP)

    def to_dict(self) -> dict:
        return {**asdict(self), "promote_b": self.promote_b}


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


def compare(labels: np.ndarray, predicted_a: np.ndarray, predicted_b: np.ndarray,
            name_a: str = "A", name_b: str = "B", resamples: int = 10_000,
            seed: int = 0, clusters: np.ndarray | None = None) -> ABResult:
    """Compare two models' predicted classes on the same labelled images (the interval
    resampling whole `clusters`, e.g. people, when given)."""
    labels = np.asarray(labels)
    correct_a, correct_b = predicted_a == labels, predicted_b == labels
    only_a, only_b, p_value = mcnemar_exact(correct_a, correct_b)
    difference, low, high = bootstrap_difference(correct_a, correct_b, resamples, seed=seed,
                                                 clusters=clusters)
    return ABResult(
        name_a=name_a, name_b=name_b, n=len(labels),
        accuracy_a=float(correct_a.mean()), accuracy_b=float(correct_b.mean()),
        difference=difference, ci_low=low, ci_high=high,
        only_a_correct=only_a, only_b_correct=only_b, mcnemar_p=p_value,
        macro_f1_a=float(f1_score(labels, predicted_a, average="macro")),
        macro_f1_b=float(f1_score(labels, predicted_b, average="macro")),
    )


def compare_pairs(labels: np.ndarray, predicted: dict[str, np.ndarray],
                  pairs: list[tuple[str, str]], resamples: int = 10_000,
                  seed: int = 0) -> pd.DataFrame:
    """`compare` for each (champion, challenger) pair of names in `predicted` (predicted
    classes of each model on the same labelled images): one row per pair, indexed 'A -> B'."""
    rows = {f"{a} -> {b}": compare(labels, predicted[a], predicted[b], a, b, resamples,
                                   seed).to_dict() for a, b in pairs}
    return pd.DataFrame(rows).T
