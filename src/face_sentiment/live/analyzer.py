"""Expressions of every face in a photo or a frame, for people: the Python side of `predict`.

    from face_sentiment import FaceSentiment
    analyzer = FaceSentiment()                  # model="shipped-int8", detector="blazeface-full"
    analyzer.analyze("photo.jpg")               # or a BGR / gray uint8 numpy array
    # [{"box": [x, y, w, h], "score": 0.94, "emotions": {"angry": 0.01, ...},
    #   "top": "happy", "confidence": 0.86}]
    analyzer.detect_emotions(image)             # the `fer` package's form, for drop-in use

Images go through what the Pi runner does with a frame: `faces.create_detector(detector)`
finds the faces (`faces.find_faces`: a small, square image where it finds none is taken for a
face crop, searched again with a margin and else taken whole, `"box_source": "whole-image"`;
`crops=True` treats every image as one face crop), `faces.align_faces` cuts each one out in
FER2013's framing, and
`ExpressionClassifier.predict` (class names and preprocessing from the model card beside the
model) classifies them all as one batch. The model is a TFLite file: `shipped-int8` (the
deployed int8 model; an installed wheel carries it), `shipped-<variant>-int8`, or a path.
numpy, OpenCV and a TFLite interpreter only, never TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from face_sentiment.live.classifier import ExpressionClassifier
from face_sentiment.live.faces import (
    DEFAULT_DETECTOR,
    Face,
    FaceDetector,
    align_faces,
    check_image,
    create_detector,
    find_faces,
)
from face_sentiment.live.interpreter import interpreter_class
from face_sentiment.model_card import PACKAGED_MODELS, resolve_model

DEFAULT_MODEL = "shipped-int8"


class PredictError(RuntimeError):
    """An input or a model cannot be used; the message names it and says what to do."""


def resolve_tflite_model(model: str | os.PathLike) -> Path:
    """`shipped-int8`, `shipped-<variant>-int8` or a .tflite path -> the model file."""
    text = str(model)
    if text == "shipped" or text.startswith("shipped-"):
        if not text.endswith("-int8"):
            raise PredictError(
                f"model {text!r} is the float Keras model, which needs TensorFlow; prediction "
                f"runs TFLite models: use {text}-int8 or a .tflite file (the default is "
                "shipped-int8)")
        path = resolve_model(text)
    else:
        path = Path(text).expanduser()
        if not path.exists():
            raise PredictError(f"model {path} does not exist: give a .tflite file, or "
                               "shipped-int8 or shipped-<variant>-int8")
    if path.suffix != ".tflite" or not path.is_file():
        raise PredictError(f"model {path} is not a .tflite file: prediction runs TFLite models "
                           "(give a .tflite file, or shipped-int8 or shipped-<variant>-int8)")
    return path


def read_image(path: str | os.PathLike) -> np.ndarray:
    """A BGR uint8 image from a file; PredictError naming the file when it cannot be."""
    path = Path(path)
    if not path.is_file():
        raise PredictError(f"{path}: no such image file")
    try:
        content = np.fromfile(path, np.uint8)  # not cv2.imread: it fails on non-ASCII names
    except OSError as error:
        raise PredictError(f"{path}: cannot be read ({error.strerror or error}); check its "
                           "permissions") from error
    image = cv2.imdecode(content, cv2.IMREAD_COLOR) if content.size else None
    if image is None:
        raise PredictError(f"{path}: cannot be decoded as an image (corrupt, truncated or not "
                           "an image file); replace or remove it")
    return image


class FaceSentiment:
    """Detector + alignment + expression model, with one record per face as the answer.

    `model`: `shipped-int8` (default), `shipped-<variant>-int8` or a .tflite path (its
    model_card.json beside it). `detector`: a name of `faces.DETECTORS` (default
    `blazeface-full`; `haar` needs only OpenCV) or a detector object. Detector and model run on
    `num_threads` threads (default 1, as on the Pi). `crops=True`: every image is one face crop
    (a dataset of crops), so each gets exactly one answer.
    """

    def __init__(self, model: str | os.PathLike = DEFAULT_MODEL,
                 detector: str | FaceDetector = DEFAULT_DETECTOR, *,
                 num_threads: int | None = 1, min_score: float | None = None,
                 crops: bool = False) -> None:
        try:
            interpreter_class()
        except ImportError as error:
            raise PredictError(str(error)) from error
        self.model_path = resolve_tflite_model(model)
        # A model file that shipped inside the package is trusted; any other one is first
        # opened in a child process, so that a corrupt file gives an error, not a crash.
        packaged = self.model_path.resolve().is_relative_to(PACKAGED_MODELS.resolve())
        self.classifier = ExpressionClassifier(self.model_path, num_threads=num_threads,
                                               verify=not packaged)
        self.detector = (create_detector(detector, num_threads=num_threads, min_score=min_score)
                         if isinstance(detector, str) else detector)
        self.size = self.classifier.card.preprocessing.size
        self.crops = crops

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names, in the model card's order (the order of every `emotions` dict)."""
        return self.classifier.classes

    def faces(self, image: np.ndarray | str | os.PathLike) -> tuple[list[Face], np.ndarray]:
        """The detected faces (best score first) and their (N, C) class probabilities."""
        image = self._image(image)
        faces = find_faces(image, self.detector, self.crops)
        return faces, self.classifier.predict(align_faces(image, faces, self.size))

    def analyze(self, image: np.ndarray | str | os.PathLike) -> list[dict]:
        """One record per face, best detector score first:
        {"box": [x, y, w, h] (int pixels), "score": detector score (BlazeFace: a probability;
        haar: the cascade's weight; 0 for a crop taken whole), "box_source": "detector" or
        "whole-image", "emotions": {class: probability} in card order, "top": the most
        probable class, "confidence": its probability}."""
        faces, probabilities = self.faces(image)
        return [self._record(face, row) for face, row in zip(faces, probabilities, strict=True)]

    def detect_emotions(self, image: np.ndarray | str | os.PathLike) -> list[dict]:
        """The `fer` package's `FER().detect_emotions` form: [{"box": [x, y, w, h],
        "emotions": {class: probability rounded to 2 decimals, as fer does}}]."""
        return [{"box": record["box"],
                 "emotions": {name: round(p, 2) for name, p in record["emotions"].items()}}
                for record in self.analyze(image)]

    def _image(self, image: np.ndarray | str | os.PathLike) -> np.ndarray:
        if isinstance(image, str | os.PathLike):
            return read_image(image)
        return check_image(image)

    def _record(self, face: Face, probabilities: np.ndarray) -> dict:
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        top = int(np.argmax(probabilities))
        return {"box": [x1, y1, x2 - x1, y2 - y1], "score": round(float(face.score), 4),
                "box_source": face.box_source,
                "emotions": {name: float(p)
                             for name, p in zip(self.classes, probabilities, strict=True)},
                "top": self.classes[top], "confidence": float(probabilities[top])}
