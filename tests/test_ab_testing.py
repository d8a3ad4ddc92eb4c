"""A/B testing: McNemar's exact test, the bootstrap interval and the promotion rule, checked
against cases computed by hand (binomial tails written out, F1 from the confusion counts)."""

from dataclasses import replace
from math import comb

import numpy as np
import pytest
from sklearn.metrics import f1_score

from face_sentiment.evaluation.ab_testing import (
    ALPHA,
    MAX_MACRO_F1_DROP,
    ABResult,
    compare,
    compare_pairs,
)
from face_sentiment.stats import (
    accuracy_interval,
    bootstrap_difference,
    mcnemar_exact,
)


def paired(both: int, only_a: int, only_b: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """Correctness vectors with the given cells of the 2x2 table (shuffled, seeded)."""
    a = [True] * both + [True] * only_a + [False] * only_b + [False] * neither
    b = [True] * both + [False] * only_a + [True] * only_b + [False] * neither
    order = np.random.default_rng(7).permutation(len(a))
    return np.array(a)[order], np.array(b)[order]


def two_sided_binomial(k: int, n: int) -> float:
    """Exact two-sided sign-test p-value written out: 2 * P(X <= min(k, n - k)), capped at 1."""
    low = min(k, n - k)
    return min(1.0, 2 * sum(comb(n, i) for i in range(low + 1)) / 2 ** n)


# --- McNemar's exact test --------------------------------------------------------------------

def test_mcnemar_one_against_nine_is_22_over_1024():
    a, b = paired(both=5, only_a=1, only_b=9, neither=3)
    only_a, only_b, p = mcnemar_exact(a, b)
    assert (only_a, only_b) == (1, 9)
    # 2 * (C(10,0) + C(10,1)) / 2^10 = 2 * 11 / 1024
    assert p == pytest.approx(22 / 1024, abs=1e-12)
    assert p == pytest.approx(0.021484375, abs=1e-12)


@pytest.mark.parametrize(("only_a", "only_b", "expected"), [
    (0, 5, 2 / 32),    # 0.0625: five wins out of five is NOT significant at 0.05
    (0, 6, 2 / 64),    # 0.03125: six out of six is
    (2, 8, 2 * (1 + 10 + 45) / 1024),
    (3, 12, 2 * (1 + 15 + 105 + 455) / 2 ** 15),
])
def test_mcnemar_matches_hand_computed_binomial_tails(only_a, only_b, expected):
    a, b = paired(both=4, only_a=only_a, only_b=only_b, neither=2)
    got_a, got_b, p = mcnemar_exact(a, b)
    assert (got_a, got_b) == (only_a, only_b)
    assert p == pytest.approx(expected, abs=1e-12)
    assert p == pytest.approx(two_sided_binomial(only_a, only_a + only_b), abs=1e-12)


@pytest.mark.parametrize("count", [1, 4, 7])
def test_mcnemar_symmetric_discordance_gives_p_one(count):
    a, b = paired(both=10, only_a=count, only_b=count, neither=5)
    assert mcnemar_exact(a, b) == (count, count, pytest.approx(1.0))


def test_mcnemar_without_discordant_pairs_is_one():
    a, b = paired(both=6, only_a=0, only_b=0, neither=4)
    assert mcnemar_exact(a, b) == (0, 0, 1.0)


def test_mcnemar_is_symmetric_in_a_and_b_and_ignores_concordant_pairs():
    a, b = paired(both=3, only_a=2, only_b=9, neither=1)
    many_a, many_b = paired(both=300, only_a=2, only_b=9, neither=100)
    forward, backward, padded = mcnemar_exact(a, b), mcnemar_exact(b, a), mcnemar_exact(
        many_a, many_b)
    assert backward[:2] == forward[:2][::-1]
    assert backward[2] == pytest.approx(forward[2])
    assert padded == (2, 9, pytest.approx(forward[2]))


def test_mcnemar_accepts_integer_vectors():
    a, b = paired(both=5, only_a=1, only_b=9, neither=3)
    assert mcnemar_exact(a.astype(int), b.astype(int)) == mcnemar_exact(a, b)


# --- bootstrap interval of the accuracy difference --------------------------------------------

def test_bootstrap_difference_is_mean_b_minus_mean_a_and_inside_its_interval():
    a, b = paired(both=40, only_a=7, only_b=19, neither=14)
    difference, low, high = bootstrap_difference(a, b, resamples=2000)
    assert difference == pytest.approx(b.mean() - a.mean())
    assert difference == pytest.approx((19 - 7) / 80)
    assert low < difference < high


def test_bootstrap_identical_vectors_give_zero_interval():
    a, _ = paired(both=30, only_a=10, only_b=0, neither=20)
    assert bootstrap_difference(a, a.copy(), resamples=1500) == (0.0, 0.0, 0.0)


def test_bootstrap_constant_difference_has_no_spread():
    """B right and A wrong on every image: every resample's mean difference is exactly 1."""
    a, b = paired(both=0, only_a=0, only_b=25, neither=0)
    assert bootstrap_difference(a, b, resamples=1200) == (1.0, 1.0, 1.0)


def test_bootstrap_is_deterministic_given_the_seed():
    a, b = paired(both=40, only_a=9, only_b=15, neither=16)
    first = bootstrap_difference(a, b, resamples=2500, seed=3)
    assert bootstrap_difference(a, b, resamples=2500, seed=3) == first
    assert bootstrap_difference(a, b, resamples=2500, seed=4) != first


def test_bootstrap_interval_narrows_with_more_samples():
    small_a, small_b = paired(both=20, only_a=4, only_b=8, neither=8)  # n = 40
    large_a, large_b = np.tile(small_a, 50), np.tile(small_b, 50)  # n = 2000, same proportions
    small = bootstrap_difference(small_a, small_b, resamples=2000)
    large = bootstrap_difference(large_a, large_b, resamples=2000)
    assert small[0] == pytest.approx(large[0])
    width_small, width_large = small[2] - small[1], large[2] - large[1]
    assert width_small > 3 * width_large  # sqrt(50) ~ 7 in theory


def test_bootstrap_interval_width_matches_the_normal_approximation():
    """Paired differences +1 (20%), -1 (10%), 0 (70%) over n = 1000: mean 0.1, variance
    0.3 - 0.01 = 0.29, so the 95% half-width is about 1.96 * sqrt(0.29 / 1000) = 0.0334."""
    a, b = paired(both=500, only_a=100, only_b=200, neither=200)
    difference, low, high = bootstrap_difference(a, b, resamples=4000)
    assert difference == pytest.approx(0.1)
    half_width = 1.96 * np.sqrt(0.29 / 1000)
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.12)
    assert (low + high) / 2 == pytest.approx(0.1, abs=0.006)


def test_bootstrap_with_resamples_not_a_multiple_of_the_chunk_is_fully_filled():
    """2500 resamples fill 1000 + 1000 + 500 (no uninitialised tail in the buffer): the bounds
    are those of 2500 real resample means, i.e. inside [min, max] of the differences."""
    a, b = paired(both=5, only_a=3, only_b=4, neither=2)
    difference, low, high = bootstrap_difference(a, b, resamples=2500)
    assert np.isfinite([low, high]).all()
    assert -1.0 <= low < difference < high <= 1.0
    assert bootstrap_difference(a, b, resamples=2500) == (difference, low, high)


def test_bootstrap_confidence_level_widens_the_interval():
    a, b = paired(both=40, only_a=9, only_b=15, neither=16)
    _, low90, high90 = bootstrap_difference(a, b, resamples=3000, confidence=0.90)
    _, low99, high99 = bootstrap_difference(a, b, resamples=3000, confidence=0.99)
    assert low99 < low90 and high99 > high90


# --- bootstrap interval of one model's accuracy ----------------------------------------------

def test_accuracy_interval_of_one_right_one_wrong_by_hand():
    """n = 2, one right: a resample's accuracy is 0, 1/2 or 1 with probabilities 1/4, 1/2, 1/4,
    so both 2.5% tails fall on the extremes: (0.5, 0.0, 1.0)."""
    assert accuracy_interval(np.array([True, False]), resamples=4000) == (0.5, 0.0, 1.0)


def test_accuracy_interval_of_constant_outcomes_has_no_spread():
    assert accuracy_interval(np.ones(30, bool), resamples=1000) == (1.0, 1.0, 1.0)
    assert accuracy_interval(np.zeros(30, bool), resamples=1000) == (0.0, 0.0, 0.0)


def test_accuracy_interval_width_matches_the_binomial_standard_error():
    """300 of 400 right: the 95% half-width is about 1.96 * sqrt(0.75 * 0.25 / 400) = 0.0424."""
    correct = np.random.default_rng(5).permutation(np.arange(400) < 300)
    accuracy, low, high = accuracy_interval(correct, resamples=4000)
    assert accuracy == 0.75
    assert (high - low) / 2 == pytest.approx(1.96 * np.sqrt(0.75 * 0.25 / 400), rel=0.1)
    assert (low + high) / 2 == pytest.approx(0.75, abs=0.005)


def test_accuracy_interval_equals_the_difference_from_an_always_wrong_model():
    """The bounds the evaluations reported before (a bootstrap of the difference against a
    zero vector) are reproduced exactly for the same seed and resamples."""
    correct = np.random.default_rng(2).random(613) < 0.63
    for resamples, seed in ((1000, 0), (2500, 3)):
        assert accuracy_interval(correct, resamples, seed=seed) == bootstrap_difference(
            np.zeros_like(correct), correct, resamples, seed=seed)


def test_accuracy_interval_is_seeded_and_takes_integer_outcomes():
    correct = np.random.default_rng(4).random(200) < 0.5
    first = accuracy_interval(correct, 1500, seed=1)
    assert accuracy_interval(correct.astype(int), 1500, seed=1) == first
    assert accuracy_interval(correct, 1500, seed=2) != first


def test_accuracy_interval_of_nothing_is_nan():
    assert all(np.isnan(accuracy_interval(np.zeros(0, bool))))


def test_clustered_accuracy_interval_resamples_people_by_hand():
    """Person a: 3 of 3 right; person b: 0 of 3. Drawing two people gives accuracy 1, 1/2 or 0
    (probabilities 1/4, 1/2, 1/4): the interval is (0, 1). Resampling the six images instead
    gives a narrower one (all six wrong has probability 1/64 < 2.5%)."""
    correct = np.array([1, 1, 1, 0, 0, 0], bool)
    people = np.array(["a", "a", "a", "b", "b", "b"])
    assert accuracy_interval(correct, 4000, clusters=people) == (0.5, 0.0, 1.0)
    _, low, high = accuracy_interval(correct, 4000)
    assert 0.0 < low and high < 1.0


def test_clustered_accuracy_pools_images_rather_than_averaging_people():
    """Person a: 1 image, right; person b: 3 images, wrong. Accuracy is 1/4 (images pooled, not
    1/2 = the mean of people). Two-person resamples: aa -> 1, ab or ba -> 1/4, bb -> 0, so the
    middle 20% of resamples (40th to 60th percentile) is exactly 1/4."""
    correct = np.array([True, False, False, False])
    people = np.array([7, 9, 9, 9])
    assert accuracy_interval(correct, 4000, confidence=0.2, clusters=people) == (
        0.25, 0.25, 0.25)


def test_clustered_accuracy_interval_covers_its_point_and_is_seeded():
    correct = np.array([1, 1, 1, 0, 0, 0, 1, 0], bool)
    clusters = np.array(["a", "a", "a", "b", "b", "b", "c", "c"])
    accuracy, low, high = accuracy_interval(correct, 500, seed=1, clusters=clusters)
    assert low <= accuracy == correct.mean() <= high
    assert accuracy_interval(correct, 500, seed=1, clusters=clusters) == (accuracy, low, high)


# --- compare() and the promotion rule --------------------------------------------------------

def classes_with_errors(labels: np.ndarray, right: np.ndarray, wrong_as: int | None = None
                        ) -> np.ndarray:
    """Predictions equal to labels where `right`, otherwise (label + 1) % 7 or `wrong_as`."""
    wrong = (labels + 1) % 7 if wrong_as is None else np.full_like(labels, wrong_as)
    return np.where(right, labels, wrong)


def test_compare_reports_accuracies_counts_and_macro_f1():
    labels = np.arange(70) % 7
    right_a = np.arange(70) < 40
    right_b = (np.arange(70) < 50) & (np.arange(70) != 3)  # B: +11, -1
    predicted_a, predicted_b = classes_with_errors(labels, right_a), classes_with_errors(
        labels, right_b)
    result = compare(labels, predicted_a, predicted_b, "champion", "challenger",
                     resamples=2000)
    assert (result.name_a, result.name_b, result.n) == ("champion", "challenger", 70)
    assert result.accuracy_a == pytest.approx(40 / 70)
    assert result.accuracy_b == pytest.approx(49 / 70)
    assert result.difference == pytest.approx(9 / 70)
    assert (result.only_a_correct, result.only_b_correct) == (1, 10)
    assert result.mcnemar_p == pytest.approx(2 * (1 + 11) / 2 ** 11)
    assert result.ci_low <= result.difference <= result.ci_high
    assert result.macro_f1_a == pytest.approx(f1_score(labels, predicted_a, average="macro"))
    assert result.macro_f1_b == pytest.approx(f1_score(labels, predicted_b, average="macro"))
    as_dict = result.to_dict()
    assert as_dict["promote_b"] is result.promote_b
    assert {k: v for k, v in as_dict.items() if k != "promote_b"} == {
        field: getattr(result, field) for field in ABResult.__dataclass_fields__}


def test_compare_macro_f1_by_hand_and_a_challenger_that_drops_a_class_is_not_promoted():
    """300 of class 0 and 20 of class 1. A: 240/300 class-0 right (the rest called 1), all of
    class 1 right. B: calls everything 0. B is far more accurate (300 vs 260 of 320) and
    significantly so, but its macro-F1 collapses:
      A: class 0 P=1, R=0.8 -> F1 8/9; class 1 P=20/80, R=1 -> F1 0.4; macro 0.6444
      B: class 0 P=300/320, R=1 -> F1 0.9677; class 1 F1 0; macro 0.4839"""
    labels = np.array([0] * 300 + [1] * 20)
    predicted_a = labels.copy()
    predicted_a[:60] = 1
    predicted_b = np.zeros_like(labels)
    result = compare(labels, predicted_a, predicted_b, resamples=2000)
    assert result.accuracy_a == pytest.approx(260 / 320)
    assert result.accuracy_b == pytest.approx(300 / 320)
    assert (result.only_a_correct, result.only_b_correct) == (20, 60)
    assert result.mcnemar_p < 1e-4 and result.ci_low > 0 and result.difference > 0
    assert result.macro_f1_a == pytest.approx((8 / 9 + 0.4) / 2)
    assert result.macro_f1_b == pytest.approx((2 * (300 / 320) / (1 + 300 / 320) + 0) / 2)
    assert not result.promote_b


def test_compare_promotes_a_clearly_better_challenger():
    labels = np.arange(210) % 7
    right_a = np.arange(210) < 120
    right_b = np.arange(210) < 150  # B adds 30 and loses none
    result = compare(labels, classes_with_errors(labels, right_a),
                     classes_with_errors(labels, right_b), resamples=2000)
    assert (result.only_a_correct, result.only_b_correct) == (0, 30)
    assert result.mcnemar_p == pytest.approx(2 / 2 ** 30)
    assert result.ci_low > 0
    assert result.macro_f1_b > result.macro_f1_a
    assert result.promote_b
    assert result.to_dict()["promote_b"] is True


def test_compare_does_not_promote_a_better_but_not_significant_challenger():
    labels = np.arange(20) % 7
    right_a = np.arange(20) < 10
    right_b = np.arange(20) < 15  # five more right, none fewer: p = 2 / 32 = 0.0625
    result = compare(labels, classes_with_errors(labels, right_a),
                     classes_with_errors(labels, right_b), resamples=2000)
    assert result.difference == pytest.approx(0.25)
    assert result.mcnemar_p == pytest.approx(0.0625)
    assert not result.promote_b


def test_compare_never_promotes_a_worse_or_equal_challenger():
    labels = np.arange(210) % 7
    better = classes_with_errors(labels, np.arange(210) < 150)
    worse = classes_with_errors(labels, np.arange(210) < 120)
    assert not compare(labels, better, worse, resamples=1000).promote_b
    assert not compare(labels, better, better.copy(), resamples=1000).promote_b


# Every clause of the rule, on results built directly: the base case promotes, and changing one
# field at a time across its threshold must flip the decision.
PROMOTED = ABResult(name_a="A", name_b="B", n=1000, accuracy_a=0.60, accuracy_b=0.65,
                    difference=0.05, ci_low=0.02, ci_high=0.08, only_a_correct=40,
                    only_b_correct=90, mcnemar_p=0.001, macro_f1_a=0.55, macro_f1_b=0.56)


def test_promotion_base_case():
    assert PROMOTED.promote_b
    assert ALPHA == 0.05 and MAX_MACRO_F1_DROP == 0.01


@pytest.mark.parametrize(("change", "promoted"), [
    ({"difference": 0.0}, False),
    ({"difference": -0.01}, False),
    ({"mcnemar_p": 0.05}, False),          # p must be strictly below 0.05
    ({"mcnemar_p": 0.049}, True),
    ({"ci_low": 0.0}, False),              # the interval must lie strictly above zero
    ({"ci_low": -0.001}, False),
    ({"ci_low": 0.0001}, True),
    ({"macro_f1_b": 0.55 - 0.0101}, False),  # macro-F1 lower by more than one point
    ({"macro_f1_b": 0.55 - 0.009}, True),    # lower, but by less than one point
    ({"macro_f1_b": 0.30}, False),
])
def test_promotion_rule_clauses(change, promoted):
    assert replace(PROMOTED, **change).promote_b is promoted


def test_compare_pairs_gives_one_compare_row_per_pair():
    labels = np.arange(210) % 7
    predicted = {"old": classes_with_errors(labels, np.arange(210) < 120),
                 "new": classes_with_errors(labels, np.arange(210) < 150),
                 "fer": classes_with_errors(labels, np.arange(210) < 100)}
    table = compare_pairs(labels, predicted, [("old", "new"), ("fer", "new")], resamples=500)
    assert list(table.index) == ["old -> new", "fer -> new"]
    expected = compare(labels, predicted["fer"], predicted["new"], "fer", "new", 500).to_dict()
    assert table.loc["fer -> new"].to_dict() == expected
    assert table.loc["old -> new", "promote_b"]
