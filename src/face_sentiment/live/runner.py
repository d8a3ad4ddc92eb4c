"""The Pi runner: camera -> face detection -> alignment -> TFLite expression model -> overlay.

`python pi/run.py --source {0|picam|clip.mp4|folder/} --model models/face_sentiment_int8.tflite`
shows or logs, per frame, every face with its box, label and confidence. Labels are smoothed
per face (IoU tracking + exponential moving average) so they do not flicker, and a face the
detector misses for a few detections is kept at its last box, marked held, so the faces shown
do not blink; the raw and smoothed probabilities of every face go to a JSON-lines log for
drift monitoring.
`--benchmark N --out DIR` times each stage (capture, detect, align, classify, draw) over N
frames and writes a JSON summary and a per-frame CSV; `--compare-fer` then runs the `fer`
package's pipeline on the same frames for a speed ratio. Imports numpy, OpenCV and a TFLite
interpreter only (never TensorFlow), so it runs on Raspberry Pi OS with tflite-runtime or
ai-edge-litert.

Made to run for days: the statistics kept need O(1) memory (benchmark.py); the log rotates by
size and count (`--log-max-mb`, `--log-keep`, `--log-compress`), can be thinned
(`--log-every`, `--log-on-change`), and a full disk or an unwritable log is reported once
while the run goes on. When a frame takes longer than the frame interval (a camera's rate,
`--realtime` or `--fps-limit`), detection runs only every k-th frame, k chosen from the
measured stage times, and the tracked faces are moved along and classified in between. All
timing uses monotonic clocks. SIGTERM (systemd) and Ctrl-C end the run after the current
frame and still write the summary; under systemd (`Type=notify`, `WatchdogSec=`) the loop
sends READY/WATCHDOG/STATUS/STOPPING over $NOTIFY_SOCKET (sd_notify, standard library only).
`--soak SECONDS` runs the looped source for that long, samples RSS, file descriptors, threads
and log size, and writes their fitted growth (soak.json, soak_rss.png).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np

from face_sentiment.energy import EnergyMeter, per_unit
from face_sentiment.energy import describe as describe_energy
from face_sentiment.live.benchmark import Benchmark, SoakMonitor, format_summary
from face_sentiment.live.classifier import ExpressionClassifier
from face_sentiment.live.faces import (
    DEFAULT_DETECTOR,
    DETECTORS,
    BlazeFaceDetector,
    FaceDetector,
    align_faces,
    create_detector,
)
from face_sentiment.live.frame_sources import FrameSource, SourceError, open_source
from face_sentiment.live.interpreter import QUIET_ENV, ModelFileError, interpreter_class
from face_sentiment.live.observations import device_id, face_observations
from face_sentiment.live.publisher import add_serve_arguments, start_live_page
from face_sentiment.live.reload import ModelWatcher
from face_sentiment.live.results_log import (
    DEFAULT_LOG_KEEP,
    DEFAULT_LOG_MAX_MB,
    ResultsLog,
    StreamLog,
)
from face_sentiment.live.scheduling import DEFAULT_MAX_DETECT_EVERY, DetectionScheduler, Pacer
from face_sentiment.live.service import StopRequest, SystemdNotifier
from face_sentiment.live.tracking import DEFAULT_HOLD, FaceTracker
from face_sentiment.model_card import PACKAGED_MODELS, SHIPPED_MODEL
from face_sentiment.paths import write_atomic

log = logging.getLogger("face_sentiment.live.runner")

DEFAULT_MODEL = "models/face_sentiment_int8.tflite"  # of the checkout holding src/, see below
# BlazeFace full-range on the shared party video (pi/tools/face_video_01_faces.json): at its own
# 0.5 threshold it boxes the side-on man with a phone in 32% of frames and the man in the turban
# in 72%; kept down to 0.4 where they continue a track, 88% and 97% (README, "Detection").
TRACK_MIN_SCORE = 0.4
CAMERA_FPS_FALLBACK = 30.0
# BGR colours per FER2013 class name; unknown names get grey.
COLOURS = {"angry": (40, 40, 220), "disgust": (40, 140, 40), "fear": (160, 60, 160),
           "happy": (40, 200, 240), "sad": (200, 120, 40), "surprise": (240, 200, 40),
           "neutral": (200, 200, 200), "contempt": (120, 120, 40)}


def default_model() -> Path:
    """The shipped int8 model, found from this file rather than the current folder (pi/run.py
    started elsewhere, a service's WorkingDirectory): models/ of the checkout or image that
    holds src/face_sentiment/, else the copy an installed wheel carries."""
    checkout = Path(__file__).resolve().parents[3] / DEFAULT_MODEL
    packaged = PACKAGED_MODELS / SHIPPED_MODEL
    return packaged if not checkout.is_file() and packaged.is_file() else checkout


@dataclass
class FaceResult:
    """One classified face of one frame."""

    box: tuple[float, float, float, float]
    score: float
    probabilities: np.ndarray
    smoothed: np.ndarray
    track_id: int | None = None
    # live.observations.face_observations: crop quality, face_px, eye_angle, top, entropy...
    observations: dict | None = None
    # Missed by the detector, shown at its last box (FaceTracker.held): nothing was classified
    # for it on this frame, so it has no observations and `probabilities` is its last output.
    held: bool = False

    @property
    def label_index(self) -> int:
        return int(np.argmax(self.smoothed))

    def to_dict(self, classes: tuple[str, ...]) -> dict:
        index = self.label_index
        return {
            "track": self.track_id,
            "box": [round(float(v), 1) for v in self.box],
            "score": round(float(self.score), 4),
            "label": classes[index],
            "confidence": round(float(self.smoothed[index]), 4),
            "probabilities": {c: round(float(p), 4)
                              for c, p in zip(classes, self.probabilities, strict=True)},
            "smoothed": {c: round(float(p), 4)
                         for c, p in zip(classes, self.smoothed, strict=True)},
            **(self.observations or {}),
            **({"held": True} if self.held else {}),
        }


class Pipeline:
    """Ours: detector -> align every face -> one batched classification -> tracker smoothing.

    `process(image, bench, detect=False)` skips the detector: the tracker moves the faces of
    the last detection along by their velocity, and those are aligned and classified (only
    with a tracker; without one every frame is detected). `simulate_load_ms` adds that much
    sleep to every detection (to try the frame skipping without a slow machine).
    """

    name = "ours"

    def __init__(self, detector: FaceDetector, classifier: ExpressionClassifier,
                 tracker: FaceTracker | None = None, simulate_load_ms: float = 0.0,
                 birth_score: float | None = None) -> None:
        self.detector, self.classifier, self.tracker = detector, classifier, tracker
        # With a tracker: faces under this score are kept only where they continue a track
        # (FaceTracker.admit), the detector itself running at a lower threshold.
        self.birth_score = birth_score
        self.classes = classifier.classes
        self.size = classifier.card.preprocessing.size
        self.simulate_load_ms = simulate_load_ms
        self.model_id = getattr(classifier, "model_id", None)  # the log's per-frame "model"

    @property
    def can_skip_detection(self) -> bool:
        return self.tracker is not None

    def process(self, image: np.ndarray, bench: Benchmark,
                detect: bool = True) -> list[FaceResult]:
        if not detect and self.tracker is not None:
            return self._track_only(image, bench)
        with bench.stage("detect"):
            faces = self.detector.detect(image)
            if self.tracker is not None and self.birth_score is not None:
                faces = self.tracker.admit(faces, self.birth_score)
            if self.simulate_load_ms > 0:
                time.sleep(self.simulate_load_ms / 1000.0)
        with bench.stage("align"):
            crops = align_faces(image, faces, self.size)
        with bench.stage("classify"):
            probabilities = self.classifier.predict(crops)
            observed = face_observations(crops, faces, probabilities, self.classes)
            tracks = (self.tracker.update(np.array([f.box for f in faces]).reshape(-1, 4),
                                          probabilities, faces) if self.tracker else None)
        results = []
        for i, face in enumerate(faces):
            smoothed = tracks[i].probabilities if tracks else probabilities[i]
            results.append(FaceResult(face.box, face.score, probabilities[i], smoothed,
                                      tracks[i].track_id if tracks else None, observed[i]))
        return results + self._held(tracks or [])

    def _track_only(self, image: np.ndarray, bench: Benchmark) -> list[FaceResult]:
        with bench.stage("align"):
            tracks = self.tracker.predict()
            faces = [self.tracker.predicted_face(t) for t in tracks]
            crops = align_faces(image, faces, self.size)
        with bench.stage("classify"):
            probabilities = self.classifier.predict(crops)
            observed = face_observations(crops, faces, probabilities, self.classes)
            self.tracker.blend(tracks, probabilities)
        return [FaceResult(face.box, face.score, probabilities[i], track.probabilities,
                           track.track_id, observed[i])
                for i, (face, track) in enumerate(zip(faces, tracks, strict=True))
                ] + self._held(tracks)

    def _held(self, shown: list) -> list[FaceResult]:
        """The faces the detector just missed, at their last box (FaceTracker.held)."""
        if self.tracker is None:
            return []
        return [FaceResult(tuple(float(v) for v in t.box), t.score,
                           t.probabilities if t.raw is None else t.raw, t.probabilities,
                           t.track_id, held=True) for t in self.tracker.held(shown)]

    def restart(self) -> None:
        """A looped file began again: its faces jump back to their first places, so the tracks
        (and their held boxes) are dropped."""
        if self.tracker is not None:
            self.tracker.reset()

    def swap_classifier(self, classifier: ExpressionClassifier) -> None:
        """Use `classifier` from the next frame on (live.reload); tracks are kept unless the
        class list changed, since their smoothed probabilities are per class."""
        if classifier.classes != self.classes and self.tracker is not None:
            self.tracker.reset()
        self.classifier, self.classes = classifier, classifier.classes
        self.size = classifier.card.preprocessing.size
        self.model_id = classifier.model_id

    def describe(self) -> dict:
        return {"pipeline": self.name, "detector": self.detector.name,
                "model": str(self.classifier.model_path),
                "model_input_dtype": self.classifier.input_dtype,
                "batched": self.classifier.dynamic_batch,
                "kernels": self.classifier.kernels,
                "self_test": self.classifier.self_test.describe(),
                "classes": list(self.classes),
                "preprocessing": self.classifier.card.preprocessing.to_dict(),
                "smoothing": None if self.tracker is None else {
                    "iou_threshold": self.tracker.iou_threshold, "alpha": self.tracker.alpha,
                    "max_missed": self.tracker.max_missed,
                    "max_tracks": self.tracker.max_tracks, "hold": self.tracker.hold},
                "simulated_detect_load_ms": self.simulate_load_ms or None}


class FerRunnerPipeline:
    """The fer package's pipeline behind the same interface, for like-for-like timing."""

    name = "fer"
    can_skip_detection = False

    def __init__(self, num_threads: int = 1) -> None:
        from face_sentiment.live.fer_baseline import FerPipeline
        self.fer = FerPipeline(num_threads=num_threads)
        self.classes = self.fer.classes

    def process(self, image: np.ndarray, bench: Benchmark,
                detect: bool = True) -> list[FaceResult]:
        with bench.stage("detect"):
            boxes, gray = self.fer.detect(image)
        with bench.stage("align"):
            crops, boxes = self.fer.crops(gray, boxes)
        with bench.stage("classify"):
            probabilities = self.fer.classify(crops)
        return [FaceResult((x, y, x + w, y + h), 1.0, p, p)
                for (x, y, w, h), p in zip(boxes, probabilities, strict=True)]

    def describe(self) -> dict:
        return {"pipeline": self.name, "detector": "fer haar cascade (scale 1.1, neighbours 5, "
                "min size 50)", "model": str(self.fer.files.tflite_model),
                "fer_version": self.fer.files.version, "batched": False,
                "classes": list(self.classes)}


def draw_overlay(image: np.ndarray, results: list[FaceResult],
                 classes: tuple[str, ...]) -> np.ndarray:
    """Draw box, label and confidence of every face on `image` (in place) and return it; a held
    face (missed by the detector, shown at its last box) gets a thin box and 'held'."""
    for result in results:
        x1, y1, x2, y2 = (int(round(v)) for v in result.box)
        label = classes[result.label_index]
        colour = COLOURS.get(label, (160, 160, 160))
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, 1 if result.held else 2)
        text = f"{label} {result.smoothed[result.label_index]:.2f}" + (
            " held" if result.held else "")
        (tw, th), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        top = max(0, y1 - th - baseline - 4)
        cv2.rectangle(image, (x1, top), (x1 + tw + 4, top + th + baseline + 4), colour, -1)
        cv2.putText(image, text, (x1 + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (0, 0, 0), 1, cv2.LINE_AA)
    return image


def frame_record(frame_index: int, timestamp: float, origin: str, results: list[FaceResult],
                 classes: tuple[str, ...], model: str | None = None, **extra) -> dict:
    """One JSON-lines log record (`extra`: detected, detect_every, ...): `time` is the capture
    time (seconds since the epoch), `device` this machine ($FACE_SENTIMENT_DEVICE or the host
    name), `model` the model card's fingerprint; each face carries live.observations' fields
    for drift monitoring (face_sentiment.monitoring)."""
    return {"frame": frame_index, "time": round(timestamp, 3), "source": origin,
            "device": device_id(), "model": model,
            "faces": [r.to_dict(classes) for r in results], **extra}


# ------------------------------------------------------------------------------------------
# The JSON-lines log: rotated by size and count, thinned, never fatal


def _detect_every(value: str) -> int | None:
    if value == "auto":
        return None
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pi/run.py", description="Live facial expression recognition and benchmarks.")
    parser.add_argument("--source", default="0",
                        help="camera index (0), /dev/videoN, 'picam', a video file, an image "
                             "folder, or 'demo' (synthetic clip) (default: 0)")
    parser.add_argument("--model", default=None,
                        help=f"TFLite expression model (default: {DEFAULT_MODEL} of this "
                             "checkout, wherever it is started from; the packaged copy when "
                             "installed from a wheel)")
    parser.add_argument("--card", help="model card JSON (default: model_card.json beside it)")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, choices=DETECTORS,
                        help=f"face detector (default: {DEFAULT_DETECTOR})")
    parser.add_argument("--detector-model", help="override the detector's model/cascade file")
    parser.add_argument("--min-score", type=float, help="detector score threshold")
    parser.add_argument("--track-min-score", type=float, default=TRACK_MIN_SCORE,
                        help="with tracking, BlazeFace faces from this score up to the "
                             "detector's threshold are kept where they continue a track "
                             f"(side-on, half-hidden faces); new faces still need the "
                             f"threshold (default: {TRACK_MIN_SCORE})")
    parser.add_argument("--pipeline", default="ours", choices=("ours", "fer"),
                        help="'fer' runs the fer package's pipeline instead (baseline)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for TFLite and OpenCV (default: 1)")
    parser.add_argument("--show", action="store_true", help="show a window (q or Esc quits)")
    parser.add_argument("--log", help="write per-frame results as JSON lines to this file")
    parser.add_argument("--log-max-mb", type=float, default=DEFAULT_LOG_MAX_MB,
                        help="rotate the log when it would pass this size; 0: never "
                             f"(default: {DEFAULT_LOG_MAX_MB:g})")
    parser.add_argument("--log-keep", type=int, default=DEFAULT_LOG_KEEP,
                        help="rotated logs kept (.1 newest ... .N); disk use is at most "
                             f"max-mb x (keep + 1) (default: {DEFAULT_LOG_KEEP})")
    parser.add_argument("--log-compress", action="store_true",
                        help="gzip rotated logs (in a background thread)")
    parser.add_argument("--log-every", type=int, default=1, metavar="N",
                        help="log every N-th frame (with --log-on-change: a heartbeat every "
                             "N frames) (default: 1)")
    parser.add_argument("--log-on-change", action="store_true",
                        help="log a frame only when its faces' tracks or labels change")
    parser.add_argument("--output-video", help="write the annotated frames to this video")
    parser.add_argument("--no-smoothing", action="store_true",
                        help="label each frame on its own (no tracking/EMA)")
    parser.add_argument("--alpha", type=float, default=0.4,
                        help="EMA weight of the newest frame (default: 0.4)")
    parser.add_argument("--hold", type=int, default=DEFAULT_HOLD, metavar="N",
                        help="show a face the detector missed at up to N detections in a row "
                             "at its last box, marked held; 0: only detected faces "
                             f"(default: {DEFAULT_HOLD})")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames")
    parser.add_argument("--benchmark", type=int, metavar="N",
                        help="benchmark mode: time N frames (after --warmup), write results")
    parser.add_argument("--warmup", type=int, default=5,
                        help="frames run before timing starts in benchmark mode (default: 5)")
    parser.add_argument("--out", help="folder for benchmark.json and benchmark_frames.csv "
                                      "(default in benchmark mode: reports/pi-bench, with "
                                      "--soak: reports/pi-soak)")
    parser.add_argument("--loop", action="store_true",
                        help="restart a video file or folder at its end")
    parser.add_argument("--compare-fer", action="store_true",
                        help="benchmark mode: also run the fer pipeline and report the ratio")
    parser.add_argument("--width", type=int, default=640, help="camera width (default 640)")
    parser.add_argument("--height", type=int, default=480, help="camera height (default 480)")
    parser.add_argument("--retries", type=int, default=5,
                        help="camera reconnect attempts before giving up (default: 5)")
    parser.add_argument("--fps-limit", type=float, metavar="FPS",
                        help="process at most FPS frames a second (also the frame interval "
                             "the detection skipping keeps to)")
    parser.add_argument("--realtime", action="store_true",
                        help="play a video file at its own frame rate, as a camera would")
    parser.add_argument("--detect-every", type=_detect_every, default=None, metavar="auto|K",
                        help="detect faces on every K-th frame and track them in between; "
                             "'auto' (default) picks K from the measured stage times when a "
                             "frame interval is known (camera, --realtime, --fps-limit; not "
                             "in benchmark mode)")
    parser.add_argument("--max-detect-every", type=int, default=DEFAULT_MAX_DETECT_EVERY,
                        help=f"the largest K 'auto' picks (default: {DEFAULT_MAX_DETECT_EVERY})")
    parser.add_argument("--simulate-load", type=float, default=0.0, metavar="MS",
                        help="add MS of sleep to every detection (try the frame skipping)")
    parser.add_argument("--soak", type=float, metavar="SECONDS",
                        help="soak test: run the looped source for SECONDS, sample memory, "
                             "file descriptors, threads and log size, write soak.json/.png")
    parser.add_argument("--soak-interval", type=float, default=5.0, metavar="S",
                        help="seconds between soak samples (default: 5)")
    parser.add_argument("--soak-warmup", type=float, metavar="S",
                        help="seconds left out of the soak's fit (default: a quarter of the "
                             "run, 10 to 300 s)")
    parser.add_argument("--soak-max-slope", type=float, default=50.0, metavar="BYTES",
                        help="the soak fails above this RSS growth per frame (default: 50)")
    parser.add_argument("--watch-model", type=float, default=2.0, metavar="SECONDS",
                        help="every SECONDS, check the model file and its card; a new model "
                             "is loaded (verified in a child process) and swapped in between "
                             "frames, a broken one refused (live.reload); 0: off, and off in "
                             "benchmark mode (default: 2)")
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors")
    add_serve_arguments(parser)  # --serve, --token, --max-clients: the live page (publisher.py)
    return parser


def build_pipeline(args: argparse.Namespace, kind: str | None = None):
    """Our pipeline or fer's, from parsed arguments."""
    if (kind or args.pipeline) == "fer":
        return FerRunnerPipeline(args.threads)
    detector = create_detector(args.detector, num_threads=args.threads,
                               min_score=args.min_score, model_path=args.detector_model)
    classifier = ExpressionClassifier(args.model or default_model(), args.card,
                                      num_threads=args.threads)
    tracker = None if args.no_smoothing else FaceTracker(
        alpha=args.alpha, hold=getattr(args, "hold", DEFAULT_HOLD))
    birth_score = None
    low = getattr(args, "track_min_score", None)
    if tracker is not None and low is not None and isinstance(detector, BlazeFaceDetector) \
            and low < detector.min_score:
        birth_score, detector.min_score = detector.min_score, low
    return Pipeline(detector, classifier, tracker,
                    simulate_load_ms=getattr(args, "simulate_load", 0.0) or 0.0,
                    birth_score=birth_score)


class _Display:
    """cv2.imshow with a clear error when OpenCV has no GUI (the -headless wheel)."""

    def __init__(self) -> None:
        self.window = "face_sentiment"

    def show(self, image: np.ndarray) -> bool:
        """Show a frame; False when the user pressed q or Esc."""
        try:
            cv2.imshow(self.window, image)
            key = cv2.waitKey(1) & 0xFF
        except cv2.error as error:
            raise RuntimeError(
                "--show needs OpenCV with GUI support and a display: on the Pi use Debian's "
                "python3-opencv or `pip install opencv-python` (not -headless), and run it on "
                f"the desktop or with DISPLAY set. ({error.err})") from error
        return key not in (ord("q"), 27)

    def close(self) -> None:
        try:
            cv2.destroyAllWindows()
        except cv2.error:
            pass


MAX_FAILED_FRAMES_IN_ROW = 100


def _change_key(results: list[FaceResult]) -> tuple:
    return tuple(sorted((r.track_id if r.track_id is not None else -1, r.label_index)
                        for r in results))


def run_loop(pipeline, source: FrameSource, *, max_frames: int | None = None, warmup: int = 0,
             show: bool = False, log_stream: TextIO | ResultsLog | None = None,
             video_path: str | None = None, draw: bool = True,
             scheduler: DetectionScheduler | None = None, fps_limit: float | None = None,
             duration_s: float | None = None, soak: SoakMonitor | None = None,
             notifier: SystemdNotifier | None = None, stop: StopRequest | None = None,
             frames_csv: str | Path | None = None, live=None,
             watcher: ModelWatcher | None = None) -> tuple[Benchmark, dict]:
    """Run frames through `pipeline`; return the benchmark and run status (never raises on
    Ctrl-C, SIGTERM or a lost source: they end the run and are reported in the status).

    `log_stream`: a ResultsLog (or any text stream); `scheduler` picks the frames that run the
    detector; `fps_limit` paces the loop; `duration_s` ends it (monotonic clock); `soak`
    samples the process; `notifier` feeds systemd's watchdog; `stop` is the signal handler's
    flag; `frames_csv` streams the per-frame CSV there; `live` (publisher.LivePage, --serve)
    gets each annotated frame with its record; `watcher` (live.reload) hands over a newly
    deployed model, swapped in between two frames.
    """
    bench = Benchmark()
    if frames_csv is not None:
        bench.open_frames_csv(frames_csv)
    results_log = (None if log_stream is None else log_stream if hasattr(log_stream, "offer")
                   else StreamLog(log_stream))
    scheduler = scheduler or DetectionScheduler(None)
    can_skip = bool(getattr(pipeline, "can_skip_detection", False))
    pacer = Pacer(fps_limit) if fps_limit else None
    notifier = notifier or SystemdNotifier({})
    status = {"interrupted": False, "error": None, "stopped_by_user": False, "stop_signal": None,
              "ended_by": None, "frame_errors": 0, "frames_late": 0, "model_reloads": 0}
    display = _Display() if show else None
    writer = None
    counted = seen = failed_in_row = 0
    frames = iter(source)
    deadline = None if duration_s is None else time.monotonic() + duration_s

    def wait(seconds: float) -> None:
        end = time.monotonic() + seconds
        while (remaining := end - time.monotonic()) > 0 and not (stop and stop.requested):
            time.sleep(min(remaining, 0.5))
            notifier.watchdog()

    def describe_progress() -> str:
        return (f"{counted} frames, {bench.faces_total} faces, detecting every "
                f"{scheduler.k} frame(s)")

    if stop is not None:
        stop.immediate = False
    bench.start()
    if pacer is not None:
        pacer.start()
    notifier.ready(f"running on {source.name}")
    notifier.watchdog(force=True)
    try:
        while max_frames is None or counted < max_frames:
            if stop is not None and stop.requested:
                status.update(interrupted=True, stop_signal=stop.signal_name)
                log.warning("%s: writing the summary of %d frames", stop.signal_name, counted)
                break
            if deadline is not None and time.monotonic() >= deadline:
                status["ended_by"] = "duration"
                break
            if watcher is not None and (fresh := watcher.poll()) is not None:
                previous = pipeline.model_id
                pipeline.swap_classifier(fresh)
                status["model_reloads"] += 1
                log.warning("model reloaded between frames: %s -> %s", previous,
                            pipeline.model_id)
            started = time.perf_counter()
            with bench.stage("capture"):
                frame = next(frames, None)
            if frame is None:
                status["ended_by"] = "end of source"
                break
            if frame.restarted and hasattr(pipeline, "restart"):
                pipeline.restart()  # a looped file began again: a scene cut
            detect = not can_skip or frame.restarted or scheduler.should_detect()
            try:
                results = pipeline.process(frame.image, bench, detect=detect)
                failed_in_row = 0
            except Exception as error:  # noqa: BLE001 - one bad frame must not end a long run
                status["frame_errors"] += 1
                failed_in_row += 1
                if status["frame_errors"] <= 5 or status["frame_errors"] % 1000 == 0:
                    log.exception("frame %d failed (%d so far): %s", frame.index,
                                  status["frame_errors"], error)
                if failed_in_row >= MAX_FAILED_FRAMES_IN_ROW:
                    status["error"] = (f"{failed_in_row} frames in a row failed; last: "
                                       f"{type(error).__name__}: {error}")
                    log.error("%s", status["error"])
                    break
                bench.discard_frame()
                continue
            with bench.stage("draw"):
                if draw or display or video_path:
                    draw_overlay(frame.image, results, pipeline.classes)
                if display is not None and not display.show(frame.image):
                    status["stopped_by_user"] = True
            if video_path:
                if writer is None:
                    height, width = frame.image.shape[:2]
                    writer = cv2.VideoWriter(video_path, cv2.VideoWriter_fourcc(*"MJPG"), 30.0,
                                             (width, height))
                writer.write(frame.image)
            seen += 1
            detect_ms = bench.current_ms("detect")
            capture_ms = bench.current_ms("capture")
            if seen <= warmup:  # warm-up frames: run, but time nothing
                bench.discard_frame()
                if seen == warmup:
                    bench.start()
            else:
                bench.end_frame(frame.index, sum(not r.held for r in results))
                counted += 1
                record = None if results_log is None and live is None else frame_record(
                    frame.index, frame.time, frame.origin, results, pipeline.classes,
                    getattr(pipeline, "model_id", None), detected=detect,
                    detect_every=scheduler.k)
                if results_log is not None:
                    results_log.offer(record, _change_key(results))
                if live is not None:  # --serve: the live page; never waits for a viewer
                    live.publish(frame.image, record, bench)
            work_ms = (time.perf_counter() - started) * 1000.0
            if source.live:  # a camera's capture time is mostly waiting for the sensor
                work_ms -= capture_ms
            scheduler.observe(detect, detect_ms, work_ms)
            notifier.watchdog()
            notifier.status(describe_progress)
            if soak is not None:
                soak.maybe_sample(counted)
            if status["stopped_by_user"]:
                break
            if pacer is not None:
                wait(pacer.delay())
        else:
            status["ended_by"] = "frames"
    except KeyboardInterrupt:
        status.update(interrupted=True,
                      stop_signal=(stop.signal_name if stop is not None else None) or "SIGINT")
        log.warning("interrupted: writing the summary of %d frames", counted)
    except SourceError as error:
        status["error"] = str(error)
        log.error("%s", error)
    except BaseException:
        bench.discard_frames_csv()
        raise
    finally:
        if writer is not None:
            writer.release()
        if display is not None:
            display.close()
    if soak is not None:
        soak.maybe_sample(counted, force=True)
    if status["stopped_by_user"]:
        status["ended_by"] = "user"
    elif status["interrupted"]:
        status["ended_by"] = "signal"
    elif status["error"]:
        status["ended_by"] = "error"
    status.update(corrupt_frames_skipped=source.skipped, reconnects=source.reconnects,
                  source=source.name, frames_late=pacer.late if pacer else 0)
    return bench, status


def _open(args: argparse.Namespace, notifier: SystemdNotifier | None = None,
          stop: StopRequest | None = None) -> FrameSource:
    def backoff(seconds: float) -> None:  # camera reconnects: keep the watchdog fed
        end = time.monotonic() + seconds
        while (remaining := end - time.monotonic()) > 0:
            if stop is not None and stop.requested:
                raise KeyboardInterrupt(stop.signal_name)
            time.sleep(min(remaining, 0.5))
            if notifier is not None:
                notifier.watchdog()

    # The loop is done with a frame before it reads the next: decode into one buffer.
    return open_source(args.source, loop=args.loop, width=args.width, height=args.height,
                       retries=args.retries, sleep=backoff, reuse_buffers=True)


def _frame_interval_ms(args: argparse.Namespace, source: FrameSource) -> tuple[float | None,
                                                                               float | None]:
    """(pacing FPS, frame interval in ms) for this source and these options."""
    if args.fps_limit:
        return args.fps_limit, 1000.0 / args.fps_limit
    if args.realtime and not source.live:
        fps = source.fps or CAMERA_FPS_FALLBACK
        return fps, 1000.0 / fps
    if source.live:
        return None, 1000.0 / (source.fps or CAMERA_FPS_FALLBACK)
    return None, None


def _run_one(args: argparse.Namespace, pipeline, out: Path | None, stem: str,
             log_stream: TextIO | ResultsLog | None, max_frames: int | None, warmup: int,
             stop: StopRequest | None = None, notifier: SystemdNotifier | None = None) -> dict:
    benchmark = args.benchmark is not None
    soaking = getattr(args, "soak", None) is not None
    monitor = None
    with _open(args, notifier, stop) as source:
        fps_limit, interval_ms = _frame_interval_ms(args, source)
        fixed = args.detect_every
        if benchmark and fixed is None:
            interval_ms = None  # benchmarks time the whole pipeline on every frame
        if fixed is None and interval_ms and not getattr(pipeline, "can_skip_detection", False):
            log.info("no tracker (--no-smoothing or fer): detecting on every frame")
            interval_ms = None
        scheduler = DetectionScheduler(interval_ms, fixed=fixed,
                                       max_every=args.max_detect_every)
        if soaking:
            monitor = SoakMonitor(
                args.soak, interval_s=args.soak_interval, warmup_s=args.soak_warmup,
                max_slope_bytes_per_frame=args.soak_max_slope,
                log_cap_bytes=getattr(log_stream, "cap_bytes", None),
                log_size=getattr(log_stream, "disk_bytes", None))
        frames_csv = out / f"{stem}_frames.csv" if out is not None and benchmark else None
        watcher = None
        if getattr(args, "watch_model", 0) and not benchmark and isinstance(pipeline, Pipeline):
            watcher = ModelWatcher(args.model, args.card, args.threads, args.watch_model,
                                   pipeline.model_id)
        # Energy of a benchmark (face_sentiment.energy: PMIC on a Pi 5, RAPL, codecarbon...).
        meter = EnergyMeter(f"pi {stem}", codecarbon_interval_s=1.0).start() \
            if benchmark else None
        try:
            bench, status = run_loop(pipeline, source, max_frames=max_frames, warmup=warmup,
                                     show=args.show, log_stream=log_stream,
                                     video_path=args.output_video if stem == "benchmark"
                                     else None, scheduler=scheduler, fps_limit=fps_limit,
                                     duration_s=args.soak if soaking else None, soak=monitor,
                                     notifier=notifier, stop=stop, frames_csv=frames_csv,
                                     live=getattr(args, "live_page", None), watcher=watcher)
        except BaseException:
            if meter is not None:
                meter.stop()
            raise
        finally:
            if watcher is not None:
                watcher.close()
        if watcher is not None:
            status["models_refused"] = watcher.refused
    _, backend = interpreter_class()
    log_stats = log_stream.stats() if hasattr(log_stream, "stats") else None
    soak_report = None
    if monitor is not None:
        soak_report = monitor.report()
        soak_report["run"] = {"source": source.name, "fps_limit": fps_limit,
                              "threads": args.threads, "model": str(args.model),
                              "log": log_stats}
    summary = bench.summary(**pipeline.describe(), **status, threads=args.threads,
                            interpreter=backend, warmup_frames=warmup,
                            requested_frames=max_frames, fps_limit=fps_limit,
                            detection=scheduler.summary(), log=log_stats,
                            soak=None if soak_report is None else
                            {k: v for k, v in soak_report.items() if k != "series"})
    if meter is not None:  # stopped after the summary: its own cost stays out of wall_s
        # per frame and face: mean power x the timed frames' wall time
        energy = per_unit(meter.stop(), summary["frames"], "frame", seconds=summary["wall_s"])
        summary["energy"] = per_unit(energy, summary["faces"]["total"], "face",
                                     seconds=summary["wall_s"])
    if out is not None:
        json_path, csv_path = bench.write(out, summary, stem)
        log.info("wrote %s%s", json_path, f" and {csv_path}" if csv_path else "")
        if soak_report is not None:
            written = monitor.write(out, soak_report)
            log.info("wrote %s", ", ".join(map(str, written)))
            if not any(p.suffix == ".png" for p in written):
                print("matplotlib is not installed: skipped the soak plot (soak.json has the "
                      "samples)")
    else:
        bench.discard_frames_csv()
    return summary


def _format_soak(report: dict) -> str:
    after = report.get("after_warmup") or {}
    verdict = "passed" if report["passed"] else "FAILED: " + "; ".join(report["failures"])
    log_info = report.get("log") or {}
    return (f"soak: {report.get('frames')} frames in {report['duration_s']:g} s; after the "
            f"{report['warmup_s']:g} s warm-up RSS {after.get('rss_mb_start')} -> "
            f"{after.get('rss_mb_end')} MB over {after.get('frames')} frames, slope "
            f"{report['rss_slope_bytes_per_frame']} B/frame "
            f"({report['rss_slope_mb_per_hour']} MB/h); log max {log_info.get('max_bytes_seen')}"
            f" bytes (cap {log_info.get('cap_bytes')}): {verdict}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stop = StopRequest()
    # systemd stops services with SIGTERM: end like Ctrl-C so the summary is still written.
    # Installing a handler for SIGINT too restores Ctrl-C in a shell script's background job
    # (`run.py &` starts with SIGINT ignored, and Python then installs no handler).
    previous = {number: signal.signal(number, stop) for number in (signal.SIGTERM,
                                                                  signal.SIGINT)}
    try:
        return _main(args, stop)
    except KeyboardInterrupt:
        print(f"interrupted ({stop.signal_name or 'SIGINT'}) before the run started",
              file=sys.stderr)
        return 130
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _main(args: argparse.Namespace, stop: StopRequest) -> int:
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    if args.quiet:  # also the TFLite runtime's C++ start-up line (live.interpreter)
        os.environ[QUIET_ENV] = "1"
    args.model = args.model or str(default_model())
    problem = None
    if args.threads < 1:
        problem = "--threads must be at least 1"
    elif args.benchmark is not None and args.benchmark < 1:
        problem = "--benchmark needs a positive number of frames"
    elif args.soak is not None and args.soak <= 0:
        problem = "--soak needs a positive number of seconds"
    elif args.soak is not None and args.benchmark is not None:
        problem = "--soak and --benchmark are separate modes: use one"
    elif args.fps_limit is not None and args.fps_limit < 0:
        problem = "--fps-limit must be positive"
    elif args.soak_interval <= 0:
        problem = "--soak-interval must be positive"
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.fps_limit == 0:
        args.fps_limit = None  # 0: no limit (make's default)
    cv2.setNumThreads(args.threads)
    benchmark = args.benchmark is not None
    soaking = args.soak is not None
    if soaking:
        args.loop = True
    default_out = "reports/pi-bench" if benchmark else "reports/pi-soak" if soaking else None
    out = Path(args.out) if args.out else (Path(default_out) if default_out else None)
    max_frames = args.benchmark if benchmark else args.max_frames
    warmup = args.warmup if benchmark else 0
    results_log = None
    notifier = SystemdNotifier()
    try:
        pipeline = build_pipeline(args)
        args.live_page = start_live_page(args, pipeline)  # --serve; None without it
        if args.log:
            results_log = ResultsLog(args.log, max_bytes=int(args.log_max_mb * 2**20),
                                     keep=args.log_keep, compress=args.log_compress,
                                     every=args.log_every, on_change=args.log_on_change)
        summary = _run_one(args, pipeline, out, "benchmark", results_log, max_frames, warmup,
                           stop=stop, notifier=notifier)
        print(format_summary(summary))
        if benchmark:
            print(f"  {describe_energy(summary.get('energy'))}")
        if summary.get("soak"):
            print(_format_soak(summary["soak"]))
        if benchmark and args.compare_fer and not summary["interrupted"]:
            fer_summary = _run_one(args, build_pipeline(args, "fer"), out, "fer_benchmark",
                                   None, max_frames, warmup, stop=stop, notifier=notifier)
            print(format_summary(fer_summary))
            print(f"  {describe_energy(fer_summary.get('energy'))}")
            comparison = compare(summary, fer_summary)
            if out is not None:
                write_atomic(out / "comparison.json", json.dumps(comparison, indent=2) + "\n")
            print(f"speed-up over fer: {comparison['fps_ratio']}x end-to-end FPS "
                  f"({summary['fps_end_to_end']} vs {fer_summary['fps_end_to_end']} FPS); "
                  f"{comparison['cpu_cost_ratio']}x less CPU time per frame "
                  f"({summary['cpu_ms_per_frame']} vs {fer_summary['cpu_ms_per_frame']} ms)")
    except (ModelFileError, SourceError, FileNotFoundError, ValueError, ImportError,
            RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        notifier.stopping()
        notifier.close()
        if getattr(args, "live_page", None) is not None:
            args.live_page.close()
        if results_log is not None:
            results_log.close()
    if summary["error"]:
        return 1
    if summary["interrupted"]:
        return 130
    if summary.get("soak") and not summary["soak"]["passed"]:
        return 1
    return 0


def compare(ours: dict, fer: dict) -> dict:
    """Speed ratio of two benchmark summaries (ours / fer) and their per-stage p50s."""
    def ratio(a, b):
        return round(a / b, 2) if a and b else None
    return {
        "fps": {"ours": ours["fps_end_to_end"], "fer": fer["fps_end_to_end"]},
        "fps_ratio": ratio(ours["fps_end_to_end"], fer["fps_end_to_end"]),
        # CPU time per frame: the cost ratio, unaffected by other load on the machine.
        "cpu_ms_per_frame": {"ours": ours["cpu_ms_per_frame"], "fer": fer["cpu_ms_per_frame"]},
        "cpu_cost_ratio": ratio(fer["cpu_ms_per_frame"], ours["cpu_ms_per_frame"]),
        "p50_total_ms": {"ours": ours["stages_ms"]["total"]["p50"],
                         "fer": fer["stages_ms"]["total"]["p50"]},
        "faces_per_frame": {"ours": ours["faces"]["mean_per_frame"],
                            "fer": fer["faces"]["mean_per_frame"]},
        "stages_p50_ms": {stage: {"ours": ours["stages_ms"][stage]["p50"],
                                  "fer": fer["stages_ms"][stage]["p50"]}
                          for stage in ours["stages_ms"]},
        "energy_j_per_frame": {name: (summary.get("energy") or {}).get("joules_per_frame")
                               for name, summary in (("ours", ours), ("fer", fer))},
        "frames": ours["frames"],
        "threads": ours.get("threads"),
        "timestamp": time.time(),
    }


if __name__ == "__main__":
    raise SystemExit(main())
