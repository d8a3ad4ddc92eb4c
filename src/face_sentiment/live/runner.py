"""The Pi runner: camera -> face detection -> alignment -> TFLite expression model -> overlay.

`python pi/run.py --source {0|picam|clip.mp4|folder/} --model models/face_sentiment_int8.tflite`
shows or logs, per frame, every face with its box, label and confidence. Labels are smoothed
per face (IoU tracking + exponential moving average) so they do not flicker; the raw and
smoothed probabilities of every face go to a JSON-lines log for drift monitoring.
`--benchmark N --out DIR` times each stage (capture, detect, align, classify, draw) over N
frames and writes a JSON summary and a per-frame CSV; `--compare-fer` then runs the `fer`
package's pipeline on the same frames for a speed ratio. Ctrl-C stops cleanly and still writes
the summary. Imports numpy, OpenCV and a TFLite interpreter only (never TensorFlow), so it runs
on Raspberry Pi OS with tflite-runtime or ai-edge-litert.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np

from face_sentiment.live.benchmark import Benchmark, format_summary
from face_sentiment.live.classifier import ExpressionClassifier
from face_sentiment.live.faces import (
    DEFAULT_DETECTOR,
    DETECTORS,
    FaceDetector,
    align_faces,
    create_detector,
)
from face_sentiment.live.frame_sources import FrameSource, SourceError, open_source
from face_sentiment.live.interpreter import ModelFileError, interpreter_class
from face_sentiment.live.tracking import FaceTracker
from face_sentiment.paths import write_atomic

log = logging.getLogger("face_sentiment.live.runner")

DEFAULT_MODEL = "models/face_sentiment_int8.tflite"
# BGR colours per FER2013 class name; unknown names get grey.
COLOURS = {"angry": (40, 40, 220), "disgust": (40, 140, 40), "fear": (160, 60, 160),
           "happy": (40, 200, 240), "sad": (200, 120, 40), "surprise": (240, 200, 40),
           "neutral": (200, 200, 200), "contempt": (120, 120, 40)}


@dataclass
class FaceResult:
    """One classified face of one frame."""

    box: tuple[float, float, float, float]
    score: float
    probabilities: np.ndarray
    smoothed: np.ndarray
    track_id: int | None = None

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
        }


class Pipeline:
    """Ours: detector -> align every face -> one batched classification -> tracker smoothing."""

    name = "ours"

    def __init__(self, detector: FaceDetector, classifier: ExpressionClassifier,
                 tracker: FaceTracker | None = None) -> None:
        self.detector, self.classifier, self.tracker = detector, classifier, tracker
        self.classes = classifier.classes
        self.size = classifier.card.preprocessing.size

    def process(self, image: np.ndarray, bench: Benchmark) -> list[FaceResult]:
        with bench.stage("detect"):
            faces = self.detector.detect(image)
        with bench.stage("align"):
            crops = align_faces(image, faces, self.size)
        with bench.stage("classify"):
            probabilities = self.classifier.predict(crops)
            tracks = (self.tracker.update(np.array([f.box for f in faces]).reshape(-1, 4),
                                          probabilities) if self.tracker else None)
        results = []
        for i, face in enumerate(faces):
            smoothed = tracks[i].probabilities if tracks else probabilities[i]
            results.append(FaceResult(face.box, face.score, probabilities[i], smoothed,
                                      tracks[i].track_id if tracks else None))
        return results

    def describe(self) -> dict:
        return {"pipeline": self.name, "detector": self.detector.name,
                "model": str(self.classifier.model_path),
                "model_input_dtype": self.classifier.input_dtype,
                "batched": self.classifier.dynamic_batch,
                "classes": list(self.classes),
                "preprocessing": self.classifier.card.preprocessing.to_dict(),
                "smoothing": None if self.tracker is None else {
                    "iou_threshold": self.tracker.iou_threshold, "alpha": self.tracker.alpha,
                    "max_missed": self.tracker.max_missed}}


class FerRunnerPipeline:
    """The fer package's pipeline behind the same interface, for like-for-like timing."""

    name = "fer"

    def __init__(self, num_threads: int = 1) -> None:
        from face_sentiment.live.fer_baseline import FerPipeline
        self.fer = FerPipeline(num_threads=num_threads)
        self.classes = self.fer.classes

    def process(self, image: np.ndarray, bench: Benchmark) -> list[FaceResult]:
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
    """Draw box, label and confidence of every face on `image` (in place) and return it."""
    for result in results:
        x1, y1, x2, y2 = (int(round(v)) for v in result.box)
        label = classes[result.label_index]
        colour = COLOURS.get(label, (160, 160, 160))
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, 2)
        text = f"{label} {result.smoothed[result.label_index]:.2f}"
        (tw, th), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        top = max(0, y1 - th - baseline - 4)
        cv2.rectangle(image, (x1, top), (x1 + tw + 4, top + th + baseline + 4), colour, -1)
        cv2.putText(image, text, (x1 + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (0, 0, 0), 1, cv2.LINE_AA)
    return image


def frame_record(frame_index: int, timestamp: float, origin: str, results: list[FaceResult],
                 classes: tuple[str, ...]) -> dict:
    """One JSON-lines log record."""
    return {"frame": frame_index, "time": round(timestamp, 3), "source": origin,
            "faces": [r.to_dict(classes) for r in results]}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pi/run.py", description="Live facial expression recognition and benchmarks.")
    parser.add_argument("--source", default="0",
                        help="camera index (0), /dev/videoN, 'picam', a video file, an image "
                             "folder, or 'demo' (synthetic clip) (default: 0)")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"TFLite expression model (default: {DEFAULT_MODEL})")
    parser.add_argument("--card", help="model card JSON (default: model_card.json beside it)")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, choices=DETECTORS,
                        help=f"face detector (default: {DEFAULT_DETECTOR})")
    parser.add_argument("--detector-model", help="override the detector's model/cascade file")
    parser.add_argument("--min-score", type=float, help="detector score threshold")
    parser.add_argument("--pipeline", default="ours", choices=("ours", "fer"),
                        help="'fer' runs the fer package's pipeline instead (baseline)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for TFLite and OpenCV (default: 1)")
    parser.add_argument("--show", action="store_true", help="show a window (q or Esc quits)")
    parser.add_argument("--log", help="write per-frame results as JSON lines to this file")
    parser.add_argument("--output-video", help="write the annotated frames to this video")
    parser.add_argument("--no-smoothing", action="store_true",
                        help="label each frame on its own (no tracking/EMA)")
    parser.add_argument("--alpha", type=float, default=0.4,
                        help="EMA weight of the newest frame (default: 0.4)")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames")
    parser.add_argument("--benchmark", type=int, metavar="N",
                        help="benchmark mode: time N frames (after --warmup), write results")
    parser.add_argument("--warmup", type=int, default=5,
                        help="frames run before timing starts in benchmark mode (default: 5)")
    parser.add_argument("--out", help="folder for benchmark.json and benchmark_frames.csv "
                                      "(default in benchmark mode: reports/pi-bench)")
    parser.add_argument("--loop", action="store_true",
                        help="restart a video file or folder at its end")
    parser.add_argument("--compare-fer", action="store_true",
                        help="benchmark mode: also run the fer pipeline and report the ratio")
    parser.add_argument("--width", type=int, default=640, help="camera width (default 640)")
    parser.add_argument("--height", type=int, default=480, help="camera height (default 480)")
    parser.add_argument("--retries", type=int, default=5,
                        help="camera reconnect attempts before giving up (default: 5)")
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors")
    return parser


def build_pipeline(args: argparse.Namespace, kind: str | None = None):
    """Our pipeline or fer's, from parsed arguments."""
    if (kind or args.pipeline) == "fer":
        return FerRunnerPipeline(args.threads)
    detector = create_detector(args.detector, num_threads=args.threads,
                               min_score=args.min_score, model_path=args.detector_model)
    classifier = ExpressionClassifier(args.model, args.card, num_threads=args.threads)
    tracker = None if args.no_smoothing else FaceTracker(alpha=args.alpha)
    return Pipeline(detector, classifier, tracker)


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


def run_loop(pipeline, source: FrameSource, *, max_frames: int | None = None, warmup: int = 0,
             show: bool = False, log_stream: TextIO | None = None,
             video_path: str | None = None, draw: bool = True) -> tuple[Benchmark, dict]:
    """Run frames through `pipeline`; return the benchmark and run status (never raises on
    Ctrl-C or a lost source: they end the run and are reported in the status)."""
    bench = Benchmark()
    status = {"interrupted": False, "error": None, "stopped_by_user": False}
    display = _Display() if show else None
    writer = None
    counted = 0
    seen = 0
    frames = iter(source)
    bench.start()
    try:
        while max_frames is None or counted < max_frames:
            with bench.stage("capture"):
                frame = next(frames, None)
            if frame is None:
                break
            results = pipeline.process(frame.image, bench)
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
            if seen <= warmup:  # warm-up frames: run, but time nothing
                bench.discard_frame()
                if seen == warmup:
                    bench.start()
                continue
            bench.end_frame(frame.index, len(results))
            counted += 1
            if log_stream is not None:
                log_stream.write(json.dumps(frame_record(frame.index, frame.time, frame.origin,
                                                         results, pipeline.classes)) + "\n")
                log_stream.flush()
            if status["stopped_by_user"]:
                break
    except KeyboardInterrupt:
        status["interrupted"] = True
        log.warning("interrupted: writing the summary of %d frames", counted)
    except SourceError as error:
        status["error"] = str(error)
        log.error("%s", error)
    finally:
        if writer is not None:
            writer.release()
        if display is not None:
            display.close()
    status.update(corrupt_frames_skipped=source.skipped, reconnects=source.reconnects,
                  source=source.name)
    return bench, status


def _open(args: argparse.Namespace) -> FrameSource:
    return open_source(args.source, loop=args.loop, width=args.width, height=args.height,
                       retries=args.retries)


def _run_one(args: argparse.Namespace, pipeline, out: Path | None, stem: str,
             log_stream: TextIO | None, max_frames: int | None, warmup: int) -> dict:
    with _open(args) as source:
        bench, status = run_loop(pipeline, source, max_frames=max_frames, warmup=warmup,
                                 show=args.show, log_stream=log_stream,
                                 video_path=args.output_video if stem == "benchmark" else None)
    _, backend = interpreter_class()
    summary = bench.summary(**pipeline.describe(), **status, threads=args.threads,
                            interpreter=backend, warmup_frames=warmup,
                            requested_frames=max_frames)
    if out is not None:
        json_path, csv_path = bench.write(out, summary, stem)
        log.info("wrote %s and %s", json_path, csv_path)
    return summary


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # systemd stops services with SIGTERM: end like Ctrl-C so the summary is still written.
    signal.signal(signal.SIGTERM, _interrupt)
    # A shell script's background job (`run.py &`) starts with SIGINT ignored, and Python
    # then installs no handler: restore Ctrl-C so SIGINT also ends with the summary.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    if args.threads < 1:
        print("error: --threads must be at least 1", file=sys.stderr)
        return 2
    cv2.setNumThreads(args.threads)
    benchmark = args.benchmark is not None
    if benchmark and args.benchmark < 1:
        print("error: --benchmark needs a positive number of frames", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else (Path("reports/pi-bench") if benchmark else None)
    max_frames = args.benchmark if benchmark else args.max_frames
    warmup = args.warmup if benchmark else 0
    log_stream = None
    try:
        pipeline = build_pipeline(args)
        if args.log:
            Path(args.log).parent.mkdir(parents=True, exist_ok=True)
            log_stream = open(args.log, "a", encoding="utf-8")  # noqa: SIM115 - closed below
        summary = _run_one(args, pipeline, out, "benchmark", log_stream, max_frames, warmup)
        print(format_summary(summary))
        if benchmark and args.compare_fer and not summary["interrupted"]:
            fer_summary = _run_one(args, build_pipeline(args, "fer"), out, "fer_benchmark",
                                   None, max_frames, warmup)
            print(format_summary(fer_summary))
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
        if log_stream is not None:
            log_stream.close()
    if summary["error"]:
        return 1
    return 130 if summary["interrupted"] else 0


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
        "frames": ours["frames"],
        "threads": ours.get("threads"),
        "timestamp": time.time(),
    }


if __name__ == "__main__":
    raise SystemExit(main())
