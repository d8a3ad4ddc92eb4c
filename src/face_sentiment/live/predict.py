"""`face-sentiment predict PATH...`: the expression of every face in photos, folders and videos.

PATHs are image files, folders (searched recursively, files in sorted order; files with other
suffixes and hidden files or folders are skipped) and videos (.mp4, .avi, .mov, .mkv, .m4v,
.webm, read through `live.frame_sources`; `--every N` keeps frames 0, N, 2N, ...). Every face
gives one record:

    {"file": "photos/a.jpg", "frame": null, "time": null, "face": 0, "box": [x, y, w, h],
     "score": 0.94, "box_source": "detector", "emotions": {"angry": 0.012, ...},
     "top": "happy", "confidence": 0.855}

`frame` (index) and `time` (seconds, from the video's frame rate) are set for video frames and
null for photos; `face` counts the faces of one image or frame, best detector score first.
`box_source` is "whole-image" for a face crop in which no face was found, taken whole
(`faces.find_faces`; `--crops` says every image is one crop, so each gets one answer). The
records are exactly those of `FaceSentiment.analyze` (same floats) plus those four fields.
`--format json` (default) writes one JSON list, one record per line; `--format csv` one row per
face with columns file, frame, time, face, x, y, w, h, score, box_source, top, confidence and
one column per class (the model card's names, in its order). Output goes to stdout or, written
atomically, to `--out FILE`. `--annotate DIR` writes every photo (and every video frame
processed) with boxes and labels drawn by the Pi runner's `draw_overlay`: DIR/<file name> for a
file argument, DIR/<folder name>/<path inside it> for a folder's images, DIR/<video name without
suffix>/frame_NNNNNN.jpg for video frames. An image that cannot be decoded, a missing path or
model, or a folder without images is an error naming it (`PredictError`, exit 2 from the CLI);
nothing is written to --out then. numpy, OpenCV and a TFLite interpreter only: TensorFlow is
never imported.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from face_sentiment.live.analyzer import DEFAULT_MODEL, FaceSentiment, PredictError, read_image
from face_sentiment.live.faces import DEFAULT_DETECTOR, DETECTORS
from face_sentiment.live.frame_sources import IMAGE_SUFFIXES, VideoFileSource
from face_sentiment.live.runner import FaceResult, draw_overlay
from face_sentiment.paths import write_atomic

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")
FORMATS = ("json", "csv")
# Annotated photos keep these formats; any other one is written as PNG.
_KEPT_SUFFIXES = (".jpg", ".jpeg", ".png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `predict` subcommand's arguments."""
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="image files, folders of images (recursive) and videos")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"TFLite expression model: shipped-int8, shipped-<variant>-int8 or "
                             f"a .tflite file with its model_card.json (default: {DEFAULT_MODEL})")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, choices=DETECTORS,
                        help=f"face detector (default: {DEFAULT_DETECTOR}; haar needs only "
                             "OpenCV)")
    parser.add_argument("--crops", action="store_true",
                        help="every image is one face crop (a dataset of crops): one answer "
                             "per image, the whole image where no face is found in it")
    parser.add_argument("--format", default="json", choices=FORMATS,
                        help="json: a list, one record per line; csv: one column per class "
                             "(default: json)")
    parser.add_argument("--out", metavar="FILE", help="write the records here (default: stdout)")
    parser.add_argument("--annotate", metavar="DIR",
                        help="write each image / processed video frame with boxes and labels")
    parser.add_argument("--every", type=int, default=1, metavar="N",
                        help="videos: process every Nth frame (default: 1, all)")
    parser.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="also report progress and the runtime's own log lines")


def collect_inputs(paths: list[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """(file, its name under --annotate) for every image and video the arguments name."""
    items = []
    known = IMAGE_SUFFIXES + VIDEO_SUFFIXES
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(
                file for file in path.rglob("*")
                if file.suffix.lower() in known and file.is_file()
                and not any(part.startswith(".") for part in file.relative_to(path).parts))
            if not found:
                raise PredictError(
                    f"{path}: no images ({' '.join(IMAGE_SUFFIXES)}) or videos "
                    f"({' '.join(VIDEO_SUFFIXES)}) in this folder or below it; give a folder "
                    "that holds some")
            name = Path(path.name or path.resolve().name)
            items += [(file, name / file.relative_to(path)) for file in found]
        elif path.is_file():
            if path.suffix.lower() not in known:
                raise PredictError(
                    f"{path}: not an image or a video (known suffixes: {' '.join(known)}); "
                    "give image files, videos or folders of them")
            items.append((path, Path(path.name)))
        else:
            raise PredictError(f"{path}: no such file or folder")
    return items


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def video_fps(path: Path) -> float | None:
    """The frame rate a video declares, or None when it declares none."""
    capture = cv2.VideoCapture(str(path))
    try:
        fps = capture.get(cv2.CAP_PROP_FPS)
    finally:
        capture.release()
    return fps if fps and math.isfinite(fps) and fps > 0 else None


def predict_records(paths: list[str | os.PathLike], analyzer: FaceSentiment, every: int = 1,
                    annotate: str | os.PathLike | None = None) -> list[dict]:
    """The records (see the module docstring) of every face in `paths`."""
    if every < 1:
        raise PredictError(f"--every {every}: give a positive number of frames")
    items = collect_inputs(paths)
    annotator = _Annotator(Path(annotate), analyzer.classes) if annotate else None
    records = []
    for path, name in items:
        if is_video(path):
            fps = video_fps(path)
            with VideoFileSource(path) as source:
                for frame in source:
                    if frame.index % every:
                        continue
                    faces = analyzer.analyze(frame.image)
                    seconds = None if fps is None else round(frame.index / fps, 3)
                    records += _with_origin(faces, path, frame.index, seconds)
                    if annotator:
                        annotator.write(name.with_suffix("") / f"frame_{frame.index:06d}.jpg",
                                        frame.image, faces)
        else:
            image = read_image(path)
            faces = analyzer.analyze(image)
            records += _with_origin(faces, path, None, None)
            if annotator:
                suffix = name.suffix if name.suffix.lower() in _KEPT_SUFFIXES else ".png"
                annotator.write(name.with_suffix(suffix), image, faces)
    return records


def _with_origin(faces: list[dict], path: Path, frame: int | None,
                 seconds: float | None) -> list[dict]:
    return [{"file": str(path), "frame": frame, "time": seconds, "face": number, **record}
            for number, record in enumerate(faces)]


class _Annotator:
    """Writes images with the runner's overlay under one folder, never one file twice."""

    def __init__(self, folder: Path, classes: tuple[str, ...]) -> None:
        self.folder, self.classes, self.written = folder, classes, set()

    def write(self, name: Path, image: np.ndarray, faces: list[dict]) -> Path:
        target = self.folder / name
        if target in self.written:
            raise PredictError(f"{target}: two inputs would be annotated to this file; give "
                               "them from different folders")
        results = []
        for record in faces:
            x, y, w, h = record["box"]
            probabilities = np.array(list(record["emotions"].values()), np.float32)
            results.append(FaceResult((x, y, x + w, y + h), record["score"], probabilities,
                                      probabilities))
        drawn = draw_overlay(image.copy(), results, self.classes)
        ok, encoded = cv2.imencode(target.suffix, drawn)
        if not ok:
            raise PredictError(f"{target}: OpenCV cannot write this image format")
        write_atomic(target, encoded.tobytes())
        self.written.add(target)
        return target


def to_json(records: list[dict]) -> str:
    """A JSON list, one record per line."""
    if not records:
        return "[]\n"
    return "[\n" + ",\n".join(json.dumps(record) for record in records) + "\n]\n"


def to_csv(records: list[dict], classes: tuple[str, ...]) -> str:
    """One row per face; floats written exactly (Python's shortest round-trip form)."""
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(["file", "frame", "time", "face", "x", "y", "w", "h", "score", "box_source",
                     "top", "confidence", *classes])
    for record in records:
        writer.writerow([record["file"], _cell(record["frame"]), _cell(record["time"]),
                         record["face"], *record["box"], record["score"],
                         record["box_source"], record["top"],
                         record["confidence"], *(record["emotions"][name] for name in classes)])
    return stream.getvalue()


def _cell(value):
    return "" if value is None else value


def run(args: argparse.Namespace) -> int:
    """The `predict` command: records to stdout or --out; PredictError etc. propagate."""
    verbose = getattr(args, "verbose", False)
    started = time.perf_counter()
    collect_inputs(args.paths)  # a missing path fails before the model loads
    # Quiet: interpreter.QUIET_ENV.
    analyzer = FaceSentiment(args.model, args.detector, crops=args.crops)
    records = predict_records(args.paths, analyzer, args.every, args.annotate)
    text = to_json(records) if args.format == "json" else to_csv(records, analyzer.classes)
    if args.out:
        write_atomic(args.out, text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    if verbose:
        images = len({(record["file"], record["frame"]) for record in records})
        print(f"predict: {len(records)} face(s) in {images} image(s)/frame(s) with faces, "
              f"model {analyzer.model_path}, detector {analyzer.detector.name}, "
              f"{time.perf_counter() - started:.2f} s", file=sys.stderr)
    return 0
