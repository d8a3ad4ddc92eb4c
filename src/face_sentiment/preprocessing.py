"""The one preprocessing definition: training, evaluation, export and the Pi runner call it.

A face crop (any size, grayscale or BGR, uint8) becomes a float32 48x48x1 tensor with its
lighting normalised. Only numpy and OpenCV are used so the Pi runner can import this module
without TensorFlow. The chosen method and its parameters travel with the model (model card
`preprocessing` entry) and are read back with `PreprocessingSpec.from_dict`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

METHODS = ("standardize", "clahe", "histeq", "scale")


@dataclass(frozen=True)
class PreprocessingSpec:
    """How a face crop is turned into model input."""

    method: str = "standardize"
    size: int = 48
    clahe_clip_limit: float = 2.0
    clahe_tile_grid: int = 4

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown preprocessing method {self.method!r}; use one of {METHODS}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> PreprocessingSpec:
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


def to_gray_square(face: np.ndarray, size: int) -> np.ndarray:
    """Grayscale uint8 face resized to size x size (area interpolation when shrinking)."""
    if face.ndim == 3:
        face = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)
    if face.shape != (size, size):
        shrinking = face.shape[0] > size
        face = cv2.resize(face, (size, size),
                          interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return face


def normalise_lighting(faces: np.ndarray, spec: PreprocessingSpec) -> np.ndarray:
    """(N, S, S) uint8 -> (N, S, S) float32 with the lighting normalisation of `spec`."""
    if spec.method in ("clahe", "histeq"):
        equalise = (
            cv2.createCLAHE(spec.clahe_clip_limit, (spec.clahe_tile_grid,) * 2).apply
            if spec.method == "clahe" else cv2.equalizeHist
        )
        faces = np.stack([equalise(face) for face in faces]) if len(faces) else faces
    pixels = faces.astype(np.float32)
    if spec.method == "standardize":
        mean = pixels.mean(axis=(1, 2), keepdims=True)
        std = pixels.std(axis=(1, 2), keepdims=True)
        # A flat image has std 0: divide by at least one grey level so it maps to zeros.
        return (pixels - mean) / np.maximum(std, 1.0)
    return pixels / 127.5 - 1.0


def normalise_lighting_tf(pixels, spec: PreprocessingSpec):
    """`normalise_lighting` in TensorFlow ops, on flattened (B, S*S) faces: TF Transform's
    preprocessing_fn and the camera augmentation (model.camera) normalise with it after
    degrading raw pixels. TensorFlow is imported here, never at module level (the Pi runner
    imports this module); the parity test holds it within 1e-5 of the numpy version."""
    import tensorflow as tf

    pixels = tf.cast(pixels, tf.float32)
    if spec.method == "standardize":
        mean = tf.reduce_mean(pixels, axis=1, keepdims=True)
        centred = pixels - mean
        std = tf.sqrt(tf.reduce_mean(tf.square(centred), axis=1, keepdims=True))
        return centred / tf.maximum(std, 1.0)  # a flat face maps to zeros, as in numpy
    if spec.method == "scale":
        return pixels / 127.5 - 1.0
    raise ValueError(f"preprocessing method {spec.method!r} has no TensorFlow version "
                     "(equalisation is OpenCV-only); use standardize or scale")


def preprocess_faces(faces: np.ndarray | list[np.ndarray],
                     spec: PreprocessingSpec = PreprocessingSpec()) -> np.ndarray:
    """Face crops (a (N, H, W) uint8 array or a list of crops) -> (N, S, S, 1) float32."""
    if isinstance(faces, np.ndarray) and faces.ndim == 3 and faces.shape[1:] == (spec.size,) * 2:
        squares = faces
    else:
        squares = np.stack([to_gray_square(face, spec.size) for face in faces]) if len(faces) \
            else np.zeros((0, spec.size, spec.size), np.uint8)
    if squares.dtype != np.uint8:
        raise ValueError(f"face crops must be uint8, got {squares.dtype}")
    return normalise_lighting(squares, spec)[..., np.newaxis]
