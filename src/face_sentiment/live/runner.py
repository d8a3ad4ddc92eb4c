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

This module is the command line (options, the runs they ask for, their summaries); what a
frame goes through is live.frame_pipeline, the frame loop live.loop (`RunnerLoop`,
`RunnerOptions`, `RunnerStatus`). Their names are importable from here too, as before.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TextIO

import cv2

from face_sentiment.energy import EnergyMeter, per_unit
from face_sentiment.energy import describe as describe_energy
from face_sentiment.live.benchmark import Benchmark, SoakMonitor, format_summary
from face_sentiment.live.classifier import ExpressionClassifier
from face_sentiment.live.faces import (
    DEFAULT_DETECTOR,
    DETECTORS,
    BlazeFaceDetector,
    create_detector,
)
from face_sentiment.live.frame_pipeline import (
    COLOURS,
    FaceResult,
    FerRunnerPipeline,
    Pipeline,
    draw_overlay,
    frame_record,
)
from face_sentiment.live.frame_sources import FrameSource, SourceError, open_source
from face_sentiment.live.interpreter import QUIET_ENV, ModelFileError, interpreter_class
from face_sentiment.live.loop import (
    MAX_FAILED_FRAMES_IN_ROW,
    RunnerLoop,
    RunnerOptions,
    RunnerStatus,
    run_loop,
)
from face_sentiment.live.publisher import add_serve_arguments, start_live_page
from face_sentiment.live.reload import ModelWatcher
from face_sentiment.live.results_log import (
    DEFAULT_LOG_KEEP,
    DEFAULT_LOG_MAX_MB,
    ResultsLog,
)
from face_sentiment.live.scheduling import DEFAULT_MAX_DETECT_EVERY, DetectionScheduler
from face_sentiment.live.service import StopRequest, SystemdNotifier
from face_sentiment.live.tracking import DEFAULT_HOLD, FaceTracker
from face_sentiment.model_card import PACKAGED_MODELS, SHIPPED_MODEL
from face_sentiment.model_of_record import registry_current
from face_sentiment.paths import write_atomic

# Names other modules, pi/ scripts and tests import from here (they moved to frame_pipeline and
# loop, or are the runner's building blocks).
__all__ = [
    "CAMERA_FPS_FALLBACK", "COLOURS", "MAX_FAILED_FRAMES_IN_ROW",
    "TRACK_MIN_SCORE", "DetectionScheduler", "FaceResult", "FerRunnerPipeline", "Pipeline",
    "ResultsLog", "RunnerLoop", "RunnerOptions", "RunnerStatus", "SystemdNotifier",
    "build_parser", "build_pipeline", "compare", "default_model", "draw_overlay",
    "frame_record", "main", "run_loop",
]

log = logging.getLogger("face_sentiment.live.runner")

# BlazeFace full-range on the shared party video (pi/tools/face_video_01_faces.json): at its own
# 0.5 threshold it boxes the side-on man with a phone in 32% of frames and the man in the turban
# in 72%; kept down to 0.4 where they continue a track, 88% and 97% (README, "Detection").
TRACK_MIN_SCORE = 0.4
CAMERA_FPS_FALLBACK = 30.0


def default_model() -> Path:
    """The model of record's int8 model (face_sentiment.model_of_record): the registry's
    current version; before the registry is seeded, models/ of the checkout or image that
    holds src/face_sentiment/ (found from this file rather than the current folder: pi/run.py
    started elsewhere, a service's WorkingDirectory), else the copy an installed wheel
    carries."""
    record = registry_current()
    if record is not None:
        return record / SHIPPED_MODEL
    checkout = Path(__file__).resolve().parents[3] / "models" / SHIPPED_MODEL
    packaged = PACKAGED_MODELS / SHIPPED_MODEL
    return packaged if not checkout.is_file() and packaged.is_file() else checkout


# ------------------------------------------------------------------------------------------
# The command line


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
    # In --help order: each helper adds one run of options.
    _add_model_arguments(parser)
    _add_output_arguments(parser)
    _add_smoothing_arguments(parser)
    _add_run_arguments(parser)
    _add_capture_arguments(parser)
    _add_soak_arguments(parser)
    parser.add_argument("--watch-model", type=float, default=2.0, metavar="SECONDS",
                        help="every SECONDS, check the model file and its card; a new model "
                             "is loaded (verified in a child process) and swapped in between "
                             "frames, a broken one refused (live.reload); 0: off, and off in "
                             "benchmark mode (default: 2)")
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors")
    add_serve_arguments(parser)  # --serve, --token, --max-clients: the live page (publisher.py)
    return parser


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--source, --model and its card, the detector, --pipeline, --threads."""
    parser.add_argument("--source", default="0",
                        help="camera index (0), /dev/videoN, 'picam', a video file, an image "
                             "folder, or 'demo' (synthetic clip) (default: 0)")
    parser.add_argument("--model", default=None,
                        help="TFLite expression model (default: the model of record: the "
                             "registry's current version, deploy/registry or "
                             "$FACE_SENTIMENT_REGISTRY, else models/ of this checkout, "
                             "wherever it is started from; followed across promotions and "
                             "rollbacks while running)")
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


def _add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """--show, the JSON-lines log and its rotation, --output-video."""
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


def _add_smoothing_arguments(parser: argparse.ArgumentParser) -> None:
    """Tracking and smoothing: --no-smoothing, --alpha, --hold."""
    parser.add_argument("--no-smoothing", action="store_true",
                        help="label each frame on its own (no tracking/EMA)")
    parser.add_argument("--alpha", type=float, default=0.4,
                        help="EMA weight of the newest frame (default: 0.4)")
    parser.add_argument("--hold", type=int, default=DEFAULT_HOLD, metavar="N",
                        help="show a face the detector missed at up to N detections in a row "
                             "at its last box, marked held; 0: only detected faces "
                             f"(default: {DEFAULT_HOLD})")


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """How long a run is and what it measures: --max-frames, --benchmark, --warmup, --out,
    --loop, --compare-fer."""
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


def _add_capture_arguments(parser: argparse.ArgumentParser) -> None:
    """The camera, pacing and detection skipping."""
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


def _add_soak_arguments(parser: argparse.ArgumentParser) -> None:
    """--soak and its sampling, warm-up and limit."""
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


# ------------------------------------------------------------------------------------------
# One run: the source, the loop and its summary


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
    """Run `pipeline` over the source once; its summary (written under `out` as `stem`.json,
    with the per-frame CSV, a benchmark's energy and a soak's report)."""
    benchmark = args.benchmark is not None
    soaking = getattr(args, "soak", None) is not None
    with _open(args, notifier, stop) as source:
        fps_limit, scheduler = _detection_scheduler(args, pipeline, source, benchmark)
        monitor = _soak_monitor(args, log_stream) if soaking else None
        options = RunnerOptions(
            # A negative --max-frames or --warmup was never refused: they run as 0 did.
            max_frames=None if max_frames is None else max(max_frames, 0),
            warmup=max(warmup, 0), show=args.show, log_stream=log_stream,
            video_path=args.output_video if stem == "benchmark" else None,
            scheduler=scheduler, fps_limit=fps_limit,
            duration_s=args.soak if soaking else None, soak=monitor, notifier=notifier,
            stop=stop, live=getattr(args, "live_page", None),
            frames_csv=out / f"{stem}_frames.csv" if out is not None and benchmark else None)
        bench, status, meter = _run_watched(args, pipeline, source, options, stem, benchmark)
    _, backend = interpreter_class()
    log_stats = log_stream.stats() if hasattr(log_stream, "stats") else None
    soak_report = None
    if monitor is not None:
        soak_report = monitor.report()
        soak_report["run"] = {"source": source.name, "fps_limit": fps_limit,
                              "threads": args.threads, "model": str(args.model),
                              "log": log_stats}
    summary = bench.summary(**pipeline.describe(), **status.as_dict(), threads=args.threads,
                            interpreter=backend, warmup_frames=warmup,
                            requested_frames=max_frames, fps_limit=fps_limit,
                            detection=scheduler.summary(), log=log_stats,
                            soak=None if soak_report is None else
                            {k: v for k, v in soak_report.items() if k != "series"})
    if meter is not None:  # stopped after the summary: its own cost stays out of wall_s
        # per frame and face: a CPU-time estimate from the timed frames' CPU seconds (a
        # power meter: its mean power x their wall time), so warm-up stays out of it
        cpu_ms = summary.get("cpu_ms_per_frame")
        cpu_s = None if cpu_ms is None else cpu_ms * summary["frames"] / 1000
        energy = per_unit(meter.stop(), summary["frames"], "frame", seconds=summary["wall_s"],
                          cpu_seconds=cpu_s)
        summary["energy"] = per_unit(energy, summary["faces"]["total"], "face",
                                     seconds=summary["wall_s"], cpu_seconds=cpu_s)
    _write_results(out, stem, bench, summary, monitor, soak_report)
    return summary


def _detection_scheduler(args: argparse.Namespace, pipeline, source: FrameSource,
                         benchmark: bool) -> tuple[float | None, DetectionScheduler]:
    """(pacing FPS, the scheduler that picks the frames the detector runs on)."""
    fps_limit, interval_ms = _frame_interval_ms(args, source)
    fixed = args.detect_every
    if benchmark and fixed is None:
        interval_ms = None  # benchmarks time the whole pipeline on every frame
    if fixed is None and interval_ms and not getattr(pipeline, "can_skip_detection", False):
        log.info("no tracker (--no-smoothing or fer): detecting on every frame")
        interval_ms = None
    return fps_limit, DetectionScheduler(interval_ms, fixed=fixed,
                                         max_every=args.max_detect_every)


def _soak_monitor(args: argparse.Namespace,
                  log_stream: TextIO | ResultsLog | None) -> SoakMonitor:
    return SoakMonitor(args.soak, interval_s=args.soak_interval, warmup_s=args.soak_warmup,
                       max_slope_bytes_per_frame=args.soak_max_slope,
                       log_cap_bytes=getattr(log_stream, "cap_bytes", None),
                       log_size=getattr(log_stream, "disk_bytes", None))


def _run_watched(args: argparse.Namespace, pipeline, source: FrameSource,
                 options: RunnerOptions, stem: str,
                 benchmark: bool) -> tuple[Benchmark, RunnerStatus, EnergyMeter | None]:
    """The loop, with the model watcher (--watch-model, not in benchmarks) and a benchmark's
    energy meter running; the meter is returned running, to be stopped after the summary."""
    watcher = None
    if getattr(args, "watch_model", 0) and not benchmark and isinstance(pipeline, Pipeline):
        watcher = ModelWatcher(args.model, args.card, args.threads, args.watch_model,
                               pipeline.model_id,
                               locate=default_model if getattr(args, "model_of_record", False)
                               else None)
    # Energy of a benchmark (face_sentiment.energy: PMIC on a Pi 5, RAPL, else an estimate
    # from CPU time).
    meter = EnergyMeter(f"pi {stem}", codecarbon_interval_s=1.0).start() if benchmark else None
    try:
        bench, status = RunnerLoop(pipeline, source, replace(options, watcher=watcher)).run()
    except BaseException:
        if meter is not None:
            meter.stop()
        raise
    finally:
        if watcher is not None:
            watcher.close()
    if watcher is not None:
        status.models_refused = watcher.refused
    return bench, status, meter


def _write_results(out: Path | None, stem: str, bench: Benchmark, summary: dict,
                   monitor: SoakMonitor | None, soak_report: dict | None) -> None:
    """`stem`.json and its CSV (and a soak's soak.json and plot) under `out`; with no `out`,
    the streamed CSV is dropped."""
    if out is None:
        bench.discard_frames_csv()
        return
    json_path, csv_path = bench.write(out, summary, stem)
    log.info("wrote %s%s", json_path, f" and {csv_path}" if csv_path else "")
    if soak_report is not None:
        written = monitor.write(out, soak_report)
        log.info("wrote %s", ", ".join(map(str, written)))
        if not any(p.suffix == ".png" for p in written):
            print("matplotlib is not installed: skipped the soak plot (soak.json has the "
                  "samples)")


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
    # A runner on the default model follows the model of record (live.reload re-locates it).
    args.model_of_record = args.model is None
    try:
        args.model = args.model or str(default_model())
    except ValueError as error:  # an unreadable registry pointer (model_of_record)
        print(f"error: {error}", file=sys.stderr)
        return 2
    problem = _option_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.fps_limit == 0:
        args.fps_limit = None  # 0: no limit (make's default)
    cv2.setNumThreads(args.threads)
    if args.soak is not None:
        args.loop = True
    results_log = None
    notifier = SystemdNotifier()
    try:
        pipeline = build_pipeline(args)
        args.live_page = start_live_page(args, pipeline)  # --serve; None without it
        if args.log:
            results_log = ResultsLog(args.log, max_bytes=int(args.log_max_mb * 2**20),
                                     keep=args.log_keep, compress=args.log_compress,
                                     every=args.log_every, on_change=args.log_on_change)
        summary = _run_and_print(args, pipeline, results_log, stop, notifier)
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
    return _exit_code(summary)


def _option_problem(args: argparse.Namespace) -> str | None:
    """The first option that is out of range, as the sentence to print; None when all fit."""
    checks = (
        (args.threads < 1, "--threads must be at least 1"),
        (args.benchmark is not None and args.benchmark < 1,
         "--benchmark needs a positive number of frames"),
        (args.soak is not None and args.soak <= 0, "--soak needs a positive number of seconds"),
        (args.soak is not None and args.benchmark is not None,
         "--soak and --benchmark are separate modes: use one"),
        (args.fps_limit is not None and args.fps_limit < 0, "--fps-limit must be positive"),
        (args.soak_interval <= 0, "--soak-interval must be positive"),
    )
    return next((problem for failed, problem in checks if failed), None)


def _run_and_print(args: argparse.Namespace, pipeline, results_log: ResultsLog | None,
                   stop: StopRequest, notifier: SystemdNotifier) -> dict:
    """The run asked for (with --compare-fer, then fer's on the same frames), its summary
    printed; returns our run's summary."""
    benchmark = args.benchmark is not None
    default_out = ("reports/pi-bench" if benchmark
                   else "reports/pi-soak" if args.soak is not None else None)
    out = Path(args.out) if args.out else (Path(default_out) if default_out else None)
    max_frames = args.benchmark if benchmark else args.max_frames
    warmup = args.warmup if benchmark else 0
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
        _print_comparison(summary, fer_summary, out)
    return summary


def _print_comparison(ours: dict, fer: dict, out: Path | None) -> None:
    """fer's summary and the speed-up over it (written to comparison.json under `out`)."""
    print(format_summary(fer))
    print(f"  {describe_energy(fer.get('energy'))}")
    comparison = compare(ours, fer)
    if out is not None:
        write_atomic(out / "comparison.json", json.dumps(comparison, indent=2) + "\n")
    print(f"speed-up over fer: {comparison['fps_ratio']}x end-to-end FPS "
          f"({ours['fps_end_to_end']} vs {fer['fps_end_to_end']} FPS); "
          f"{comparison['cpu_cost_ratio']}x less CPU time per frame "
          f"({ours['cpu_ms_per_frame']} vs {fer['cpu_ms_per_frame']} ms)")


def _exit_code(summary: dict) -> int:
    """1: an error or a failed soak; 130: interrupted (as a shell reports Ctrl-C); else 0."""
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
