"""Cross-dataset evaluation: score any model on a labelled folder of faces or photographs.

A labelled folder dataset is a directory or a zip holding images and a `labels.csv` with at
least `path,label` (path relative to the folder); every other column is a per-image attribute
(subject, gender, age group...) that the bias audit can slice by. Images that are already face
crops (CK+ 48x48) are used as they are; whole photographs (the Taiwan faces set) go through the
same face detection and alignment as the Pi runner (`face_sentiment.live.faces`), so the score
includes the deployed pipeline's detector and framing.

Why: FER2013 accuracy alone says little about other people, cameras and posed expressions.
Labels are matched to the model's classes by name; a dataset class the model cannot predict
(CK+'s contempt) is reported and excluded, and a model class the dataset lacks (CK+ has no
neutral) is kept in the confusion columns (predictions into it count as errors) but left out of
macro-F1 and per-class recall. `restrict=True` gives the alternative protocol that only lets
the model choose among the dataset's classes. Frames of one sequence are near-duplicates, so
metrics can be aggregated per sequence and intervals bootstrapped by subject.

Data locations come from environment variables or `data/raw/`, never from a fixed path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, f1_score

from face_sentiment.data.folder_dataset import (
    LABELS_FILE,
    DatasetError,
    FaceCrops,
    FolderDataset,
    dataset_faces,
    load_folder_dataset,
)
from face_sentiment.evaluation.ab_testing import accuracy_interval
from face_sentiment.evaluation.metrics import per_class_metrics, plot_confusion_matrix
from face_sentiment.evaluation.predictors import load_predictors

# --------------------------------------------------------------------------------------------
# Scoring


@dataclass
class CrossResult:
    """One model on one dataset: rows scored, their probabilities and the class bookkeeping."""

    model: str
    dataset: str
    model_classes: tuple[str, ...]
    table: pd.DataFrame  # rows scored (face found, label known to the model), with attributes
    labels: np.ndarray  # index into model_classes
    probabilities: np.ndarray  # (n, len(model_classes))
    present: tuple[int, ...]  # model class indices that occur in the dataset
    excluded: dict[str, int]  # dataset labels the model cannot predict: count
    no_face: int
    restrict: bool = False

    @property
    def predicted(self) -> np.ndarray:
        if not self.restrict:
            return self.probabilities.argmax(1)
        present = np.array(self.present)
        return present[self.probabilities[:, present].argmax(1)]

    @property
    def correct(self) -> np.ndarray:
        return self.predicted == self.labels

    def restricted(self) -> CrossResult:
        """The same predictions with the model limited to the dataset's classes."""
        return CrossResult(**{**self.__dict__, "restrict": True})


def usable_rows(dataset: FolderDataset, crops: FaceCrops, classes: tuple[str, ...]
                ) -> tuple[pd.DataFrame, np.ndarray, dict[str, int]]:
    """The rows a model with `classes` scores (a face found, a label it can predict): their
    table, their face crops, and how many rows each label it cannot predict left out."""
    table = dataset.table[crops.found].reset_index(drop=True)
    known = table["label"].isin(classes).to_numpy()
    excluded = {k: int(v) for k, v in table.loc[~known, "label"].value_counts().items()}
    return table[known].reset_index(drop=True), crops.faces[known], excluded


def score(predictor, dataset: FolderDataset, crops: FaceCrops | None = None) -> CrossResult:
    """Predict every usable image of `dataset` with `predictor` (see predictors.Predictor)."""
    crops = crops or dataset_faces(dataset)
    classes = tuple(predictor.classes)
    table, faces, excluded = usable_rows(dataset, crops, classes)
    labels = np.array([classes.index(label) for label in table["label"]], np.int64)
    probabilities = predictor.predict(faces) if len(faces) else np.zeros((0, len(classes)))
    return CrossResult(predictor.name, dataset.name, classes, table, labels,
                       np.asarray(probabilities, np.float64), tuple(sorted(set(labels.tolist()))),
                       excluded, int((~crops.found).sum()))


def aggregate(result: CrossResult, by: list[str]) -> CrossResult:
    """One row per group (e.g. CK+ subject+sequence): mean probabilities, the group's label."""
    keys = result.table[by].astype(str).agg("|".join, axis=1)
    codes, uniques = pd.factorize(keys)
    labels = result.labels
    conflicting = pd.Series(labels).groupby(codes).nunique()
    if (conflicting > 1).any():
        raise DatasetError(f"groups by {by} mix labels, e.g. {uniques[conflicting.idxmax()]}")
    probabilities = np.stack([result.probabilities[codes == c].mean(0)
                              for c in range(len(uniques))])
    first = pd.Series(np.arange(len(codes))).groupby(codes).first().to_numpy()
    table = result.table.iloc[first].reset_index(drop=True)
    return CrossResult(**{**result.__dict__, "table": table, "labels": labels[first],
                          "probabilities": probabilities})


def metrics(result: CrossResult, cluster: str | None = None, resamples: int = 2000,
            seed: int = 0) -> dict:
    """Accuracy (with a bootstrap interval, by `cluster` when given), macro-F1 over the
    dataset's classes, and the bookkeeping of what was scored."""
    correct = result.correct
    clusters = result.table[cluster].to_numpy() if cluster else None
    accuracy, low, high = accuracy_interval(correct, resamples, seed=seed, clusters=clusters)
    return {
        "model": result.model, "dataset": result.dataset, "n": int(len(correct)),
        "accuracy": accuracy, "accuracy_ci_low": low, "accuracy_ci_high": high,
        "macro_f1": float(f1_score(result.labels, result.predicted, labels=list(result.present),
                                   average="macro", zero_division=0)),
        "restricted": result.restrict, "no_face": result.no_face,
        "excluded": ", ".join(f"{k} ({v})" for k, v in result.excluded.items()) or "-",
    }


def per_class(result: CrossResult) -> pd.DataFrame:
    """Precision, recall, F1 and support of the classes present in the dataset."""
    table = per_class_metrics(result.labels, result.predicted, result.model_classes)
    return table.iloc[list(result.present)]


def confusion(result: CrossResult, normalise: bool = True) -> pd.DataFrame:
    """Rows: the dataset's classes; columns: every class the model can predict."""
    matrix = confusion_matrix(result.labels, result.predicted,
                              labels=np.arange(len(result.model_classes)))
    rows = matrix[list(result.present)].astype(float)
    if normalise:
        rows = rows / np.maximum(rows.sum(1, keepdims=True), 1)
    names = np.array(result.model_classes)
    return pd.DataFrame(rows, index=pd.Index(names[list(result.present)], name="true"),
                        columns=pd.Index(names, name="predicted"))


def recall_table(results: dict[str, CrossResult]) -> pd.DataFrame:
    """Per-class recall, one column per model (side by side)."""
    return pd.DataFrame({name: per_class(result)["recall"] for name, result in results.items()})


def evaluate(predictors: list, dataset: FolderDataset, crops: FaceCrops | None = None,
             aggregate_by: list[str] | None = None, cluster: str | None = None,
             resamples: int = 2000, seed: int = 0
             ) -> tuple[pd.DataFrame, dict[str, CrossResult]]:
    """Every predictor on one dataset: the metrics table (open and restricted protocols;
    accuracy intervals from `resamples` bootstrap resamples, by `cluster` when given)."""
    crops = crops or dataset_faces(dataset)
    results, rows = {}, []
    for predictor in predictors:
        result = score(predictor, dataset, crops)
        if aggregate_by:
            result = aggregate(result, aggregate_by)
        results[predictor.name] = result
        rows.append(metrics(result, cluster, resamples, seed))
        rows.append(metrics(result.restricted(), cluster, resamples, seed))
    return pd.DataFrame(rows), results


def plot_confusions(results: dict[str, CrossResult]):
    """Row-normalised confusion matrices side by side (`metrics.plot_confusion_matrix`): rows
    are the dataset's classes, columns every class the model can predict."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.6 * len(results), 4.6), squeeze=False)
    for ax, (name, result) in zip(axes[0], results.items(), strict=True):
        counts = confusion(result, normalise=False)
        plot_confusion_matrix(counts.to_numpy(), list(counts.index), list(counts.columns),
                              title=f"{result.dataset}: {name}", ax=ax)
    fig.tight_layout()
    return fig


def accuracy_by(result: CrossResult, column: str) -> pd.Series:
    """Accuracy of each value of `column` (e.g. each subject) over its scored rows."""
    return result.table.assign(correct=result.correct).groupby(column).correct.mean()


def plot_accuracy_by(results: dict[str, CrossResult], column: str, bins: int = 10):
    """Histogram of per-`column` accuracy (how many subjects score how well), one series per
    model: a mean over people hides whether a model fails some of them entirely."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    dataset = next(iter(results.values())).dataset if results else ""
    ax.hist([accuracy_by(result, column) for result in results.values()], bins=bins,
            range=(0, 1), label=list(results))
    ax.set_xlabel(f"accuracy of one {column}'s images")
    ax.set_ylabel(f"{column}s")
    ax.legend(fontsize=7)
    ax.set_title(f"{dataset}: accuracy split by {column}")
    fig.tight_layout()
    return fig


def load_available(names: tuple[str, ...] | None = None
                   ) -> tuple[dict[str, FolderDataset], list[str]]:
    """The known datasets (default: all of KNOWN_DATASETS) that are present, loaded, and one
    line per dataset saying what was loaded from where, or why it was skipped."""
    from face_sentiment.data.folder_dataset import (
        KNOWN_DATASETS,
        is_available,
        load_known,
        missing_message,
    )

    loaded, lines = {}, []
    for name in names or tuple(KNOWN_DATASETS):
        if is_available(name):
            loaded[name] = load_known(name)
            lines.append(f"{name}: {len(loaded[name].table)} images from {loaded[name].source}")
        else:
            lines.append(f"skipped: {missing_message(name)}")
    return loaded, lines


def report(dataset_path: str, models: list[str], aggregate_by: list[str] | None = None,
           cluster: str | None = None, detector: str = "blazeface-full") -> dict[str, pd.DataFrame]:
    """The CLI's tables for one dataset: metrics (open and restricted), per-class recall and
    the confusion of every model."""
    dataset = load_folder_dataset(dataset_path)
    for column in (aggregate_by or []) + ([cluster] if cluster else []):
        if column not in dataset.table.columns:
            raise DatasetError(f"{dataset_path}: no column {column!r} in {LABELS_FILE}; "
                               f"attributes: {', '.join(dataset.attributes) or 'none'}")
    table, results = evaluate(load_predictors(models), dataset, dataset_faces(dataset, detector),
                              aggregate_by, cluster)
    tables = {"metrics": table, "per-class recall": recall_table(results)}
    tables.update({f"confusion {name}": confusion(result) for name, result in results.items()})
    return tables
