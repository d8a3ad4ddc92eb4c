"""Shifted inputs for measuring drift detection: darkened, blurred, downscaled, rotated frames.

`shift_frame(image, name, level)` changes a BGR frame as a camera or a room would: `darken`
multiplies every pixel by `level` (0.5: half the light); `blur` applies a Gaussian blur of
sigma `level` pixels (a defocused lens); `downscale` resizes the frame by `level` and keeps it
small (a camera set to a lower resolution: faces get smaller and softer); `rotate` turns the
frame by `level` degrees about its centre (a tilted camera). `write_video` writes frames
losslessly (FFV1 in .avi), so a copy differs from the original only by the shift.

    python -m face_sentiment.monitoring.shifts IN.mp4 OUT.avi darken 0.5 [--frames 0:45]

writes a shifted (or, with `none`, plain) copy of a video or of a range of its frames.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from face_sentiment.live.frame_sources import read_video_frames
from face_sentiment.paths import atomic_target

SHIFTS = ("none", "darken", "blur", "downscale", "rotate")
# The levels notebook 10 measures detection at (one moderate change of each kind).
DEFAULT_LEVELS = {"darken": 0.5, "blur": 2.0, "downscale": 0.5, "rotate": 20.0}


def shift_frame(image: np.ndarray, name: str, level: float) -> np.ndarray:
    """A shifted copy of a BGR uint8 frame (see the module docstring)."""
    if name == "none":
        return image.copy()
    if name == "darken":
        return np.clip(image.astype(np.float32) * level, 0, 255).round().astype(np.uint8)
    if name == "blur":
        return cv2.GaussianBlur(image, (0, 0), sigmaX=float(level), sigmaY=float(level))
    if name == "downscale":
        height, width = image.shape[:2]
        size = (max(2, round(width * level)), max(2, round(height * level)))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    if name == "rotate":
        height, width = image.shape[:2]
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), float(level), 1.0)
        return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    raise ValueError(f"unknown shift {name!r}; use one of {', '.join(SHIFTS)}")


def shift_frames(frames: list[np.ndarray], name: str, level: float) -> list[np.ndarray]:
    return [shift_frame(frame, name, level) for frame in frames]


def write_video(frames: list[np.ndarray], path: str | Path, fps: float = 30.0) -> Path:
    """Write BGR frames losslessly (FFV1, .avi) atomically; returns the path."""
    path = Path(path)
    if not frames:
        raise ValueError(f"{path}: no frames to write")
    height, width = frames[0].shape[:2]
    with atomic_target(path) as staging:
        target = staging.with_suffix(".avi")
        writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"FFV1"), fps,
                                 (width, height))
        if not writer.isOpened():
            raise RuntimeError("OpenCV cannot write FFV1 video here")
        try:
            for frame in frames:
                writer.write(frame)
            writer.release()
            target.replace(staging)
        finally:
            writer.release()
            target.unlink(missing_ok=True)
    return path


def _range(text: str | None, count: int) -> slice:
    if not text:
        return slice(0, count)
    start, _, stop = text.partition(":")
    return slice(int(start) if start else 0, int(stop) if stop else count)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m face_sentiment.monitoring.shifts",
        description="Write a shifted, lossless copy of a video (for drift checks).")
    parser.add_argument("source")
    parser.add_argument("target", help="output video (.avi, FFV1)")
    parser.add_argument("shift", choices=SHIFTS)
    parser.add_argument("level", type=float, nargs="?",
                        help="strength (default: the level notebook 10 measures)")
    parser.add_argument("--frames", help="START:STOP, a range of frames (default: all)")
    args = parser.parse_args(argv)
    frames = read_video_frames(args.source)
    if not frames:
        parser.error(f"{args.source}: no frames could be read")
    capture = cv2.VideoCapture(args.source)
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    capture.release()
    level = args.level if args.level is not None else DEFAULT_LEVELS.get(args.shift, 1.0)
    chosen = frames[_range(args.frames, len(frames))]
    what = "unchanged" if args.shift == "none" else f"{args.shift} {level:g}"
    print(f"wrote {write_video(shift_frames(chosen, args.shift, level), args.target, fps)} "
          f"({len(chosen)} frames, {what})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
