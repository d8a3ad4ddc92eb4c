"""Per-image quality features and exact-duplicate detection.

Computed once when the cache is built and stored beside it: exploration plots them, TFDV
validates them, evaluation and the bias audit slice by them. The features themselves are
defined once, in `face_sentiment.quality` (numpy only, so the Pi runner logs the same ones for
live faces); this module gives them as a DataFrame.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from face_sentiment.quality import NEAR_BLANK_STD, QUALITY_COLUMNS, quality_arrays

__all__ = ["NEAR_BLANK_STD", "QUALITY_COLUMNS", "quality_features", "duplicate_groups",
           "duplicate_summary"]


def quality_features(images: np.ndarray) -> pd.DataFrame:
    """Brightness (mean), contrast (std), sharpness (variance of the Laplacian),
    fraction of pixels at 0 or 255, and a near-blank flag, for (N, H, W) uint8 images
    (`face_sentiment.quality`, the definition live faces are described with too)."""
    return pd.DataFrame(quality_arrays(images), columns=list(QUALITY_COLUMNS))


def duplicate_groups(images: np.ndarray) -> np.ndarray:
    """Group id shared by byte-identical images (-1 for an image with no twin)."""
    digests = [hashlib.blake2b(image.tobytes(), digest_size=16).digest() for image in images]
    _, first_index, inverse, counts = np.unique(
        np.array(digests, dtype=object).astype("S16"),
        return_index=True, return_inverse=True, return_counts=True,
    )
    group = inverse.astype(np.int64)
    group[counts[inverse] == 1] = -1
    return group


def duplicate_summary(groups: np.ndarray, splits: np.ndarray, split_names: tuple[str, ...]) -> dict:
    """Counts of duplicate images within one split and across splits."""
    summary = {"duplicate_groups": 0, "images_in_groups": 0, "within_split_pairs": {},
               "cross_split_groups": 0}
    frame = pd.DataFrame({"group": groups, "split": splits})
    frame = frame[frame.group >= 0]
    summary["duplicate_groups"] = int(frame.group.nunique())
    summary["images_in_groups"] = int(len(frame))
    for index, name in enumerate(split_names):
        sizes = frame[frame.split == index].groupby("group").size()
        summary["within_split_pairs"][name] = int((sizes * (sizes - 1) // 2).sum())
    summary["cross_split_groups"] = int((frame.groupby("group").split.nunique() > 1).sum())
    return summary
