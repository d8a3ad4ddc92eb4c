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
from sklearn.metrics import confusion_matrix

from face_sentiment.data.folder_dataset import (
    LABELS_FILE,
    DatasetError,
    FaceCrops,
    FolderDataset,
    dataset_faces,
)
from face_sentiment.evaluation.metrics import per_class_metrics
from face_sentiment.evaluation.predictors import load_predictors
from face_sentiment.stats import (
    accuracy_interval,
    balanced_accuracy_interval,
    macro_f1,
)

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
    if not len(faces):
        probabilities = np.zeros((0, len(classes)))
    elif isinstance(predictor, CrossValidatedModel):
        probabilities = predictor.predict_rows(dataset, table, faces)
    else:
        probabilities = predictor.predict(faces)
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
    """Accuracy and balanced accuracy (mean recall over the dataset's classes, the figure for
    skewed sets), each with a bootstrap interval (by `cluster` when given), macro-F1 over the
    dataset's classes, and the bookkeeping of what was scored."""
    correct = result.correct
    clusters = result.table[cluster].to_numpy() if cluster else None
    accuracy, low, high = accuracy_interval(correct, resamples, seed=seed, clusters=clusters)
    balanced = balanced_accuracy_interval(result.labels, result.predicted, resamples, seed=seed,
                                          clusters=clusters)
    return {
        "model": result.model, "dataset": result.dataset, "n": int(len(correct)),
        "accuracy": accuracy, "accuracy_ci_low": low, "accuracy_ci_high": high,
        "balanced_accuracy": balanced[0], "balanced_accuracy_ci_low": balanced[1],
        "balanced_accuracy_ci_high": balanced[2],
        "macro_f1": macro_f1(result.labels, result.predicted, classes=result.present),
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


def adapt_priors(result: CrossResult, source_priors: np.ndarray) -> CrossResult:
    """`result` with its probabilities moved to the dataset's own class priors, estimated by EM
    on its faces alone (labels unused; `prior_shift.estimate_priors`)."""
    from face_sentiment.evaluation.prior_shift import estimate_priors

    if len(result.probabilities) == 0:
        return result
    shift = estimate_priors(result.probabilities, source_priors)
    return CrossResult(**{**result.__dict__, "model": f"{result.model} +EM priors",
                          "probabilities": shift.probabilities})


def evaluate(predictors: list, dataset: FolderDataset, crops: FaceCrops | None = None,
             aggregate_by: list[str] | None = None, cluster: str | None = None,
             resamples: int = 2000, seed: int = 0, source_faces: np.ndarray | None = None
             ) -> tuple[pd.DataFrame, dict[str, CrossResult]]:
    """Every predictor on one dataset: the metrics table (open and restricted protocols;
    accuracy intervals from `resamples` bootstrap resamples, by `cluster` when given). With
    `source_faces` (faces of the data the models were selected on, FER2013 PublicTest), each
    model is scored again with its priors adapted to the dataset (`adapt_priors`), the model's
    own priors being its mean probabilities on those faces."""
    crops = crops or dataset_faces(dataset)
    results, rows = {}, []
    for predictor in predictors:
        scored = [score(predictor, dataset, crops)]
        if source_faces is not None:
            source_priors = np.asarray(predictor.predict(source_faces), float).mean(axis=0)
            scored.append(adapt_priors(scored[0], source_priors / source_priors.sum()))
        for result in scored:
            if aggregate_by:
                result = aggregate(result, aggregate_by)
            results[result.model] = result
            rows.append(metrics(result, cluster, resamples, seed))
            rows.append(metrics(result.restricted(), cluster, resamples, seed))
    return pd.DataFrame(rows), results


def accuracy_by(result: CrossResult, column: str) -> pd.Series:
    """Accuracy of each value of `column` (e.g. each subject) over its scored rows."""
    return result.table.assign(correct=result.correct).groupby(column).correct.mean()


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


def training_settings(reference: str) -> dict:
    """The `training` settings behind a profile name or a model (registry name or path, whose
    card records them): what it trained on, photo folds included."""
    from face_sentiment.model_card import ModelCard, resolve_model
    from face_sentiment.profiles import load_profile, profile_path

    if profile_path(reference).is_file():
        return load_profile(reference)["training"]
    return ModelCard.beside(resolve_model(reference))["training"]


def held_out_subset(dataset: FolderDataset, trained: str | dict) -> FolderDataset:
    """The rows of `dataset` (a known photo set, by name) whose people `trained` never trained
    on: its photo_holdout_fold of photo_folds. `trained` is a profile or a model (its card's
    settings, `training_settings`) or the training settings themselves. An error when it did
    not train on this set: then every row is unseen and asking for held-out rows is a mistake."""
    from face_sentiment.data.photos import split_folds
    from face_sentiment.labels import class_names
    from face_sentiment.model.config import TrainingConfig

    settings = training_settings(trained) if isinstance(trained, str) else trained
    config = TrainingConfig.from_dict({key: value for key, value in settings.items()
                                       if key in TrainingConfig.__dataclass_fields__})
    if dataset.name not in config.photo_sets:
        raise ValueError(f"{settings.get('run_name', trained)} trained on no {dataset.name!r} "
                         f"photographs (photo_sets: {list(config.photo_sets) or 'none'}): "
                         "every person of this set is unseen, score it without --held-out")
    folds = split_folds(dataset.table, dataset.name, class_names(config.label_set),
                        config.photo_folds, config.seed)
    return dataset.subset(folds == config.photo_holdout_fold)


# The sets a release is scored on beyond FER2013: frames averaged by, intervals resampled by.
RELEASE_SETS = {"ckplus": (["subject", "sequence"], "subject"),
                "taiwan": (None, "performer_id"),
                "lfw_expressions": (None, "person")}


def release_scores(models: dict[str, str], trained: dict, detector: str = "blazeface-full",
                   resamples: int = 2000, seed: int = 0) -> dict:
    """Every available set of RELEASE_SETS scored by each of `models` ({name: reference}), on
    the people the run with settings `trained` never saw (its held-out fold of a set it trained
    on, else every image): {set: {"rows": what was scored, name: metrics}}."""
    from face_sentiment.data.folder_dataset import is_available, load_known
    from face_sentiment.data.photos import cached_faces
    from face_sentiment.evaluation.predictors import load_predictor

    predictors = {name: load_predictor(reference) for name, reference in models.items()}
    scores = {}
    for name, (aggregate_by, cluster) in RELEASE_SETS.items():
        if not is_available(name):
            continue
        dataset = load_known(name)
        rows = f"all {len(dataset.table)} images"
        if name in (trained.get("photo_sets") or ()):
            dataset = held_out_subset(dataset, trained)
            rows = (f"the {len(dataset.table)} images of held-out person fold "
                    f"{trained['photo_holdout_fold']} of {trained['photo_folds']}")
        crops = cached_faces(dataset, detector, 48)
        scores[name] = {"rows": rows}
        for model, predictor in predictors.items():
            result = score(predictor, dataset, crops)
            if aggregate_by:
                result = aggregate(result, aggregate_by)
            scores[name][model] = metrics(result, cluster, resamples, seed)
    return scores


class CrossValidatedModel:
    """The fold models of one photo split as one model: on a photo set they trained on, each
    person's faces are scored by the model that held that person's fold out, so every person
    of the set gets a prediction from a model that never saw them (k-fold by person); on any
    other faces (FER2013, CK+) the first model answers. `models`: one per fold, each with its
    training settings in its card (`training_settings`), the shipped model first."""

    def __init__(self, models: list[str], name: str | None = None) -> None:
        from face_sentiment.evaluation.predictors import load_predictor

        self.settings = [training_settings(model) for model in models]
        held = [int(s.get("photo_holdout_fold", -1)) for s in self.settings]
        splits = {(tuple(s.get("photo_sets") or ()), s.get("photo_folds"), s.get("seed"))
                  for s in self.settings}
        if len(splits) != 1 or sorted(held) != list(range(len(models))) or \
                self.settings[0].get("photo_folds") != len(models):
            raise ValueError(f"cross-validation needs one model per person fold of one photo "
                             f"split; {models} hold out folds {held} of {splits}")
        self.predictors = [load_predictor(model) for model in models]
        self.held_out = held
        self.classes = tuple(self.predictors[0].classes)
        self.name = name or f"{self.predictors[0].name} ({len(models)}-fold by person)"

    def predict(self, faces: np.ndarray) -> np.ndarray:
        return self.predictors[0].predict(faces)

    def predict_rows(self, dataset: FolderDataset, table: pd.DataFrame,
                     faces: np.ndarray) -> np.ndarray:
        """Probabilities of `faces` (the scored rows `table` of `dataset`)."""
        from face_sentiment.data.photos import PERSON_COLUMNS, split_folds

        settings = self.settings[0]
        if dataset.name not in (settings.get("photo_sets") or ()):
            return self.predict(faces)
        column = PERSON_COLUMNS[dataset.name]
        split = split_folds(dataset.table, dataset.name, self.classes,
                            settings["photo_folds"], settings["seed"])
        known = split >= 0
        fold_of = dict(zip(dataset.table.loc[known, column], split[known], strict=True))
        folds = table[column].map(fold_of).to_numpy()
        probabilities = np.zeros((len(faces), len(self.classes)))
        for predictor, fold in zip(self.predictors, self.held_out, strict=True):
            rows = folds == fold
            if rows.any():
                probabilities[rows] = predictor.predict(faces[rows])
        return probabilities


def sample_rows(dataset: FolderDataset, count: int | None, seed: int = 0) -> FolderDataset:
    """`count` rows of `dataset` drawn without replacement (seeded), or all when None (the CI
    profile scores a sample of the large photo sets)."""
    if count is None or count >= len(dataset.table):
        return dataset
    return dataset.subset(np.sort(np.random.default_rng(seed).permutation(len(dataset.table))
                                  [:count]))


def unseen_people(dataset: FolderDataset, models: list[str]) -> tuple[FolderDataset, str]:
    """`dataset` restricted to the people none of `models` trained on (the held-out fold of the
    one that trained on this photo set; every model is then scored on the same rows), and a
    line saying which rows those are."""
    trained = []
    for model in models:
        try:
            settings = training_settings(model)
        except (OSError, KeyError, ValueError, RuntimeError):
            continue  # no card or profile (fer): it never trained on our photo sets
        if dataset.name in (settings.get("photo_sets") or ()):
            trained.append(model)
    if not trained:
        return dataset, (f"{dataset.name}: no compared model trained on it; all "
                         f"{len(dataset.table)} images scored")
    subset = dataset
    for model in trained:
        subset = held_out_subset(subset, model)
    return subset, (f"{dataset.name}: {', '.join(trained)} trained on some of its people; the "
                    f"{len(subset.table)} images of the held-out fold's people are scored")


def photo_comparison(dataset: FolderDataset, models: list[str],
                     cv_models: list[str] | None = None) -> tuple[FolderDataset, list, str]:
    """What a notebook scores on a photo set, and with which predictors: with `cv_models` (the
    fold models of the shipped model's photo split, `CrossValidatedModel`) every image, the
    shipped model's predictions coming from the fold model that never saw each person; without,
    the people none of `models` trained on (`unseen_people`). A line says which."""
    from face_sentiment.evaluation.predictors import load_predictors

    if cv_models:
        cross = CrossValidatedModel(cv_models)
        others = [model for model in models if not model.startswith("shipped")]
        note = (f"{dataset.name}: all {len(dataset.table)} images; {cross.name}: each person "
                "scored by the fold model that never saw them")
        return dataset, [cross, *load_predictors(others)], note
    subset, note = unseen_people(dataset, models)
    return subset, load_predictors(models), note


def report(dataset_path: str, models: list[str], aggregate_by: list[str] | None = None,
           cluster: str | None = None, detector: str = "blazeface-full",
           crops: bool | None = None, held_out: str | None = None,
           priors: bool = False, cross_validated: list[str] | None = None
           ) -> dict[str, pd.DataFrame]:
    """The CLI's tables for one dataset (a path, or a known dataset's name): metrics (open and
    restricted), per-class recall and the confusion of every model. `crops=True`: every image
    is one face crop (`dataset_faces`). `held_out`: a profile or model that trained on this
    photo set; only the people of its held-out fold are scored (`held_out_subset`). `priors`:
    each model also with its priors adapted to the dataset by EM (`adapt_priors`).
    `cross_validated`: fold models of one photo split, scored first as one model
    (`CrossValidatedModel`: each person by the fold model that never saw them)."""
    from face_sentiment.data.folder_dataset import load_named

    dataset = load_named(dataset_path)
    if held_out:
        dataset = held_out_subset(dataset, held_out)
    for column in (aggregate_by or []) + ([cluster] if cluster else []):
        if column not in dataset.table.columns:
            raise DatasetError(f"{dataset_path}: no column {column!r} in {LABELS_FILE}; "
                               f"attributes: {', '.join(dataset.attributes) or 'none'}")
    source_faces = None
    if priors:
        from face_sentiment.data.cache import load_dataset
        source_faces, _ = load_dataset().select("PublicTest")
    predictors = load_predictors(models)
    if cross_validated:
        predictors.insert(0, CrossValidatedModel(cross_validated))
    table, results = evaluate(predictors, dataset,
                              dataset_faces(dataset, detector, crops=crops), aggregate_by, cluster,
                              source_faces=source_faces)
    tables = {"metrics": table, "per-class recall": recall_table(results)}
    tables.update({f"confusion {name}": confusion(result) for name, result in results.items()})
    return tables


# --------------------------------------------------------------------------------------------
# Tables and comparisons for a reader (notebook 09)

SCORE_COLUMNS = ("accuracy", "balanced_accuracy", "macro_f1")


def reader_table(table: pd.DataFrame) -> pd.DataFrame:
    """`evaluate`'s metrics table for a report: one row per model and protocol, scores in
    percent with their intervals beside them, the restricted protocol only where it differs
    from the open one (a dataset that lacks some of the model's classes), the dataset's name
    left to the section."""
    out = table.copy()
    out["protocol"] = np.where(out["restricted"], "restricted", "open")
    scores = [c for c in out.columns if c.split("_ci_")[0] in SCORE_COLUMNS]
    out[scores] = 100 * out[scores]
    open_rows = out[~out["restricted"]].set_index("model")[scores]
    same = [bool(row.restricted) and np.allclose(row[scores].to_numpy(float),
                                                  open_rows.loc[row.model].to_numpy(float),
                                                  equal_nan=True)
            for _, row in out.iterrows()]
    out = out[~np.array(same, bool)].set_index(["model", "protocol"])
    out = out.drop(columns=["dataset", "restricted"])
    return out.rename(columns={c: c.replace(c.split("_ci_")[0],
                                            f"{c.split('_ci_')[0]} (%)", 1) for c in scores})


def _balanced_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    classes = np.unique(labels)
    return float(np.mean([(predicted[labels == c] == c).mean() for c in classes]))


def versus(results: dict[str, CrossResult], cluster: str | None = None,
           resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """The first model of `results` (ours) against each of the others on the same rows: both
    models' accuracy and balanced accuracy, and ours minus theirs in points with a paired
    bootstrap interval (whole `cluster`s resampled when given, e.g. people), plus the
    majority-class share and chance for scale."""
    from face_sentiment.stats import bootstrap, bootstrap_difference, majority_class

    ours_name, ours = next(iter(results.items()))
    clusters = ours.table[cluster].to_numpy() if cluster else None
    rows = []
    for name, other in list(results.items())[1:]:
        if len(other.labels) != len(ours.labels) or not np.array_equal(other.labels,
                                                                       ours.labels):
            raise ValueError(f"{ours_name} and {name} were not scored on the same rows")
        accuracy = bootstrap_difference(other.correct, ours.correct, resamples, seed=seed,
                                        clusters=clusters)
        balanced = bootstrap(
            lambda y, a, b: _balanced_accuracy(y, a) - _balanced_accuracy(y, b),
            ours.labels, ours.predicted, other.predicted, clusters=clusters,
            resamples=resamples, seed=seed)
        majority = majority_class(ours.labels, len(ours.model_classes))
        rows.append({
            "ours": ours_name, "baseline": name, "dataset": ours.dataset,
            "n": int(len(ours.labels)),
            "accuracy": float(ours.correct.mean()), "baseline_accuracy":
                float(other.correct.mean()),
            "difference_points": 100 * accuracy[0],
            "difference_points_ci_low": 100 * accuracy[1],
            "difference_points_ci_high": 100 * accuracy[2],
            "balanced_accuracy": _balanced_accuracy(ours.labels, ours.predicted),
            "baseline_balanced_accuracy": _balanced_accuracy(other.labels, other.predicted),
            "balanced_difference_points": 100 * balanced[0],
            "balanced_difference_points_ci_low": 100 * balanced[1],
            "balanced_difference_points_ci_high": 100 * balanced[2],
            "majority_class": ours.model_classes[majority[0]], "majority_share": majority[1],
            "chance": 1 / len(ours.present)})
    return pd.DataFrame(rows)


def weaker_classes(results: dict[str, CrossResult], margin: float = 0.0) -> dict[str, list]:
    """For each other model, the classes where the first model's recall is below its by more
    than `margin`: [(class, ours, theirs)]."""
    recalls = recall_table(results)
    ours = recalls.columns[0]
    return {other: [(cls, float(recalls.at[cls, ours]), float(recalls.at[cls, other]))
                    for cls in recalls.index
                    if recalls.at[cls, ours] < recalls.at[cls, other] - margin]
            for other in recalls.columns[1:]}
