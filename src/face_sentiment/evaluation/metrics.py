"""Evaluate a model on a FER2013 split: TFMA metrics and slices, calibration, confusion.

TensorFlow Model Analysis computes the headline metrics and every slice (by true class and by
brightness, contrast and sharpness tertiles) from a predictions table with
`tfma.analyze_raw_data` (an Apache Beam pipeline). Its per-class precision and recall count a
face as predicted for the class it ranks first (top-1, as the model answers), so they are the
same quantities scikit-learn computes from the argmax; both are shown side by side as a
cross-check. Calibration (expected calibration error and the reliability diagram's bins) is
computed here, and the report tables (`headline_table`, `per_class_table`) are in percent; the
figures (confusion matrix, reliability diagram) are in `evaluation.plots`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from google.protobuf import text_format
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from face_sentiment.data.transform import BUCKET_NAMES
from face_sentiment.stats import accuracy_interval, macro_f1

QUALITY_SLICES = ("brightness", "contrast", "sharpness")
TERTILES = BUCKET_NAMES  # ("low", "mid", "high"): tft.bucketize ids 0, 1, 2


@dataclass
class Evaluation:
    """Predictions of one model on one labelled set, with everything derived from them."""

    name: str
    labels: np.ndarray
    probabilities: np.ndarray
    classes: tuple[str, ...]

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    def summary(self) -> dict[str, float]:
        return summary_metrics(self.labels, self.probabilities)

    def per_class(self) -> pd.DataFrame:
        return per_class_metrics(self.labels, self.predicted, self.classes)

    def accuracy_interval(self, resamples: int = 10_000, seed: int = 0
                          ) -> tuple[float, float, float]:
        """(accuracy, low, high): the 95% percentile bootstrap interval over images."""
        return accuracy_interval(self.predicted == self.labels, resamples, seed=seed)


def summary_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1, top-2 accuracy, ECE and negative log-likelihood.

    Macro-F1 averages over the classes present in `labels`: a model with an extra class (the
    FER+ variant's contempt) scored on a set without it is not charged a zero F1 for a class
    the set cannot contain; its predictions of that class still count as misses.
    """
    predicted = probabilities.argmax(axis=1)
    top2 = np.argsort(probabilities, axis=1)[:, -2:]
    picked = probabilities[np.arange(len(labels)), labels]
    return {
        "n": int(len(labels)),
        "accuracy": float((predicted == labels).mean()),
        "macro_f1": macro_f1(labels, predicted),
        "top2_accuracy": float((top2 == labels[:, None]).any(axis=1).mean()),
        "ece": expected_calibration_error(labels, probabilities),
        "nll": float(-np.log(np.clip(picked, 1e-7, 1.0)).mean()),
    }


def per_class_metrics(labels: np.ndarray, predicted: np.ndarray,
                      classes: tuple[str, ...]) -> pd.DataFrame:
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=np.arange(len(classes)), zero_division=0)
    return pd.DataFrame({"precision": precision, "recall": recall, "f1": f1,
                         "support": support}, index=pd.Index(classes, name="class"))


def worst_confusion(evaluation: Evaluation) -> tuple[str, str, float]:
    """The largest off-diagonal share of a row-normalised confusion matrix: (true class,
    class it is taken for, share of the true class's faces)."""
    classes = len(evaluation.classes)
    matrix = confusion_matrix(evaluation.labels, evaluation.predicted,
                              labels=np.arange(classes)).astype(float)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    np.fill_diagonal(shares, -1.0)
    true, predicted = np.unravel_index(int(shares.argmax()), shares.shape)
    return evaluation.classes[true], evaluation.classes[predicted], float(shares[true, predicted])


def reliability_table(labels: np.ndarray, probabilities: np.ndarray,
                      bins: int = 15) -> pd.DataFrame:
    """Top-class confidence bins: count, mean confidence and accuracy in each."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        members = index == b
        rows.append({"low": edges[b], "high": edges[b + 1], "count": int(members.sum()),
                     "confidence": float(confidence[members].mean()) if members.any() else np.nan,
                     "accuracy": float(correct[members].mean()) if members.any() else np.nan})
    return pd.DataFrame(rows)


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray,
                               bins: int = 15) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by count."""
    table = reliability_table(labels, probabilities, bins).dropna()
    weights = table["count"] / table["count"].sum()
    return float((weights * (table.accuracy - table.confidence).abs()).sum())


def quality_bins(features: pd.DataFrame) -> pd.DataFrame:
    """low/mid/high bins of brightness, contrast and sharpness: TF Transform's Training-quantile
    buckets when `features` carries them (`data.processed.with_quality_buckets`), else the
    tertiles of this set."""
    bins = {}
    for name in QUALITY_SLICES:
        if f"{name}_bucket" in features:
            values = np.asarray(TERTILES)[features[f"{name}_bucket"].to_numpy(int)]
        else:
            values = pd.qcut(features[name].rank(method="first"), 3,
                             labels=list(TERTILES)).astype(str)
        bins[f"{name}_bin"] = np.asarray(values)
    return pd.DataFrame(bins, index=features.index)


def break_ties(probabilities: np.ndarray, step: float = 1e-6) -> np.ndarray:
    """Float32 probabilities where no row's top value is shared: in a row whose highest
    probability several classes tie (an int8 model's outputs are quantised), each tied class
    loses `step` times its index, so every reader's top-1 (TFMA's, TensorFlow's) is the first
    of them, as numpy's argmax and so `Evaluation.predicted` have it. Other rows and entries
    are unchanged; `step` is far below an int8 output's resolution (1/256)."""
    probabilities = np.array(probabilities, dtype=np.float32)
    top = probabilities.max(axis=1, keepdims=True)
    at_top = probabilities == top
    tied = at_top.sum(axis=1) > 1
    offsets = step * np.arange(probabilities.shape[1], dtype=np.float32)
    probabilities[tied] -= at_top[tied] * offsets
    return probabilities


def predictions_frame(evaluation: Evaluation, features: pd.DataFrame | None = None
                      ) -> pd.DataFrame:
    """The table TFMA reads: label, prediction (probability vector, ties at the top broken as
    `break_ties` does) and slice columns."""
    frame = pd.DataFrame({
        "label": evaluation.labels.astype(np.int64),
        "prediction": list(break_ties(evaluation.probabilities)),
        "true_class": np.asarray(evaluation.classes)[evaluation.labels],
    })
    if features is not None:
        bins = quality_bins(features.reset_index(drop=True))
        frame = pd.concat([frame, bins], axis=1)
    return frame


def eval_config(num_classes: int, slice_columns: list[str]):
    """TFMA EvalConfig: overall and per-slice accuracy, top-2, and per-class precision and
    recall of the top-1 prediction (a face counts as predicted for class c when c has the
    highest probability; without top_k, TFMA would threshold each probability at 0.5)."""
    import tensorflow_model_analysis as tfma

    slices = "\n".join(f'slicing_specs {{ feature_keys: ["{c}"] }}' for c in slice_columns)
    class_ids = ", ".join(str(i) for i in range(num_classes))
    return text_format.Parse(f"""
        model_specs {{ label_key: "label" prediction_key: "prediction" }}
        metrics_specs {{
          metrics {{ class_name: "ExampleCount" }}
          metrics {{ class_name: "SparseCategoricalAccuracy" }}
          metrics {{ class_name: "SparseTopKCategoricalAccuracy" config: '"k": 2' }}
          metrics {{ class_name: "MultiClassConfusionMatrixPlot" }}
        }}
        metrics_specs {{
          binarize {{ class_ids {{ values: [{class_ids}] }} }}
          metrics {{ class_name: "Precision" config: '"top_k": 1' }}
          metrics {{ class_name: "Recall" config: '"top_k": 1' }}
        }}
        slicing_specs {{}}
        {slices}
    """, tfma.EvalConfig())


def run_tfma(frame: pd.DataFrame, num_classes: int, output_path: Path | None = None):
    """Run TFMA over a predictions frame; returns the EvalResult."""
    import tensorflow_model_analysis as tfma
    from tensorflow.python.util import deprecation

    slice_columns = [c for c in frame.columns if c == "true_class" or c.endswith("_bin")]
    with deprecation.silence():  # TFMA's writer calls a deprecated TF reader on every run
        return tfma.analyze_raw_data(frame, eval_config(num_classes, slice_columns),
                                     output_path=str(output_path) if output_path else None)


def tfma_metrics_table(result) -> pd.DataFrame:
    """Tidy TFMA metrics: one row per slice, sub-key (class) and metric."""
    rows = []
    for slice_key, by_output in result.slicing_metrics:
        name = "overall" if not slice_key else ", ".join(f"{k}={v}" for k, v in slice_key)
        for sub_keys in by_output.values():
            for sub_key, metrics in sub_keys.items():
                for metric, value in metrics.items():
                    if "doubleValue" in value:
                        rows.append({"slice": name, "sub_key": sub_key or "",
                                     "metric": metric,
                                     # TFMA reports an undefined metric as the string 'NaN'
                                     "value": float(value["doubleValue"])})
    return pd.DataFrame(rows, columns=["slice", "sub_key", "metric", "value"])


def tfma_slice_accuracy(table: pd.DataFrame) -> pd.DataFrame:
    """Accuracy, top-2 and count per slice, from `tfma_metrics_table`."""
    overall = table[table.sub_key == ""]
    pivot = overall.pivot_table(index="slice", columns="metric", values="value")
    renamed = pivot.rename(columns={"sparse_categorical_accuracy": "accuracy",
                                    "sparse_top_k_categorical_accuracy": "top2_accuracy",
                                    "example_count": "n"})
    return renamed[["n", "accuracy", "top2_accuracy"]].sort_index()


def tfma_per_class(table: pd.DataFrame, classes: tuple[str, ...]) -> pd.DataFrame:
    """TFMA's overall per-class precision and recall (top-1), one row per class, from
    `tfma_metrics_table` (sub-keys 'classId:<i> topK:1')."""
    rows = table[(table.slice == "overall") & table.sub_key.str.startswith("classId:")].copy()
    rows["class"] = [classes[int(key.split()[0].split(":")[1])] for key in rows.sub_key]
    pivot = rows.pivot_table(index="class", columns="metric", values="value")
    return pivot[["precision", "recall"]].reindex(classes).rename_axis("class")


def evaluate_predictor(predictor, images: np.ndarray, labels: np.ndarray,
                       name: str | None = None) -> Evaluation:
    """Run a predictor (see `face_sentiment.evaluation.predictors`) over labelled faces."""
    return Evaluation(name or predictor.name, np.asarray(labels),
                      predictor.predict(images), tuple(predictor.classes))


def evaluate_all(predictors: list | dict, images: np.ndarray, labels: np.ndarray
                 ) -> dict[str, Evaluation]:
    """Several predictors on the same labelled faces, by name: a list is keyed by each
    predictor's own name, a dict {display name: predictor} by its keys."""
    named = predictors if isinstance(predictors, dict) else {p.name: p for p in predictors}
    return {name: evaluate_predictor(p, images, labels, name) for name, p in named.items()}


def evaluate_on_sets(predictor, sets: dict[str, tuple[np.ndarray, np.ndarray]],
                     max_images: int | None = None) -> dict[str, Evaluation]:
    """One predictor on several labelled sets {name: (images, labels)}, each cut to its first
    `max_images` when given; every evaluation is named after its set."""
    return {name: evaluate_predictor(predictor, images[:max_images], labels[:max_images], name)
            for name, (images, labels) in sets.items()}


def interval_text(low: float, high: float) -> str:
    """An accuracy interval as the tables print it: '61.23 to 64.56' (percent)."""
    return f"{100 * low:.2f} to {100 * high:.2f}"


def comparison_table(evaluations: list[Evaluation] | dict[str, Evaluation],
                     resamples: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Headline metrics of several evaluations, one row each (named after the evaluation).

    With `resamples`, also the accuracy's 95% percentile bootstrap interval over images
    (column 'accuracy 95% CI', in percent; see `stats.accuracy_interval`).
    """
    evaluations = list(evaluations.values()) if isinstance(evaluations, dict) else evaluations
    table = pd.DataFrame({e.name: e.summary() for e in evaluations}).T
    if resamples:
        table["accuracy 95% CI"] = [interval_text(*e.accuracy_interval(resamples, seed)[1:])
                                    for e in evaluations]
    return table


def headline_table(evaluations: list[Evaluation] | dict[str, Evaluation],
                   resamples: int | None = None, seed: int = 0) -> pd.DataFrame:
    """`comparison_table` for a report: accuracy (with its 95% bootstrap interval when
    `resamples` is given), macro-F1, top-2 accuracy and ECE all in percent, NLL in nats; one
    row per evaluation."""
    evaluations = list(evaluations.values()) if isinstance(evaluations, dict) else evaluations
    rows = {}
    for evaluation in evaluations:
        summary = evaluation.summary()
        row = {"images": summary["n"], "accuracy %": 100 * summary["accuracy"]}
        if resamples:
            _, low, high = evaluation.accuracy_interval(resamples, seed)
            row.update({"accuracy %_ci_low": 100 * low, "accuracy %_ci_high": 100 * high})
        row.update({"macro-F1 %": 100 * summary["macro_f1"],
                    "top-2 accuracy %": 100 * summary["top2_accuracy"],
                    "ECE %": 100 * summary["ece"], "NLL (nats)": summary["nll"]})
        rows[evaluation.name] = row
    return pd.DataFrame(rows).T.rename_axis("model")


def per_class_table(evaluations: list[Evaluation] | dict[str, Evaluation]) -> pd.DataFrame:
    """Per-class precision, recall and F1 of several evaluations on the same faces, in
    percent, side by side (columns: model, metric), with each class's number of faces."""
    evaluations = list(evaluations.values()) if isinstance(evaluations, dict) else evaluations
    first = evaluations[0].per_class()
    parts = {("", "faces"): first["support"]}
    for evaluation in evaluations:
        table = evaluation.per_class()
        for metric, label in (("precision", "precision %"), ("recall", "recall %"),
                              ("f1", "F1 %")):
            parts[(evaluation.name, label)] = 100 * table[metric]
    return pd.DataFrame(parts)
