"""One definition of each statistic (face_sentiment.stats), and every stage using it.

The case that used to split the package: a class the test set does not contain, predicted
once. Macro-F1 leaves that class out (its prediction is still a miss of the true class), and
the promotion rule, the evaluation summary, the bias audit and the monitor give the same value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from face_sentiment.evaluation.ab_testing import compare
from face_sentiment.evaluation.metrics import summary_metrics
from face_sentiment.monitoring.performance import window_performance
from face_sentiment.responsible import bias_audit
from face_sentiment.stats import (
    bootstrap,
    cluster_units,
    macro_f1,
    majority_class,
    resample,
)

CLASSES = ("angry", "disgust", "fear")
# class 2 (fear) is absent from the labels but predicted once
LABELS = np.array([0, 0, 1, 1])
PREDICTED = np.array([0, 0, 1, 2])
# F1: angry 1.0, disgust 2/3 (one hit, one miss); fear left out, not scored zero
EXPECTED = (1.0 + 2 / 3) / 2


def test_macro_f1_leaves_out_classes_the_labels_lack():
    assert macro_f1(LABELS, PREDICTED) == pytest.approx(EXPECTED)
    assert macro_f1(LABELS, PREDICTED, classes=range(3)) == pytest.approx(EXPECTED)
    assert macro_f1(LABELS, PREDICTED, classes=[1]) == pytest.approx(2 / 3)
    assert np.isnan(macro_f1(LABELS, PREDICTED, classes=[2]))
    names = np.array(CLASSES)
    assert macro_f1(names[LABELS], names[PREDICTED]) == pytest.approx(EXPECTED)


def test_every_stage_gives_the_same_macro_f1():
    one_hot = np.eye(3)[PREDICTED]
    assert summary_metrics(LABELS, one_hot)["macro_f1"] == pytest.approx(EXPECTED)
    result = compare(LABELS, PREDICTED, PREDICTED, resamples=10)
    assert result.macro_f1_a == pytest.approx(EXPECTED)
    names = np.array(CLASSES)
    faces = pd.DataFrame({"true_label": names[LABELS], "top": names[PREDICTED],
                          "track": [None] * 4})
    table = window_performance(faces, pd.Series(0, index=faces.index), CLASSES, resamples=10)
    assert table["macro_f1"].iloc[0] == pytest.approx(EXPECTED)
    frame = bias_audit.group_metrics(LABELS, PREDICTED, pd.DataFrame({"g": ["a"] * 4}), CLASSES)
    assert frame.overall["macro_f1"] == pytest.approx(EXPECTED)


def test_bootstrap_resamples_whole_clusters():
    units = cluster_units(6, np.array(["p", "q", "p", "r", "q", "p"]))
    assert [u.tolist() for u in units] == [[0, 2, 5], [1, 4], [3]]
    picked = resample(np.random.default_rng(0), units)
    sizes = {len(u) for u in units}
    assert len(picked) in {a + b + c for a in sizes for b in sizes for c in sizes}
    # each person's images are all right or all wrong: a clustered interval is wider
    correct = np.repeat([1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0], 25)
    people = np.repeat(np.arange(8), 25)

    def mean(values):
        return float(values.mean())

    point, low, high = bootstrap(mean, correct, resamples=500)
    _, cluster_low, cluster_high = bootstrap(mean, correct, clusters=people, resamples=500)
    assert point == pytest.approx(0.625)
    assert cluster_high - cluster_low > 2 * (high - low)


def test_bootstrap_can_go_on_drawing_from_one_generator():
    values = np.arange(20.0)
    first = bootstrap(np.mean, values, resamples=50, seed=np.random.default_rng(3))
    again = bootstrap(np.mean, values, resamples=50, seed=3)
    assert first == again
    assert all(np.isnan(bootstrap(np.mean, np.zeros(0), resamples=5)))


def test_majority_class_is_the_accuracy_of_always_answering_it():
    assert majority_class(np.array([3, 3, 1, 3])) == (3, 0.75)
    assert majority_class(np.array([0, 1]), 7) == (0, 0.5)  # a tie: the first class
    top, share = majority_class(np.array([], dtype=int))
    assert top == 0 and np.isnan(share)
