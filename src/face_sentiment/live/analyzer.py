"""Expressions of every face in a photo or a frame, for people: the Python side of `predict`.

    from face_sentiment import FaceSentiment
    analyzer = FaceSentiment()                  # model="shipped-int8", detector="blazeface-full"
    analyzer.analyze("photo.jpg")               # or a BGR / gray uint8 numpy array
    # [{"box": [x, y, w, h], "score": 0.94, "box_source": "detector",
    #   "emotions": {"angry": 0.01, ...}, "top": "happy", "confidence": 0.86}]

The `fer` package's calls, for drop-in use (`fer.FER` -> `FaceSentiment`), give fer's forms:
`detect_emotions(img, face_rectangles=None)` -> [{"box": [x, y, w, h], "emotions": {class:
probability rounded to 2 decimals}}], `top_emotion(img)` -> (class, score) of the first face or
(None, None), `batch_detect_emotions(imgs)` -> one such list per image (their faces classified
as one batch). `face_rectangles` are (x, y, w, h) boxes found elsewhere: they are classified as
given, in their order, with `"box_source": "given"` and no score. Images are arrays, file paths
or base64 data URIs, as in fer (URLs are not fetched).

Images go through what the Pi runner does with a frame: `faces.create_detector(detector)`
finds the faces (`faces.find_faces`: a small, square image where it finds none is taken for a
face crop, searched again with a margin and else taken whole, `"box_source": "whole-image"`;
`crops=True` treats every image as one face crop), `faces.align_faces` cuts each one out in
FER2013's framing, and `ExpressionClassifier.predict` (class names and preprocessing from the
model card beside the model) classifies them all as one batch. The model is a TFLite file:
`shipped-int8` (the deployed int8 model; an installed wheel carries it),
`shipped-<variant>-int8`, or a path. The runtime's C++ start-up line ('INFO: Created
TensorFlow Lite XNNPACK delegate') is hidden unless `quiet=False`. numpy, OpenCV and a TFLite
interpreter only, never TensorFlow.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from face_sentiment.live.classifier import ExpressionClassifier
from face_sentiment.live.faces import (
    DEFAULT_DETECTOR,
    GIVEN,
    WHOLE_IMAGE,
    Face,
    FaceDetector,
    align_faces,
    check_image,
    create_detector,
    find_faces,
)
from face_sentiment.live.interpreter import interpreter_class, runtime_quiet
from face_sentiment.model_card import PACKAGED_MODELS, resolve_model

DEFAULT_MODEL = "shipped-int8"
Image = np.ndarray | str | os.PathLike
Rectangles = Sequence[Sequence[float]] | np.ndarray


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
    try:
        image = cv2.imdecode(content, cv2.IMREAD_COLOR) if content.size else None
    except cv2.error as error:  # e.g. a header declaring an image too large to allocate
        raise PredictError(f"{path}: cannot be decoded as an image ({error.err})") from error
    if image is None:
        raise PredictError(f"{path}: cannot be decoded as an image (corrupt, truncated or not "
                           "an image file); replace or remove it")
    return image


def decode_data_uri(uri: str) -> np.ndarray:
    """A BGR image from a base64 data URI ('data:image/png;base64,...'), as fer accepts."""
    try:
        content = np.frombuffer(base64.b64decode(uri.split(",", 1)[1], validate=True), np.uint8)
    except (IndexError, binascii.Error) as error:
        raise PredictError(f"{uri[:40]}...: not a base64 data URI") from error
    image = cv2.imdecode(content, cv2.IMREAD_COLOR) if content.size else None
    if image is None:
        raise PredictError(f"{uri[:40]}...: the data URI's content cannot be decoded as an "
                           "image")
    return image


def given_faces(rectangles: Rectangles, image: np.ndarray) -> list[Face]:
    """fer's `face_rectangles` ((x, y, w, h) each, in pixels) as faces; ValueError naming a box
    that is not one."""
    faces = []
    for number, rectangle in enumerate(rectangles):
        values = np.asarray(rectangle, np.float64).ravel()
        if values.size != 4 or not np.isfinite(values).all() or values[2] <= 0 or \
                values[3] <= 0:
            raise ValueError(f"face_rectangles[{number}] = {rectangle!r}: give (x, y, w, h) "
                             "with a positive width and height")
        x, y, w, h = (float(v) for v in values)
        faces.append(Face((x, y, x + w, y + h), 0.0, (), GIVEN))
    check_image(image)
    return faces


class FaceSentiment:
    """Detector + alignment + expression model, with one record per face as the answer.

    `model`: `shipped-int8` (default), `shipped-<variant>-int8` or a .tflite path (its
    model_card.json beside it). `detector`: a name of `faces.DETECTORS` (default
    `blazeface-full`; `haar` needs only OpenCV) or a detector object. Detector and model run on
    `num_threads` threads (default 1, as on the Pi). `crops=True`: every image is one face crop
    (a dataset of crops), so each gets exactly one answer. `quiet` (default) hides the TFLite
    runtime's start-up line on stderr.
    """

    def __init__(self, model: str | os.PathLike = DEFAULT_MODEL,
                 detector: str | FaceDetector = DEFAULT_DETECTOR, *,
                 num_threads: int | None = 1, min_score: float | None = None,
                 crops: bool = False, quiet: bool = True) -> None:
        try:
            interpreter_class()
        except ImportError as error:
            raise PredictError(str(error)) from error
        self.model_path = resolve_tflite_model(model)
        # A model file that shipped inside the package is trusted; any other one is first
        # opened in a child process, so that a corrupt file gives an error, not a crash.
        packaged = self.model_path.resolve().is_relative_to(PACKAGED_MODELS.resolve())
        with runtime_quiet(quiet):
            self.classifier = ExpressionClassifier(self.model_path, num_threads=num_threads,
                                                   verify=not packaged)
            self.detector = (create_detector(detector, num_threads=num_threads,
                                             min_score=min_score)
                             if isinstance(detector, str) else detector)
        self.size = self.classifier.card.preprocessing.size
        self.crops = crops
        # Haar's weights are no probabilities: records give no score for them.
        self.scores_are_probabilities = getattr(self.detector, "score_is_probability", True)

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names, in the model card's order (the order of every `emotions` dict)."""
        return self.classifier.classes

    def locate(self, image: Image, face_rectangles: Rectangles | None = None
               ) -> tuple[np.ndarray, list[Face], np.ndarray]:
        """(the image, its faces best score first or as given, their (N, S, S) uint8 crops):
        everything before the classifier, so that callers can batch it over images."""
        image = self._image(image)
        faces = (find_faces(image, self.detector, self.crops) if face_rectangles is None
                 else given_faces(face_rectangles, image))
        return image, faces, align_faces(image, faces, self.size)

    def classify(self, crops: np.ndarray) -> np.ndarray:
        """(N, C) class probabilities of N aligned crops, one classifier batch."""
        return self.classifier.predict(crops)

    def faces(self, image: Image) -> tuple[list[Face], np.ndarray]:
        """The detected faces (best score first) and their (N, C) class probabilities."""
        _, faces, crops = self.locate(image)
        return faces, self.classify(crops)

    def analyze(self, image: Image, face_rectangles: Rectangles | None = None) -> list[dict]:
        """One record per face, best detector score first (or in the order given):
        {"box": [x, y, w, h] (int pixels), "score": the detector's probability that this is a
        face (BlazeFace; None for haar, whose cascade weights are no probabilities, and for a
        box given in `face_rectangles`; 0 for a crop taken whole), "box_source": "detector",
        "whole-image" or "given", "emotions": {class: probability} in card order, "top": the
        most probable class, "confidence": its probability}."""
        _, faces, crops = self.locate(image, face_rectangles)
        return self.records(faces, self.classify(crops))

    def analyze_batch(self, images: Sequence[Image]) -> list[list[dict]]:
        """`analyze` of every image, the faces of all of them classified as one batch."""
        located = [self.locate(image)[1:] for image in images]
        crops = [crop for _, crop in located]
        probabilities = self.classify(np.concatenate(crops) if crops else
                                      np.zeros((0, self.size, self.size), np.uint8))
        answers, start = [], 0
        for faces, _ in located:
            answers.append(self.records(faces, probabilities[start:start + len(faces)]))
            start += len(faces)
        return answers

    def detect_emotions(self, img: Image, face_rectangles: Rectangles | None = None
                        ) -> list[dict]:
        """The `fer` package's `FER().detect_emotions`: [{"box": [x, y, w, h], "emotions":
        {class: probability rounded to 2 decimals, as fer does}}]."""
        return [_fer_form(record) for record in self.analyze(img, face_rectangles)]

    def batch_detect_emotions(self, imgs: Sequence[Image]) -> list[list[dict]]:
        """fer's `FER().batch_detect_emotions`: `detect_emotions` of every image, in order."""
        return [[_fer_form(record) for record in records]
                for records in self.analyze_batch(imgs)]

    def top_emotion(self, img: Image) -> tuple[str | None, float | None]:
        """fer's `FER().top_emotion`: (class, its rounded probability) of the first face (the
        detector's best), or (None, None) when there is no face."""
        found = self.detect_emotions(img)
        if not found:
            return None, None
        emotions = found[0]["emotions"]
        top = max(emotions, key=emotions.get)
        return top, emotions[top]

    def records(self, faces: list[Face], probabilities: np.ndarray,
                decimals: int | None = None) -> list[dict]:
        """The records of `faces` from their probabilities; floats rounded to `decimals`
        (None: probabilities exact, the score to 4)."""
        return [self._record(face, row, decimals)
                for face, row in zip(faces, probabilities, strict=True)]

    def _image(self, image: Image) -> np.ndarray:
        if isinstance(image, str) and image.startswith("data:image/"):
            return decode_data_uri(image)
        if isinstance(image, str | os.PathLike):
            return read_image(image)
        return check_image(image)

    def _score(self, face: Face, decimals: int) -> float | None:
        if face.detector == WHOLE_IMAGE:
            return 0.0
        if face.detector == GIVEN or not self.scores_are_probabilities:
            return None
        return round(float(face.score), decimals)

    def _record(self, face: Face, probabilities: np.ndarray, decimals: int | None) -> dict:
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        top = int(np.argmax(probabilities))
        values = [float(p) if decimals is None else round(float(p), decimals)
                  for p in probabilities]
        return {"box": [x1, y1, x2 - x1, y2 - y1],
                "score": self._score(face, 4 if decimals is None else decimals),
                "box_source": face.box_source,
                "emotions": dict(zip(self.classes, values, strict=True)),
                "top": self.classes[top], "confidence": values[top]}


def _fer_form(record: dict) -> dict:
    return {"box": record["box"],
            "emotions": {name: round(p, 2) for name, p in record["emotions"].items()}}
