"""Per-image quality features: the one definition, for FER2013 and for live faces.

FER2013's cache stores them per image (`data.quality.quality_features`, a DataFrame) and the
Pi runner logs them for the aligned 48x48 crop of every face it classifies
(`live.observations`), so monitoring compares like with like. numpy only: the Pi imports this.
"""

from __future__ import annotations

import numpy as np

# A face image whose pixel standard deviation is below this is (nearly) a flat field.
NEAR_BLANK_STD = 2.0
QUALITY_COLUMNS = ("brightness", "contrast", "sharpness", "clipped_fraction", "near_blank")


def quality_arrays(images: np.ndarray) -> dict[str, np.ndarray]:
    """Brightness (mean), contrast (std), sharpness (variance of the Laplacian), fraction of
    pixels at 0 or 255, and a near-blank flag, for (N, H, W) uint8 images: one array each."""
    images = np.asarray(images)
    count = len(images)
    if count == 0:
        empty = np.zeros(0, np.float32)
        return {"brightness": empty, "contrast": empty, "sharpness": empty,
                "clipped_fraction": np.zeros(0), "near_blank": np.zeros(0, bool)}
    pixels = images.astype(np.float32)
    flat = pixels.reshape(count, -1)
    # 4-neighbour Laplacian on the interior (the kernel cv2.Laplacian uses with ksize=1).
    laplacian = (
        pixels[:, :-2, 1:-1] + pixels[:, 2:, 1:-1] + pixels[:, 1:-1, :-2] + pixels[:, 1:-1, 2:]
        - 4.0 * pixels[:, 1:-1, 1:-1]
    )
    contrast = flat.std(axis=1)
    return {
        "brightness": flat.mean(axis=1),
        "contrast": contrast,
        "sharpness": laplacian.reshape(count, -1).var(axis=1),
        "clipped_fraction": ((images == 0) | (images == 255)).reshape(count, -1).mean(axis=1),
        "near_blank": contrast < NEAR_BLANK_STD,
    }
