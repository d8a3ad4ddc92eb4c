"""A synthetic test clip with a known number of faces per frame, built from a packaged photo.

For benchmarks and tests where no real video is at hand: scikit-image ships the public-domain
NASA portrait `astronaut.png` inside its wheel. The clip (640x480 by default) starts with
`empty_frames` frames of a plain textured background (no face), then shows the portrait's face
twice, at two sizes, drifting across the frame, so that detection, tracking and smoothing all
have work to do. `clip_truth(index)` gives the number of faces in each frame.
The image is read with `skimage.data.astronaut()` or, when scikit-image cannot be imported
(e.g. installed with --no-deps on a Pi), straight from the wheel's data folder.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

# The face of skimage.data.astronaut() (512x512): x1, y1, x2, y2 with some hair and chin.
ASTRONAUT_FACE = (140, 20, 300, 210)
FACES_PER_FRAME = 2


def astronaut_bgr() -> np.ndarray:
    """scikit-image's astronaut photograph as a BGR uint8 array (512x512)."""
    try:
        from skimage import data
        return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    except ImportError:
        pass
    spec = importlib.util.find_spec("skimage")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "data" / "astronaut.png"
        if path.is_file():
            return cv2.imread(str(path), cv2.IMREAD_COLOR)
    raise FileNotFoundError("scikit-image's astronaut.png not found: "
                            "`pip install scikit-image` (or `pip install --no-deps scikit-image`)")


def clip_truth(index: int, empty_frames: int = 10) -> int:
    """Number of faces in frame `index` of the demo clip."""
    return 0 if index < empty_frames else FACES_PER_FRAME


def _background(width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    coarse = rng.integers(60, 200, (6, 8, 3)).astype(np.uint8)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


def demo_frames(count: int = 60, width: int = 640, height: int = 480,
                empty_frames: int = 10) -> list[np.ndarray]:
    """`count` BGR frames: `empty_frames` without a face, then two moving faces."""
    if width < 320 or height < 240:
        raise ValueError("the demo clip needs at least 320x240")
    x1, y1, x2, y2 = ASTRONAUT_FACE
    face = astronaut_bgr()[y1:y2, x1:x2]
    background = _background(width, height)
    frames = []
    for index in range(count):
        frame = background.copy()
        if index >= empty_frames:
            t = (index - empty_frames) / max(1, count - empty_frames)
            for scale, (fx, fy) in ((0.9, (0.08 + 0.2 * t, 0.15)), (0.55, (0.62, 0.5 - 0.2 * t))):
                tile = cv2.resize(face, None, fx=scale * height / 480, fy=scale * height / 480,
                                  interpolation=cv2.INTER_AREA)
                x, y = int(fx * width), int(fy * height)
                h, w = tile.shape[:2]
                h, w = min(h, height - y), min(w, width - x)
                frame[y:y + h, x:x + w] = tile[:h, :w]
        frames.append(frame)
    return frames


def write_demo_clip(path: str | Path, count: int = 60, fps: float = 30.0, width: int = 640,
                    height: int = 480, empty_frames: int = 10) -> Path:
    """Write the demo clip as an MJPG .avi (OpenCV's built-in encoder; no codec needed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write video {path}")
    try:
        for frame in demo_frames(count, width, height, empty_frames):
            writer.write(frame)
    finally:
        writer.release()
    return path
