"""A/B comparison of two models on the same test images: McNemar's exact test, a bootstrap
confidence interval of the accuracy difference and macro-F1 (all from `stats`),
plus the rule for promoting a challenger.

FER2013-only rule (`ab-test`'s verdict, `promote_b`): a challenger beats the champion on one
split (PublicTest by default; PrivateTest is for reporting and never decides) when its
accuracy is higher with McNemar's exact two-sided p < 0.05 AND the 95% bootstrap interval of
the difference lies above zero AND its macro-F1 is not lower by more than one point.
Continual training promotes by `pipeline.promotion` instead, which also weighs the lab's
held-out people (docs/continual-training.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from face_sentiment.stats import bootstrap_difference, macro_f1, mcnemar_exact

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
        macro_f1_a=macro_f1(labels, predicted_a),
        macro_f1_b=macro_f1(labels, predicted_b),
    )


def compare_pairs(labels: np.ndarray, predicted: dict[str, np.ndarray],
                  pairs: list[tuple[str, str]], resamples: int = 10_000,
                  seed: int = 0) -> pd.DataFrame:
    """`compare` for each (champion, challenger) pair of names in `predicted` (predicted
    classes of each model on the same labelled images): one row per pair, indexed 'A -> B'."""
    rows = {f"{a} -> {b}": compare(labels, predicted[a], predicted[b], a, b, resamples,
                                   seed).to_dict() for a, b in pairs}
    return pd.DataFrame(rows).T


def readable_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """`compare_pairs`' table for a report: accuracies in percent, the difference B - A in
    points with its 95% interval, the discordant counts, McNemar's p and the rule's verdict."""
    table = pd.DataFrame({
        "accuracy A %": 100 * pairs["accuracy_a"].astype(float),
        "accuracy B %": 100 * pairs["accuracy_b"].astype(float),
        "B - A (points)": 100 * pairs["difference"].astype(float),
        "B - A (points)_ci_low": 100 * pairs["ci_low"].astype(float),
        "B - A (points)_ci_high": 100 * pairs["ci_high"].astype(float),
        "only A right": pairs["only_a_correct"].astype(int),
        "only B right": pairs["only_b_correct"].astype(int),
        "McNemar p": pairs["mcnemar_p"].astype(float),
        "B promoted": ["yes" if promote else "no" for promote in pairs["promote_b"]],
    }, index=pairs.index)
    return table.rename_axis("A -> B")

