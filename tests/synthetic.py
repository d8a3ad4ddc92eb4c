"""Tiny synthetic FER2013 / FER+ data shared by the fixtures and the tests (no real data)."""

from dataclasses import dataclass

import cv2
import numpy as np

from face_sentiment.labels import FER2013_CLASSES, SPLITS

CSV_HEADER = ("emotion", "pixels", "Usage")

# Image-folder ids per sample row: numeric order differs from both the class-folder order and
# the lexicographic order of the file names, so the reader's (split, id) sort is really tested.
FOLDER_IDS = (200, 30, 7, 15, 4, 9, 3, 12, 1)
# Sample rows in the order the image-folder reader must return them.
FOLDER_ORDER = (2, 1, 0, 4, 5, 3, 8, 6, 7)

# FER+ votes per sample row, columns in FERPLUS_VOTE_COLUMNS order:
# neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
FERPLUS_VOTES = np.array([
    [2, 0, 0, 0, 8, 0, 0, 0, 0, 0],   # 0 anger -> angry
    [0, 10, 0, 0, 0, 0, 0, 0, 0, 0],  # 1 happiness -> happy
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # 2 dropped by FER+ (no image name), NF=10
    [0, 0, 0, 0, 4, 6, 0, 0, 0, 0],   # 3 disgust
    [5, 0, 0, 5, 0, 0, 0, 0, 0, 0],   # 4 tie neutral/sadness -> invalid
    [0, 0, 7, 0, 0, 0, 3, 0, 0, 0],   # 5 surprise
    [4, 0, 0, 0, 0, 0, 0, 6, 0, 0],   # 6 contempt
    [0, 4, 0, 0, 0, 0, 0, 0, 6, 0],   # 7 unknown on top -> invalid
    [0, 0, 0, 0, 0, 0, 9, 0, 1, 0],   # 8 fear
], dtype=np.int16)
FERPLUS_EXPECTED = np.array([0, 3, -1, 1, -1, 5, 7, -1, 2], dtype=np.int8)
FERPLUS_DROPPED_ROW = 2


@dataclass(frozen=True)
class Sample:
    images: np.ndarray  # (9, 48, 48) uint8
    labels: np.ndarray  # (9,) int8
    splits: np.ndarray  # (9,) int8


def make_sample() -> Sample:
    """Nine images, three per split, every FER2013 class used at least once.

    Row 4 (PublicTest) is a byte-identical copy of row 0 (Training); row 2 is all zeros.
    """
    rng = np.random.default_rng(2013)
    images = rng.integers(0, 256, size=(9, 48, 48), dtype=np.uint8)
    images[4] = images[0]
    images[2] = 0
    labels = np.array([0, 3, 6, 1, 4, 5, 2, 3, 6], dtype=np.int8)
    splits = np.repeat(np.arange(len(SPLITS), dtype=np.int8), 3)
    return Sample(images=images, labels=labels, splits=splits)


def random_faces(count: int, seed: int = 0) -> np.ndarray:
    """(count, 48, 48) uint8 crops of uniform noise, seeded."""
    return np.random.default_rng(seed).integers(0, 256, (count, 48, 48), dtype=np.uint8)


def smooth_faces(count: int, seed: int = 0) -> np.ndarray:
    """Face-like uint8 crops: smooth random fields (like dev_model's calibration faces)."""
    rng = np.random.default_rng(seed)
    faces = []
    for _ in range(count):
        coarse = rng.integers(0, 256, (6, 6)).astype(np.float32)
        smooth = cv2.resize(coarse, (48, 48), interpolation=cv2.INTER_LINEAR)
        faces.append(np.clip(smooth + rng.normal(0, 8, smooth.shape), 0, 255).astype(np.uint8))
    return np.stack(faces)


def encode(image: np.ndarray, suffix: str = ".png") -> bytes:
    ok, encoded = cv2.imencode(suffix, image)
    assert ok
    return encoded.tobytes()


def folder_entries_for(sample: Sample, suffix: str = ".png") -> dict[str, bytes]:
    """{relative name: encoded image} in the Kaggle image-folder layout."""
    entries = {}
    for row, (image, label, split) in enumerate(
            zip(sample.images, sample.labels, sample.splits, strict=True)):
        top = "train" if SPLITS[split] == "Training" else "test"
        name = f"{top}/{FER2013_CLASSES[label]}/{SPLITS[split]}_{FOLDER_IDS[row]}{suffix}"
        entries[name] = encode(image, suffix)
    return entries
