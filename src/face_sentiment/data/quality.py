"""Per-image quality features and exact-duplicate detection.

Computed once when the cache is built and stored beside it: exploration plots them, TFDV
validates them, evaluation and the bias audit slice by them.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

# A face image whose pixel standard deviation is below this is (nearly) a flat field.
NEAR_BLANK_STD = 2.0
QUALITY_COLUMNS = ("brightness", "contrast", "sharpness", "clipped_fraction", "near_blank")


def quality_features(images: np.ndarray) -> pd.DataFrame:
    """Brightness (mean), contrast (std), sharpness (variance of the Laplacian),
    fraction of pixels at 0 or 255, and a near-blank flag, for (N, H, W) uint8 images."""
    pixels = images.astype(np.float32)
    flat = pixels.reshape(len(images), -1)
    # 4-neighbour Laplacian on the interior (the kernel cv2.Laplacian uses with ksize=1).
    laplacian = (
        pixels[:, :-2, 1:-1] + pixels[:, 2:, 1:-1] + pixels[:, 1:-1, :-2] + pixels[:, 1:-1, 2:]
        - 4.0 * pixels[:, 1:-1, 1:-1]
    )
    contrast = flat.std(axis=1)
    return pd.DataFrame({
        "brightness": flat.mean(axis=1),
        "contrast": contrast,
        "sharpness": laplacian.reshape(len(images), -1).var(axis=1),
        "clipped_fraction": ((images == 0) | (images == 255)).reshape(len(images), -1).mean(axis=1),
        "near_blank": contrast < NEAR_BLANK_STD,
    })


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
