"""What the runner records about each face and frame, for drift monitoring.

Per face, besides box, detector score and probabilities (runner.FaceResult): the quality
features of the aligned 48x48 crop the model saw, computed by `face_sentiment.quality`, the
same definition FER2013's cache uses (brightness, contrast, sharpness, clipped_fraction); the
face's size in pixels (square root of the detector box's area); the eye-line angle in degrees
when the detector gives eye keypoints (None otherwise: the Haar detector, tracked frames);
and, from the raw (unsmoothed) probabilities, the top class, its probability and the entropy
in bits. Per frame: the device id ($FACE_SENTIMENT_DEVICE, else the host name) and the model
id (the hash of its model card, `ModelCard.fingerprint`). numpy only.
"""

from __future__ import annotations

import math
import os
import socket

import numpy as np

from face_sentiment.quality import quality_arrays

DEVICE_ENV = "FACE_SENTIMENT_DEVICE"
QUALITY_FIELDS = ("brightness", "contrast", "sharpness", "clipped_fraction")
FACE_FIELDS = (*QUALITY_FIELDS, "face_px", "eye_angle", "top", "top_confidence", "entropy")
_ROUNDING = {"brightness": 2, "contrast": 2, "sharpness": 1, "clipped_fraction": 4}


def entropy_bits(probabilities: np.ndarray) -> np.ndarray:
    """Shannon entropy (bits) of each row of (N, C) probabilities (renormalised)."""
    p = np.clip(np.asarray(probabilities, np.float64), 0.0, None)
    if p.size == 0:
        return np.zeros(len(p))
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(p), 0.0)
    return terms.sum(axis=1)


def eye_angle(face) -> float | None:
    """Angle of the eye line in degrees (positive: the right-hand eye in the image is lower),
    or None without eye keypoints."""
    eyes = face.eyes() if hasattr(face, "eyes") else None
    if eyes is None:
        return None
    (lx, ly), (rx, ry) = eyes
    return math.degrees(math.atan2(ry - ly, rx - lx))


def face_observations(crops: np.ndarray, faces: list, probabilities: np.ndarray,
                      classes: tuple[str, ...]) -> list[dict]:
    """One dict of FACE_FIELDS per face: `crops` (N, S, S) uint8 as classified, `faces` the
    detector's Face objects, `probabilities` (N, C) raw model outputs."""
    if len(faces) == 0:
        return []
    quality = quality_arrays(np.asarray(crops))
    probabilities = np.asarray(probabilities)
    entropy = entropy_bits(probabilities)
    top = probabilities.argmax(axis=1)
    records = []
    for i, face in enumerate(faces):
        angle = eye_angle(face)
        record = {name: round(float(quality[name][i]), _ROUNDING[name])
                  for name in QUALITY_FIELDS}
        record.update(
            face_px=round(math.sqrt(max(face.width, 0.0) * max(face.height, 0.0)), 1),
            eye_angle=None if angle is None else round(angle, 2),
            top=classes[int(top[i])],
            top_confidence=round(float(probabilities[i, top[i]]), 4),
            entropy=round(float(entropy[i]), 4))
        records.append(record)
    return records


def device_id() -> str:
    """$FACE_SENTIMENT_DEVICE, else this machine's host name."""
    return os.environ.get(DEVICE_ENV) or socket.gethostname() or "unknown"
