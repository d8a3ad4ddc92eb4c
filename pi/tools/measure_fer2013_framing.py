"""Measure where FER2013 puts faces: the numbers behind `faces.FER2013_FRAMING`.

Runs the BlazeFace full-range detector and the Haar cascade on FER2013 training images, each
centred in a 3x canvas of its mean grey and upscaled so the detector sees the whole face, and
prints the medians of the eye/mouth keypoints and of each detector's box, as fractions of the
48-pixel side. Usage: `python pi/tools/measure_fer2013_framing.py [fer2013.csv(.gz)] [N]`
(default: $FER2013_PATH or ../shared/datasets/fer2013/fer2013.csv.gz, N = 3000).
"""

from __future__ import annotations

import csv
import gzip
import os
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
from face_sentiment.live.faces import BlazeFaceDetector, HaarDetector  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT.parent / "shared/datasets/fer2013/fer2013.csv.gz"


def read_images(path: Path, count: int) -> list[np.ndarray]:
    opener = gzip.open if path.suffix == ".gz" else open
    images = []
    with opener(path, "rt") as handle:
        for row in csv.DictReader(handle):
            if row["Usage"] != "Training":
                continue
            pixels = np.array(row["pixels"].split(), dtype=np.uint8).reshape(48, 48)
            images.append(pixels)
            if len(images) == count:
                break
    return images


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("FER2013_PATH", DEFAULT))
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    upscale = 4
    blaze, haar = BlazeFaceDetector("full", min_score=0.5), HaarDetector(min_size=60)
    rows = {"blazeface": [], "haar": []}
    points = []
    for image in read_images(path, count):
        canvas = np.full((144, 144), int(image.mean()), np.uint8)
        canvas[48:96, 48:96] = image
        big = cv2.resize(canvas, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC)

        def to_crop(x, y):
            return (x / upscale - 48) / 48, (y / upscale - 48) / 48

        for name, detector in (("blazeface", blaze), ("haar", haar)):
            faces = detector.detect(big)
            if not faces:
                continue
            face = min(faces, key=lambda f: np.hypot(*np.subtract(f.center, (288, 288))))
            cx, cy = to_crop(*face.center)
            if not (0.2 < cx < 0.8 and 0.2 < cy < 0.8):
                continue
            rows[name].append((cx, cy, max(face.width, face.height) / upscale / 48))
            if name == "blazeface":
                (lx, ly), (rx, ry) = face.eyes()
                mx, my = face.mouth()
                left, right, mouth = to_crop(lx, ly), to_crop(rx, ry), to_crop(mx, my)
                points.append((left[1], right[1], right[0] - left[0], mouth[1],
                               (left[0] + right[0]) / 2))
    points = np.array(points)
    print(f"{len(points)} of {count} images with BlazeFace keypoints")
    eye_y = np.median((points[:, 0] + points[:, 1]) / 2)
    print(f"eye_y={eye_y:.3f} eye_distance={np.median(points[:, 2]):.3f} "
          f"mouth_y={np.median(points[:, 3]):.3f} eye_mid_x={np.median(points[:, 4]):.3f}")
    for name, values in rows.items():
        values = np.array(values)
        print(f"{name}: {len(values)} faces; box centre x, y, side = "
              + ", ".join(f"{v:.3f}" for v in np.median(values, axis=0)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
