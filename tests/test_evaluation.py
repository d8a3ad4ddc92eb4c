"""Evaluation: summary metrics and calibration on hand-made probability matrices, the TFMA
predictions frame, config and result parsing (on a fake result shaped like TFMA's), the plots,
and one real TFMA run cross-checked against scikit-learn."""

import math
from types import SimpleNamespace

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import f1_score

from face_sentiment.evaluation.metrics import (
    QUALITY_SLICES,
    Evaluation,
    break_ties,
    comparison_table,
    eval_config,
    evaluate_all,
    evaluate_on_sets,
    evaluate_predictor,
    expected_calibration_error,
    headline_table,
    per_class_metrics,
    per_class_table,
    predictions_frame,
    quality_bins,
    reliability_table,
    run_tfma,
    summary_metrics,
    tfma_metrics_table,
    tfma_per_class,
    tfma_slice_accuracy,
    worst_confusion,
)
from face_sentiment.evaluation.plots import (
    plot_confusion,
    plot_confusion_matrix,
    plot_reliability,
)

matplotlib.use("Agg")

CLASSES3 = ("a", "b", "c")

# Four samples, three classes. Per row: label, prediction, top-2 set, probability of the label.
#   0: label 0, predicts 0 (right), top-2 {0, 1} (hit),  p = 0.7
#   1: label 2, predicts 1 (wrong), top-2 {1, 2} (hit),  p = 0.3
#   2: label 0, predicts 2 (wrong), top-2 {2, 1} (miss), p = 0.2
#   3: label 1, predicts 1 (right), top-2 {1, 0} (hit),  p = 0.8
PROBS4 = np.array([[0.7, 0.2, 0.1],
                   [0.1, 0.6, 0.3],
                   [0.2, 0.3, 0.5],
                   [0.15, 0.8, 0.05]])
LABELS4 = np.array([0, 2, 0, 1])


def confident_rows(confidence: float, count: int, correct: int, classes: int = 3):
    """`count` rows whose top class (index 0) has probability `confidence`; the first
    `correct` of them are labelled 0 (right), the rest 1 (wrong)."""
    rest = (1 - confidence) / (classes - 1)
    probabilities = np.full((count, classes), rest)
    probabilities[:, 0] = confidence
    labels = np.array([0] * correct + [1] * (count - correct))
    return labels, probabilities


def stacked(*parts):
    return (np.concatenate([labels for labels, _ in parts]),
            np.concatenate([probabilities for _, probabilities in parts]))


# --- summary metrics -------------------------------------------------------------------------

def test_summary_metrics_by_hand():
    metrics = summary_metrics(LABELS4, PROBS4)
    assert metrics["n"] == 4
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert metrics["top2_accuracy"] == pytest.approx(0.75)
    expected_nll = -(math.log(0.7) + math.log(0.3) + math.log(0.2) + math.log(0.8)) / 4
    assert metrics["nll"] == pytest.approx(expected_nll)
    # predictions 0, 1, 2, 1 against labels 0, 2, 0, 1:
    # class 0: P 1/1, R 1/2 -> 2/3; class 1: P 1/2, R 1/1 -> 2/3; class 2: P 0, R 0 -> 0
    assert metrics["macro_f1"] == pytest.approx(4 / 9)
    assert metrics["ece"] == pytest.approx(expected_calibration_error(LABELS4, PROBS4))
    assert set(metrics) == {"n", "accuracy", "macro_f1", "top2_accuracy", "ece", "nll"}


def test_macro_f1_averages_over_the_classes_in_the_set():
    # A 4-class model on a set labelled with classes 0 and 1 only; it predicts 0, 3, 1, 1.
    labels = np.array([0, 0, 1, 1])
    probabilities = np.eye(4)[[0, 3, 1, 1]] * 0.7 + 0.075
    # class 0: P 1/1, R 1/2 -> 2/3; class 1: P 2/2, R 2/2 -> 1; class 3 is not in the set.
    assert summary_metrics(labels, probabilities)["macro_f1"] == pytest.approx((2 / 3 + 1) / 2)


def test_summary_nll_clips_a_zero_probability():
    probabilities = np.array([[1.0, 0.0], [0.5, 0.5]])
    nll = summary_metrics(np.array([1, 0]), probabilities)["nll"]
    assert nll == pytest.approx((-math.log(1e-7) - math.log(0.5)) / 2)


def test_evaluation_object_derives_predictions_summary_and_per_class():
    evaluation = Evaluation("toy", LABELS4, PROBS4, CLASSES3)
    np.testing.assert_array_equal(evaluation.predicted, [0, 1, 2, 1])
    assert evaluation.summary() == summary_metrics(LABELS4, PROBS4)
    table = evaluation.per_class()
    assert list(table.index) == list(CLASSES3)
    np.testing.assert_allclose(table["precision"], [1.0, 0.5, 0.0])
    np.testing.assert_allclose(table["recall"], [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(table["support"], [2, 1, 1])


def test_per_class_metrics_includes_absent_classes():
    table = per_class_metrics(np.array([0, 0, 1]), np.array([0, 1, 1]), ("x", "y", "z"))
    assert table.loc["z"].tolist() == [0.0, 0.0, 0.0, 0]
    assert table.loc["x", "f1"] == pytest.approx(f1_score([0, 0, 1], [0, 1, 1], average=None)[0])


# --- calibration -----------------------------------------------------------------------------

def test_ece_of_a_perfectly_calibrated_toy_case_is_zero():
    # confidence 0.75 right 3 times in 4, confidence 0.95 right 19 times in 20
    labels, probabilities = stacked(confident_rows(0.75, 4, 3), confident_rows(0.95, 20, 19))
    assert expected_calibration_error(labels, probabilities) == pytest.approx(0.0, abs=1e-12)


def test_ece_of_an_overconfident_case_by_hand():
    # 4 rows at confidence 0.95 with 2 right: gap 0.45, weight 0.4
    # 6 rows at confidence 0.55 with 3 right: gap 0.05, weight 0.6
    # ECE = 0.4 * 0.45 + 0.6 * 0.05 = 0.21
    labels, probabilities = stacked(confident_rows(0.95, 4, 2), confident_rows(0.55, 6, 3))
    assert expected_calibration_error(labels, probabilities) == pytest.approx(0.21)


def test_ece_of_an_always_wrong_certain_model_is_one():
    labels, probabilities = confident_rows(1.0, 5, 0)
    assert expected_calibration_error(labels, probabilities) == pytest.approx(1.0)


def test_reliability_table_bins_and_counts():
    labels, probabilities = stacked(confident_rows(0.95, 4, 2), confident_rows(0.55, 6, 3),
                                    confident_rows(1.0, 3, 3))
    table = reliability_table(labels, probabilities)
    assert len(table) == 15
    assert table["count"].sum() == len(labels)
    np.testing.assert_allclose(table["low"], np.linspace(0, 1, 16)[:-1])
    np.testing.assert_allclose(table["high"], np.linspace(0, 1, 16)[1:])
    occupied = table[table["count"] > 0]
    # 0.55 -> bin 8 [0.533, 0.600); 0.95 and 1.0 -> the last bin [0.933, 1.0]
    assert occupied.index.tolist() == [8, 14]
    assert occupied.loc[8].tolist()[2:] == pytest.approx([6, 0.55, 0.5])
    assert occupied.loc[14, "count"] == 7
    assert occupied.loc[14, "confidence"] == pytest.approx((4 * 0.95 + 3 * 1.0) / 7)
    assert occupied.loc[14, "accuracy"] == pytest.approx(5 / 7)
    assert table.drop(index=[8, 14])[["confidence", "accuracy"]].isna().all().all()


def test_reliability_table_other_bin_count():
    rng = np.random.default_rng(1)
    probabilities = rng.dirichlet(np.ones(7), 200)
    labels = rng.integers(0, 7, 200)
    table = reliability_table(labels, probabilities, bins=10)
    assert len(table) == 10 and table["count"].sum() == 200
    # the confidence of every row lies inside its own bin
    filled = table.dropna()
    assert ((filled.confidence >= filled.low) & (filled.confidence <= filled.high)).all()


# --- slices and the predictions frame --------------------------------------------------------

def quality_features(count: int, seed: int = 0, index=None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({name: rng.normal(size=count) for name in QUALITY_SLICES}, index=index)


def test_quality_bins_are_balanced_and_ordered():
    features = quality_features(30)
    bins = quality_bins(features)
    assert list(bins.columns) == [f"{name}_bin" for name in QUALITY_SLICES]
    for name in QUALITY_SLICES:
        column = bins[f"{name}_bin"]
        assert column.value_counts().to_dict() == {"low": 10, "mid": 10, "high": 10}
        values = features[name]
        assert values[column == "low"].max() < values[column == "mid"].min()
        assert values[column == "mid"].max() < values[column == "high"].min()


def test_quality_bins_stay_balanced_with_ties():
    features = pd.DataFrame({name: np.zeros(9) for name in QUALITY_SLICES})
    bins = quality_bins(features)
    for name in QUALITY_SLICES:
        assert bins[f"{name}_bin"].value_counts().to_dict() == {"low": 3, "mid": 3, "high": 3}


def test_predictions_frame_columns_and_values():
    evaluation = Evaluation("toy", LABELS4, PROBS4, CLASSES3)
    frame = predictions_frame(evaluation)
    assert list(frame.columns) == ["label", "prediction", "true_class"]
    assert frame["label"].dtype == np.int64
    assert frame["true_class"].tolist() == ["a", "c", "a", "b"]
    for row, vector in enumerate(frame["prediction"]):
        assert vector.dtype == np.float32 and vector.shape == (3,)
        np.testing.assert_allclose(vector, PROBS4[row], rtol=1e-6)


def test_ties_at_the_top_go_to_the_first_class_as_numpy_argmax_has_it():
    tied = np.array([[0.25, 0.375, 0.375, 0.0], [0.5, 0.25, 0.25, 0.0]], np.float32)
    broken = break_ties(tied)
    assert broken.argmax(axis=1).tolist() == tied.argmax(axis=1).tolist() == [1, 0]
    assert (broken[:, 1] > broken[:, 2])[0] and broken[0, 2] < 0.375  # the tie is gone
    np.testing.assert_array_equal(broken[1], tied[1])  # a row without a tie is unchanged
    np.testing.assert_array_equal(broken[0, [0, 3]], tied[0, [0, 3]])  # nor are untied entries
    assert np.abs(broken - tied).max() <= 2e-6


def test_predictions_frame_with_features_aligns_on_position():
    evaluation = Evaluation("toy", np.arange(9) % 3, np.eye(3)[np.arange(9) % 3], CLASSES3)
    features = quality_features(9, index=np.arange(100, 109))  # index unrelated to rows
    frame = predictions_frame(evaluation, features)
    assert list(frame.columns) == ["label", "prediction", "true_class",
                                   "brightness_bin", "contrast_bin", "sharpness_bin"]
    assert len(frame) == 9 and not frame.isna().any().any()
    expected = quality_bins(features.reset_index(drop=True))
    pd.testing.assert_frame_equal(frame[expected.columns], expected)


# --- TFMA config and result parsing ----------------------------------------------------------

@pytest.mark.tensorflow
def test_eval_config_parses_with_expected_specs():
    config = eval_config(7, ["true_class", "brightness_bin"])
    assert config.model_specs[0].label_key == "label"
    assert config.model_specs[0].prediction_key == "prediction"
    assert [list(spec.feature_keys) for spec in config.slicing_specs] == [
        [], ["true_class"], ["brightness_bin"]]
    names = [[metric.class_name for metric in spec.metrics] for spec in config.metrics_specs]
    assert names == [["ExampleCount", "SparseCategoricalAccuracy",
                      "SparseTopKCategoricalAccuracy", "MultiClassConfusionMatrixPlot"],
                     ["Precision", "Recall"]]
    assert '"k": 2' in config.metrics_specs[0].metrics[2].config
    assert list(config.metrics_specs[1].binarize.class_ids.values) == list(range(7))


@pytest.mark.tensorflow
def test_eval_config_without_slices_has_only_overall():
    config = eval_config(3, [])
    assert [list(spec.feature_keys) for spec in config.slicing_specs] == [[]]
    assert list(config.metrics_specs[1].binarize.class_ids.values) == [0, 1, 2]


def metrics(accuracy: float, top2: float, count: float) -> dict:
    return {"sparse_categorical_accuracy": {"doubleValue": accuracy},
            "sparse_top_k_categorical_accuracy": {"doubleValue": top2},
            "example_count": {"doubleValue": count}}


# Shaped like EvalResult.slicing_metrics: (slice key, {output: {sub key: {metric: value}}}).
FAKE_RESULT = SimpleNamespace(slicing_metrics=[
    ((), {"": {
        "": {**metrics(0.5, 0.75, 8.0),
             "multi_class_confusion_matrix_plot": {"confusionMatrixAtThresholds": {}}},
        "classId:0": {"precision": {"doubleValue": 0.25}, "recall": {"doubleValue": 1.0}},
    }}),
    ((("true_class", "happy"),), {"": {"": metrics(1.0, 1.0, 3.0)}}),
    ((("brightness_bin", "low"),), {"": {"": metrics(0.2, 0.6, 5.0)}}),
])


def test_tfma_metrics_table_is_tidy():
    table = tfma_metrics_table(FAKE_RESULT)
    assert list(table.columns) == ["slice", "sub_key", "metric", "value"]
    assert len(table) == 3 + 2 + 3 + 3  # the confusion plot has no doubleValue: skipped
    overall = table[(table.slice == "overall") & (table.sub_key == "")]
    assert dict(zip(overall.metric, overall.value, strict=True)) == {
        "sparse_categorical_accuracy": 0.5, "sparse_top_k_categorical_accuracy": 0.75,
        "example_count": 8.0}
    per_class = table[table.sub_key == "classId:0"]
    assert per_class.set_index("metric").value.to_dict() == {"precision": 0.25, "recall": 1.0}
    assert set(table.slice) == {"overall", "true_class=happy", "brightness_bin=low"}


def test_tfma_metrics_table_of_an_empty_result():
    table = tfma_metrics_table(SimpleNamespace(slicing_metrics=[]))
    assert table.empty and list(table.columns) == ["slice", "sub_key", "metric", "value"]


def test_tfma_metrics_table_values_are_numeric_when_tfma_reports_nan():
    result = SimpleNamespace(slicing_metrics=[((), {"": {
        "": metrics(0.5, 0.75, 8.0),
        "classId:1": {"precision": {"doubleValue": "NaN"}, "recall": {"doubleValue": 0.0}},
    }})])
    table = tfma_metrics_table(result)
    assert pd.api.types.is_float_dtype(table["value"])
    assert table.set_index(["sub_key", "metric"]).value.isna().sum() == 1


def test_tfma_slice_accuracy_pivots_overall_metrics_per_slice():
    slices = tfma_slice_accuracy(tfma_metrics_table(FAKE_RESULT))
    assert list(slices.columns) == ["n", "accuracy", "top2_accuracy"]
    assert list(slices.index) == sorted(["overall", "true_class=happy", "brightness_bin=low"])
    assert slices.loc["overall"].tolist() == [8.0, 0.5, 0.75]
    assert slices.loc["true_class=happy"].tolist() == [3.0, 1.0, 1.0]
    assert slices.loc["brightness_bin=low"].tolist() == [5.0, 0.2, 0.6]


# --- plots, predictors and comparison tables -------------------------------------------------

def test_plot_confusion_returns_a_figure_with_normalised_cells():
    evaluation = Evaluation("toy", LABELS4, PROBS4, CLASSES3)
    figure = plot_confusion(evaluation)
    assert isinstance(figure, Figure)
    ax = figure.axes[0]
    cells = [float(text.get_text()) for text in ax.texts]
    assert len(cells) == 9
    # rows of the normalised confusion matrix sum to one for classes with support
    assert np.array(cells).reshape(3, 3).sum(axis=1) == pytest.approx([1.0, 1.0, 1.0],
                                                                       abs=0.011)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(CLASSES3)
    counts = plot_confusion(evaluation, normalise=False)
    assert sorted(int(t.get_text()) for t in counts.axes[0].texts) == [0] * 5 + [1] * 4
    plt.close("all")


def test_plot_confusion_matrix_of_a_dataset_lacking_a_model_class_into_an_axis():
    """Two true classes, three predicted: rows normalised, row totals beside the names; the
    counts view shows the raw numbers; drawn into the axis it is given."""
    counts = np.array([[3, 1, 0], [0, 0, 2]])
    fig, (left, right) = plt.subplots(1, 2)
    assert plot_confusion_matrix(counts, ["a", "c"], CLASSES3, title="shares", ax=left) is fig
    cells = np.array([float(text.get_text()) for text in left.texts]).reshape(2, 3)
    assert cells == pytest.approx(np.array([[0.75, 0.25, 0.0], [0.0, 0.0, 1.0]]))
    assert [t.get_text() for t in left.get_yticklabels()] == ["a (4)", "c (2)"]
    assert [t.get_text() for t in left.get_xticklabels()] == list(CLASSES3)
    assert left.get_title() == "shares"
    plot_confusion_matrix(counts, ["a", "c"], CLASSES3, normalise=False, ax=right)
    assert [t.get_text() for t in right.texts] == ["3", "1", "0", "0", "0", "2"]
    assert [t.get_text() for t in right.get_yticklabels()] == ["a", "c"]
    empty_row = plot_confusion_matrix(np.array([[0, 0], [1, 1]]), ["x", "y"])
    assert [float(t.get_text()) for t in empty_row.axes[0].texts] == [0.0, 0.0, 0.5, 0.5]
    plt.close("all")


def test_plot_reliability_draws_one_curve_per_evaluation():
    first = Evaluation("first", LABELS4, PROBS4, CLASSES3)
    labels, probabilities = confident_rows(0.95, 4, 2)
    second = Evaluation("second", labels, probabilities, CLASSES3)
    figure = plot_reliability([first, second])
    assert isinstance(figure, Figure)
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert legend[0] == "perfect calibration"
    assert legend[1].startswith("first (ECE ") and legend[2] == "second (ECE 0.450)"
    plt.close("all")


class FixedPredictor:
    name = "fixed"
    classes = CLASSES3

    def predict(self, faces):
        return PROBS4[: len(faces)]


def test_evaluate_predictor_and_comparison_table():
    faces = np.zeros((4, 48, 48), np.uint8)
    evaluation = evaluate_predictor(FixedPredictor(), faces, LABELS4.tolist())
    assert evaluation.name == "fixed" and evaluation.classes == CLASSES3
    assert isinstance(evaluation.labels, np.ndarray)
    renamed = evaluate_predictor(FixedPredictor(), faces, LABELS4, name="other")
    table = comparison_table([evaluation, renamed])
    assert list(table.index) == ["fixed", "other"]
    assert table.loc["fixed", "accuracy"] == pytest.approx(0.5)
    assert table.loc["other", "top2_accuracy"] == pytest.approx(0.75)


def test_evaluate_all_keys_by_predictor_name_or_given_name():
    faces = np.zeros((4, 48, 48), np.uint8)
    by_own_name = evaluate_all([FixedPredictor()], faces, LABELS4)
    assert list(by_own_name) == ["fixed"] and by_own_name["fixed"].name == "fixed"
    renamed = evaluate_all({"ours": FixedPredictor(), "theirs": FixedPredictor()}, faces, LABELS4)
    assert [e.name for e in renamed.values()] == ["ours", "theirs"]
    assert renamed["ours"].summary() == by_own_name["fixed"].summary()


def test_evaluate_on_sets_cuts_each_set_and_names_evaluations_after_it():
    faces = np.zeros((4, 48, 48), np.uint8)
    sets = {"first": (faces, LABELS4), "second": (faces[:2], LABELS4[:2])}
    every = evaluate_on_sets(FixedPredictor(), sets)
    assert [(name, len(e.labels)) for name, e in every.items()] == [("first", 4), ("second", 2)]
    assert every["first"].name == "first"
    cut = evaluate_on_sets(FixedPredictor(), sets, max_images=3)
    assert [len(e.labels) for e in cut.values()] == [3, 2]


def test_comparison_table_with_the_accuracy_interval():
    """The column is stats.accuracy_interval over images, in percent."""
    from face_sentiment.stats import accuracy_interval

    labels, probabilities = confident_rows(0.9, 40, 30)
    evaluation = Evaluation("toy", labels, probabilities, CLASSES3)
    accuracy, low, high = accuracy_interval(evaluation.predicted == labels, 500, seed=1)
    assert evaluation.accuracy_interval(500, seed=1) == (accuracy, low, high) and accuracy == 0.75
    table = comparison_table({"toy": evaluation}, resamples=500, seed=1)
    assert table.loc["toy", "accuracy 95% CI"] == f"{100 * low:.2f} to {100 * high:.2f}"
    assert "accuracy 95% CI" not in comparison_table([evaluation]).columns
    everything_right = Evaluation("right", *confident_rows(0.9, 10, 10), CLASSES3)
    assert comparison_table([everything_right], 200).loc["right", "accuracy 95% CI"] == \
        "100.00 to 100.00"


def test_report_tables_are_in_percent_with_the_interval_columns():
    from face_sentiment.stats import accuracy_interval

    labels, probabilities = confident_rows(0.9, 40, 30)
    evaluation = Evaluation("toy", labels, probabilities, CLASSES3)
    _, low, high = accuracy_interval(evaluation.predicted == labels, 500, seed=1)
    table = headline_table({"toy": evaluation}, resamples=500, seed=1)
    assert table.loc["toy", "accuracy %"] == pytest.approx(75.0)
    assert table.loc["toy", "accuracy %_ci_low"] == pytest.approx(100 * low)
    assert table.loc["toy", "accuracy %_ci_high"] == pytest.approx(100 * high)
    assert table.loc["toy", "top-2 accuracy %"] == pytest.approx(
        100 * evaluation.summary()["top2_accuracy"])
    assert "accuracy %_ci_low" not in headline_table([evaluation]).columns
    other = Evaluation("other", LABELS4, PROBS4, CLASSES3)
    per_class = per_class_table([other, Evaluation("same", LABELS4, PROBS4, CLASSES3)])
    assert list(per_class.columns[:4]) == [("", "faces"), ("other", "precision %"),
                                           ("other", "recall %"), ("other", "F1 %")]
    assert per_class[("", "faces")].tolist() == [2, 1, 1]
    assert per_class[("other", "recall %")].tolist() == pytest.approx([50.0, 100.0, 0.0])


def test_worst_confusion_is_the_largest_row_share():
    # class a: one right, one taken for c; class b right; class c taken for b
    assert worst_confusion(Evaluation("x", LABELS4, PROBS4, CLASSES3)) == ("c", "b", 1.0)


def test_tfma_per_class_reads_top1_sub_keys():
    table = tfma_metrics_table(SimpleNamespace(slicing_metrics=[((), {"": {
        "classId:1 topK:1": {"precision": {"doubleValue": 0.5}, "recall": {"doubleValue": 1.0}},
        "classId:0 topK:1": {"precision": {"doubleValue": 1.0}, "recall": {"doubleValue": 0.5}},
    }})]))
    per_class = tfma_per_class(table, CLASSES3[:2])
    assert list(per_class.index) == ["a", "b"]
    assert per_class.loc["a", "recall"] == 0.5 and per_class.loc["b", "precision"] == 0.5


# --- one real TFMA run -----------------------------------------------------------------------

@pytest.mark.tensorflow
@pytest.mark.slow
def test_run_tfma_agrees_with_scikit_learn(tmp_path):
    """One Beam pipeline on 63 rows: overall and per-class-slice accuracy equal sklearn's."""
    rng = np.random.default_rng(5)
    count = 63
    labels = np.arange(count) % 7
    probabilities = rng.dirichlet(np.ones(7), count)
    probabilities[::2, :] = 0.5 * probabilities[::2, :] + 0.5 * np.eye(7)[labels[::2]]
    classes = tuple(f"class{i}" for i in range(7))
    evaluation = Evaluation("toy", labels, probabilities, classes)
    frame = predictions_frame(evaluation, quality_features(count, seed=2))
    result = run_tfma(frame, 7, tmp_path / "tfma")
    slices = tfma_slice_accuracy(tfma_metrics_table(result))
    summary = evaluation.summary()
    assert slices.loc["overall", "n"] == count
    assert slices.loc["overall", "accuracy"] == pytest.approx(summary["accuracy"], abs=1e-6)
    assert slices.loc["overall", "top2_accuracy"] == pytest.approx(summary["top2_accuracy"],
                                                                  abs=1e-6)
    correct = evaluation.predicted == labels
    for index, name in enumerate(classes):
        row = slices.loc[f"true_class={name}"]
        assert row["n"] == 9
        assert row["accuracy"] == pytest.approx(correct[labels == index].mean(), abs=1e-6)
    # per-class precision and recall of the top-1 prediction: scikit-learn's exactly
    per_class = tfma_per_class(tfma_metrics_table(result), classes)
    expected = evaluation.per_class()
    np.testing.assert_allclose(per_class["recall"], expected["recall"], atol=1e-6)
    np.testing.assert_allclose(per_class["precision"], expected["precision"], atol=1e-6)
    bins = frame["brightness_bin"].to_numpy()
    for tertile in ("low", "mid", "high"):
        row = slices.loc[f"brightness_bin={tertile}"]
        assert row["n"] == 21
        assert row["accuracy"] == pytest.approx(correct[bins == tertile].mean(), abs=1e-6)
    assert any((tmp_path / "tfma").iterdir())


# --- which sets a run is scored on (release.evaluation_sets) ----------------------------------

@pytest.mark.tensorflow  # evaluation.release imports model.export (Keras)
def test_fer2013_run_shares_every_set_with_fer(fer2013_csv, ferplus_csv):
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.evaluation.release import evaluation_sets

    dataset = load_dataset(fer2013_csv, ferplus_csv)
    own, shared = evaluation_sets(dataset, "fer2013")
    assert own == {}
    assert list(shared) == ["PublicTest", "PrivateTest", "FER+ PrivateTest (majority)"]
    assert shared["PrivateTest"][1].tolist() == dataset.select("PrivateTest")[1].tolist()
    # FER+ PrivateTest rows 6 (contempt, not one of fer's classes) and 8 (fear): only 8 stays.
    assert shared["FER+ PrivateTest (majority)"][1].tolist() == [2]
    without_ferplus = evaluation_sets(load_dataset(fer2013_csv), "fer2013")[1]
    assert list(without_ferplus) == ["PublicTest", "PrivateTest"]


@pytest.mark.tensorflow  # evaluation.release imports model.export (Keras)
def test_ferplus_run_keeps_contempt_to_itself(fer2013_csv, ferplus_csv):
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.evaluation.release import evaluation_sets

    own, shared = evaluation_sets(load_dataset(fer2013_csv, ferplus_csv), "ferplus")
    assert list(own) == ["PublicTest", "PrivateTest", "PrivateTest (FER+ reference rule)"]
    assert own["PrivateTest"][1].tolist() == [7, 2]  # FER+ labels, contempt included
    # Rows 6 (contempt 6 of 10) and 8 (fear 9, the single unknown vote dropped) hold under the
    # stricter reference rule as well.
    assert own["PrivateTest (FER+ reference rule)"][1].tolist() == [7, 2]
    assert list(shared) == ["FER+ PrivateTest (majority)"]  # fer's seven classes only
    assert shared["FER+ PrivateTest (majority)"][1].tolist() == [2]


@pytest.mark.tensorflow  # evaluation.release imports model.export (Keras)
def test_reference_rule_set_drops_rows_without_a_strict_majority(fer2013_csv, ferplus_table,
                                                                 write_ferplus):
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.evaluation.release import evaluation_sets

    # PrivateTest row 8 becomes fear 4, sadness 3, surprise 3: a plain majority only.
    ferplus_table.loc[8, ["fear", "sadness", "surprise", "unknown"]] = [4, 3, 3, 0]
    own, _ = evaluation_sets(load_dataset(fer2013_csv, write_ferplus(ferplus_table)), "ferplus")
    assert own["PrivateTest"][1].tolist() == [7, 2]
    assert own["PrivateTest (FER+ reference rule)"][1].tolist() == [7]


@pytest.mark.tensorflow  # evaluation.release imports model.export (Keras)
def test_score_variant_scores_the_ferplus_sets_with_intervals(fer2013_csv, ferplus_csv):
    """The FER+ variant's two PrivateTest sets (majority labels with contempt; FER+'s reference
    rule), one table row each with its interval, and their evaluations."""
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.evaluation.release import score_variant, variant_sets
    from face_sentiment.labels import FERPLUS_CLASSES

    class Contempt:
        name, classes = "variant", FERPLUS_CLASSES

        def predict(self, faces):
            return np.tile(np.eye(8)[7], (len(faces), 1))  # always contempt

    dataset = load_dataset(fer2013_csv, ferplus_csv)
    sets = variant_sets(dataset)
    assert list(sets) == ["FER+ PrivateTest (majority)", "FER+ PrivateTest (reference rule)"]
    assert sets["FER+ PrivateTest (majority)"][1].tolist() == [7, 2]
    table, evaluations = score_variant(Contempt(), dataset, resamples=200)
    assert table.index.name == "set" and list(table.index) == list(sets)
    assert table["accuracy"].tolist() == [np.mean(labels == 7) for _, labels in sets.values()]
    assert table.loc["FER+ PrivateTest (majority)", "accuracy"] == 0.5  # labels [7, 2]
    assert table["accuracy 95% CI"].tolist() == [
        "{:.2f} to {:.2f}".format(*(100 * np.array(evaluations[name].accuracy_interval(200)[1:])))
        for name in sets]
    assert evaluations["FER+ PrivateTest (majority)"].classes == FERPLUS_CLASSES
    cut, _ = score_variant(Contempt(), dataset, resamples=200, max_images=1)
    assert cut["n"].tolist() == [1, 1]
