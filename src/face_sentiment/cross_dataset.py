"""Cross-dataset evaluation: score any model on a labelled folder of faces or photographs.

A labelled folder dataset is a directory or a zip holding images and a `labels.csv` with at
least `path,label` (path relative to the folder); every other column is a per-image attribute
(subject, gender, age group...) that the bias audit can slice by. Images that are already face
crops (CK+ 48x48) are used as they are; whole photographs (the Taiwan faces set) go through the
same face detection and alignment as the Pi runner (`face_sentiment.faces`), so the score
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

import io
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, f1_score

from face_sentiment.evaluation import per_class_metrics
from face_sentiment.paths import data_dir

LABELS_FILE = "labels.csv"
REQUIRED_COLUMNS = ("path", "label")
# Largest side (pixels) of an image that is taken to be a face crop rather than a photograph.
CROP_MAX_SIDE = 96


@dataclass(frozen=True)
class KnownDataset:
    """A dataset the workbench knows by name: where to look and where to get it."""

    env: str
    raw_names: tuple[str, ...]
    source: str


KNOWN_DATASETS = {
    "ckplus": KnownDataset(
        "CKPLUS_PATH", ("ckplus48.zip", "ckplus48"),
        "CK+ (Extended Cohn-Kanade): request it at https://www.jeffcohn.net/Resources/ and "
        "export 48x48 face crops as <class>/<subject>_<sequence>_<frame>.png with labels.csv"),
    "taiwan": KnownDataset(
        "TAIWAN_FACES_PATH", ("taiwan_faces_dev.zip", "taiwan_faces"),
        "Taiwan faces (TFEID / Taiwan Corpora of Chinese Emotions): request it from its "
        "authors (Chen, Cho & Tseng 2013) and arrange it as <class>/<file>.jpg with labels.csv"),
}


class DatasetError(ValueError):
    """A labelled folder dataset is missing or malformed (the message names file and row)."""


def locate(name: str) -> Path:
    """Path of a known dataset ('ckplus', 'taiwan'): $<ENV>, else data/raw/<name>."""
    known = KNOWN_DATASETS[name]
    override = os.environ.get(known.env)
    if override:
        path = Path(override).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"{known.env}={path} does not exist. {known.source}")
        return path
    for raw_name in known.raw_names:
        candidate = data_dir("raw") / raw_name
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"{name} dataset not found: set {known.env} or put "
        f"{' or '.join(known.raw_names)} in {data_dir('raw')}. {known.source}")


def is_available(name: str) -> bool:
    try:
        locate(name)
    except FileNotFoundError:
        return False
    return True


class _Folder:
    """Read files from a directory or a zip by relative path."""

    def __init__(self, path: Path):
        self.path = path
        self.archive = zipfile.ZipFile(path) if path.suffix == ".zip" else None
        if self.archive is None and not path.is_dir():
            raise DatasetError(f"{path}: expected a directory or a .zip file")
        self.prefix = self._find_prefix()

    def _find_prefix(self) -> str:
        if self.archive is None:
            return ""
        names = [n for n in self.archive.namelist() if n.rsplit("/", 1)[-1] == LABELS_FILE]
        if not names:
            raise DatasetError(f"{self.path}: no {LABELS_FILE} in the archive")
        return min(names, key=len)[: -len(LABELS_FILE)]

    def exists(self, relative: str) -> bool:
        if self.archive is None:
            return (self.path / relative).is_file()
        try:
            self.archive.getinfo(self.prefix + relative)
        except KeyError:
            return False
        return True

    def read(self, relative: str) -> bytes:
        if self.archive is None:
            return (self.path / relative).read_bytes()
        return self.archive.read(self.prefix + relative)


@dataclass
class FolderDataset:
    """A labelled folder dataset: its table (path, label, attributes) and decoded images."""

    name: str
    source: Path
    table: pd.DataFrame
    images: list[np.ndarray] = field(repr=False)  # BGR or gray uint8, as stored

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(sorted(self.table["label"].unique()))

    @property
    def attributes(self) -> list[str]:
        return [c for c in self.table.columns if c not in REQUIRED_COLUMNS]

    @property
    def are_crops(self) -> bool:
        return all(max(image.shape[:2]) <= CROP_MAX_SIDE for image in self.images)


def read_labels(folder: _Folder) -> pd.DataFrame:
    """labels.csv as strings, checked: required columns, no empty cells, every file present."""
    where = f"{folder.path}:{LABELS_FILE}"
    if not folder.exists(LABELS_FILE):
        raise DatasetError(f"{folder.path}: {LABELS_FILE} is missing (columns path,label,...)")
    table = pd.read_csv(io.BytesIO(folder.read(LABELS_FILE)), dtype=str, keep_default_na=False)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise DatasetError(f"{where}: missing column(s) {', '.join(missing)}; "
                           f"found {', '.join(table.columns)}")
    for column in REQUIRED_COLUMNS:
        empty = table.index[table[column].str.strip() == ""]
        if len(empty):
            raise DatasetError(f"{where} row {empty[0] + 2}: empty {column!r}")
    table["label"] = table["label"].str.strip().str.lower()
    for row, path in table["path"].items():
        if not folder.exists(path):
            raise DatasetError(f"{where} row {row + 2}: image {path!r} does not exist")
    return table


def _decode(folder: _Folder, path: str, row: int) -> np.ndarray:
    data = np.frombuffer(folder.read(path), np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DatasetError(f"{folder.path}:{LABELS_FILE} row {row + 2}: {path!r} is not a "
                           "readable image")
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(int(image.max()), 1))
    return image


def load_folder_dataset(path: str | os.PathLike, name: str | None = None) -> FolderDataset:
    """Read a labelled folder dataset (directory or zip with labels.csv)."""
    source = Path(path).expanduser()
    if not source.exists():
        raise FileNotFoundError(f"dataset {source} does not exist")
    folder = _Folder(source)
    table = read_labels(folder)
    images = [_decode(folder, p, row) for row, p in table["path"].items()]
    return FolderDataset(name or source.stem, source, table, images)


def load_known(name: str) -> FolderDataset:
    return load_folder_dataset(locate(name), name)


# --------------------------------------------------------------------------------------------
# Faces


@dataclass
class FaceCrops:
    """48x48 model-ready crops of a dataset; `found` marks images where a face was found."""

    faces: np.ndarray  # (M, 48, 48) uint8, M = found.sum()
    found: np.ndarray  # (N,) bool
    method: str


def dataset_faces(dataset: FolderDataset, detector: str = "blazeface-full",
                  size: int = 48) -> FaceCrops:
    """Crops as they are, or the highest-scoring detected face of each photo, aligned."""
    from face_sentiment.preprocessing import to_gray_square

    if dataset.are_crops:
        faces = np.stack([to_gray_square(image, size) for image in dataset.images])
        return FaceCrops(faces, np.ones(len(faces), bool), "crops")
    from face_sentiment.faces import align_face, create_detector, detect_faces

    backend = create_detector(detector)
    crops, found = [], []
    for image in dataset.images:
        bgr = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        detected = detect_faces(bgr, backend)
        found.append(bool(detected))
        if detected:
            best = max(detected, key=lambda face: face.score)
            crops.append(align_face(bgr, best, size))
    faces = np.stack(crops) if crops else np.zeros((0, size, size), np.uint8)
    return FaceCrops(faces, np.array(found, bool), f"detected+aligned ({detector})")


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


def score(predictor, dataset: FolderDataset, crops: FaceCrops | None = None) -> CrossResult:
    """Predict every usable image of `dataset` with `predictor` (see predictors.Predictor)."""
    crops = crops or dataset_faces(dataset)
    classes = tuple(predictor.classes)
    table = dataset.table[crops.found].reset_index(drop=True)
    faces = crops.faces
    known = table["label"].isin(classes).to_numpy()
    excluded = table.loc[~known, "label"].value_counts().to_dict()
    table, faces = table[known].reset_index(drop=True), faces[known]
    labels = np.array([classes.index(label) for label in table["label"]], np.int64)
    probabilities = predictor.predict(faces) if len(faces) else np.zeros((0, len(classes)))
    return CrossResult(predictor.name, dataset.name, classes, table, labels,
                       np.asarray(probabilities, np.float64), tuple(sorted(set(labels.tolist()))),
                       {k: int(v) for k, v in excluded.items()}, int((~crops.found).sum()))


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


def cluster_bootstrap(correct: np.ndarray, clusters: np.ndarray, resamples: int = 2000,
                      seed: int = 0, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of accuracy resampling whole clusters (subjects), not images."""
    codes, _ = pd.factorize(pd.Series(clusters))
    hits = np.bincount(codes, weights=correct.astype(float))
    sizes = np.bincount(codes)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(sizes), (resamples, len(sizes)))
    accuracies = hits[picks].sum(1) / sizes[picks].sum(1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(accuracies, [tail, 100 - tail])
    return float(low), float(high)


def metrics(result: CrossResult, cluster: str | None = None, resamples: int = 2000,
            seed: int = 0) -> dict:
    """Accuracy (with a bootstrap interval, by `cluster` when given), macro-F1 over the
    dataset's classes, and the bookkeeping of what was scored."""
    from face_sentiment.ab_testing import bootstrap_difference

    correct = result.correct
    if cluster:
        low, high = cluster_bootstrap(correct, result.table[cluster].to_numpy(), resamples, seed)
    else:
        _, low, high = bootstrap_difference(np.zeros_like(correct), correct, resamples, seed=seed)
    return {
        "model": result.model, "dataset": result.dataset, "n": int(len(correct)),
        "accuracy": float(correct.mean()) if len(correct) else float("nan"),
        "accuracy_ci_low": low, "accuracy_ci_high": high,
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
             aggregate_by: list[str] | None = None, cluster: str | None = None
             ) -> tuple[pd.DataFrame, dict[str, CrossResult]]:
    """Every predictor on one dataset: the metrics table (open and restricted protocols)."""
    crops = crops or dataset_faces(dataset)
    results, rows = {}, []
    for predictor in predictors:
        result = score(predictor, dataset, crops)
        if aggregate_by:
            result = aggregate(result, aggregate_by)
        results[predictor.name] = result
        rows.append(metrics(result, cluster))
        rows.append(metrics(result.restricted(), cluster))
    return pd.DataFrame(rows), results


def plot_confusions(results: dict[str, CrossResult]):
    """Row-normalised confusion matrices side by side."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 4.4), squeeze=False)
    for ax, (name, result) in zip(axes[0], results.items(), strict=True):
        table = confusion(result)
        ax.imshow(table.to_numpy(), cmap="Blues", vmin=0, vmax=1)
        for (row, col), value in np.ndenumerate(table.to_numpy()):
            ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if value > 0.5 else "black")
        ax.set_xticks(range(table.shape[1]), table.columns, rotation=45, ha="right")
        ax.set_yticks(range(table.shape[0]), table.index)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{result.dataset}: {name}", fontsize=9)
    fig.tight_layout()
    return fig


def load_models(references: list[str]) -> list:
    """Predictors for references: 'shipped' (float Keras), 'shipped-int8', 'fer', or a path."""
    from face_sentiment.predictors import load_predictor
    from face_sentiment.release import shipped_model

    aliases = {"shipped": "keras", "shipped-int8": "tflite"}
    return [load_predictor(str(shipped_model(aliases[ref])) if ref in aliases else ref)
            for ref in references]


def missing_message(name: str) -> str:
    """Why a known dataset is not evaluated (for notebooks): the locate() error text."""
    try:
        locate(name)
    except FileNotFoundError as error:
        return str(error)
    return ""


def report(dataset_path: str, models: list[str], aggregate_by: list[str] | None = None,
           cluster: str | None = None, detector: str = "blazeface-full") -> dict[str, pd.DataFrame]:
    """The CLI's tables for one dataset: metrics (open and restricted), per-class recall and
    the confusion of every model."""
    dataset = load_folder_dataset(dataset_path)
    for column in (aggregate_by or []) + ([cluster] if cluster else []):
        if column not in dataset.table.columns:
            raise DatasetError(f"{dataset_path}: no column {column!r} in {LABELS_FILE}; "
                               f"attributes: {', '.join(dataset.attributes) or 'none'}")
    table, results = evaluate(load_models(models), dataset, dataset_faces(dataset, detector),
                              aggregate_by, cluster)
    tables = {"metrics": table, "per-class recall": recall_table(results)}
    tables.update({f"confusion {name}": confusion(result) for name, result in results.items()})
    return tables
