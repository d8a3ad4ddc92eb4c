"""Image degradations of 48x48 uint8 face crops, one definition each: the robustness curves
(evaluation.robustness) measure accuracy under them at fixed levels, and camera augmentation
(model.camera) trains under them at random levels. numpy and OpenCV only.

Each takes (N, S, S) uint8 faces and a level, and returns new uint8 faces; `seed` seeds the
random ones (noise).
"""

from __future__ import annotations

import cv2
import numpy as np


def _clip(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def brightness(faces: np.ndarray, factor: float, seed: int = 0) -> np.ndarray:
    """Multiply every pixel by `factor` (clipped)."""
    return _clip(faces.astype(np.float32) * factor)


def gamma(faces: np.ndarray, value: float, seed: int = 0) -> np.ndarray:
    """out = 255 * (in / 255) ** value."""
    table = _clip(255.0 * (np.arange(256) / 255.0) ** value)
    return table[faces]


def contrast(faces: np.ndarray, factor: float, seed: int = 0) -> np.ndarray:
    """Scale deviations from each face's mean grey by `factor`."""
    pixels = faces.astype(np.float32)
    mean = pixels.mean(axis=(1, 2), keepdims=True)
    return _clip(mean + (pixels - mean) * factor)


def gaussian_noise(faces: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Add N(0, sigma^2) grey levels per pixel."""
    noise = np.random.default_rng(seed).normal(0, sigma, faces.shape) if sigma else 0.0
    return _clip(faces.astype(np.float32) + noise)


def blur(faces: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Gaussian blur with standard deviation `sigma` pixels."""
    if sigma <= 0:
        return faces.copy()
    return np.stack([cv2.GaussianBlur(face, (0, 0), sigma) for face in faces])


def jpeg(faces: np.ndarray, quality: float, seed: int = 0) -> np.ndarray:
    """Encode and decode as JPEG at `quality` (100 = near-lossless)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    return np.stack([cv2.imdecode(cv2.imencode(".jpg", face, params)[1], cv2.IMREAD_GRAYSCALE)
                     for face in faces])


def rescale(faces: np.ndarray, size: float, seed: int = 0) -> np.ndarray:
    """Down-scale to size x size (area) and back up to the original size (bilinear)."""
    side = faces.shape[1]
    if int(size) >= side:
        return faces.copy()
    return np.stack([cv2.resize(cv2.resize(face, (int(size),) * 2, interpolation=cv2.INTER_AREA),
                                (side, side), interpolation=cv2.INTER_LINEAR) for face in faces])
