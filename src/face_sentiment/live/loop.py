"""The runner's frame loop: capture -> pipeline -> overlay -> log and live page, paced and watched.

`RunnerLoop(pipeline, source, RunnerOptions(...)).run()` returns the benchmark and a
`RunnerStatus` (how the run ended). It never raises on Ctrl-C, SIGTERM or a lost source: those
end the run and are reported in the status. Per frame it may swap in a newly deployed model
(live.reload), skips the detector on the frames the `DetectionScheduler` leaves out, survives a
failing frame (up to `MAX_FAILED_FRAMES_IN_ROW` in a row), feeds systemd's watchdog and keeps
to the frame rate asked for. `run_loop(pipeline, source, **options)` is the same as a function.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import cv2
import numpy as np

from face_sentiment.live.benchmark import Benchmark, SoakMonitor
from face_sentiment.live.frame_pipeline import FaceResult, draw_overlay, frame_record
from face_sentiment.live.frame_sources import Frame, FrameSource, SourceError
from face_sentiment.live.reload import ModelWatcher
from face_sentiment.live.results_log import ResultsLog, StreamLog
from face_sentiment.live.scheduling import DetectionScheduler, Pacer
from face_sentiment.live.service import StopRequest, SystemdNotifier

if TYPE_CHECKING:  # only a type here; the runner starts the page (live.publisher)
    from face_sentiment.live.publisher import LivePage

# The runner's logger: its messages, and the tests that watch them, predate this module.
log = logging.getLogger("face_sentiment.live.runner")

# One bad frame must not end a long run; this many in a row means the pipeline is broken.
MAX_FAILED_FRAMES_IN_ROW = 100


@dataclass(frozen=True)
class RunnerOptions:
    """What one run of the loop does besides processing frames; checked when made.

    `max_frames`: stop after this many timed frames (None: until the source ends);
    `warmup`: frames run before timing starts; `show`: a window (q or Esc ends the run);
    `log_stream`: a ResultsLog or any text stream; `video_path`: write the annotated frames
    there (MJPG); `draw`: draw the overlay even with no window or video file (the live page
    shows the drawn frame, a benchmark times the drawing); `scheduler`: picks the frames that
    run the detector; `fps_limit`: paces the loop; `duration_s`: ends it (monotonic clock); `soak`:
    samples the process; `notifier`: systemd's watchdog; `stop`: the signal handler's flag;
    `frames_csv`: the per-frame CSV streamed there; `live`: the live page (--serve), given
    each annotated frame with its record; `watcher`: hands over a newly deployed model.
    """

    max_frames: int | None = None
    warmup: int = 0
    show: bool = False
    log_stream: TextIO | ResultsLog | None = None
    video_path: str | None = None
    draw: bool = True
    scheduler: DetectionScheduler | None = None
    fps_limit: float | None = None
    duration_s: float | None = None
    soak: SoakMonitor | None = None
    notifier: SystemdNotifier | None = None
    stop: StopRequest | None = None
    frames_csv: str | Path | None = None
    live: LivePage | None = None
    watcher: ModelWatcher | None = None

    def __post_init__(self) -> None:
        problems = [problem for problem in (
            _count_problem("max_frames", self.max_frames, none_means="no limit"),
            _count_problem("warmup", self.warmup),
            _positive_problem("fps_limit", self.fps_limit, none_means="no limit"),
            _positive_problem("duration_s", self.duration_s, none_means="no end"),
        ) if problem]
        stream = self.log_stream
        if stream is not None and not (hasattr(stream, "offer") or hasattr(stream, "write")):
            problems.append("log_stream must be a ResultsLog or a text stream (with write()); "
                            f"got a {type(stream).__name__}")
        if problems:
            raise ValueError("RunnerOptions: " + "; ".join(problems))


def _count_problem(name: str, value, none_means: str | None = None) -> str | None:
    """What is wrong with a frame count (a whole number, 0 or more; None too where
    `none_means` says what it means), or None."""
    if value is None and none_means is not None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        allowed = "a whole number of frames, 0 or more" + (
            f", or None ({none_means})" if none_means else "")
        return f"{name} must be {allowed}; got {value!r}"
    return None


def _positive_problem(name: str, value, none_means: str) -> str | None:
    """What is wrong with an optional positive number (None: `none_means`), or None."""
    if value is None:
        return None
    # `not value > 0` also catches NaN; infinity stays allowed (no limit, no end).
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) \
            or not value > 0:
        return f"{name} must be a positive number, or None ({none_means}); got {value!r}"
    return None


@dataclass
class RunnerStatus:
    """How a run went; `as_dict()` is merged into the benchmark summary, in this order."""

    interrupted: bool = False  # Ctrl-C or SIGTERM (stop_signal names it)
    error: str | None = None  # a lost source, or MAX_FAILED_FRAMES_IN_ROW failed frames
    stopped_by_user: bool = False  # q or Esc in the --show window
    stop_signal: str | None = None
    # "frames", "duration", "end of source", "user", "signal" or "error"
    ended_by: str | None = None
    frame_errors: int = 0
    frames_late: int = 0  # frames the pacer could not keep to their time
    model_reloads: int = 0
    corrupt_frames_skipped: int = 0
    reconnects: int = 0
    source: str | None = None
    models_refused: int | None = None  # only with a model watcher (None: left out)

    def as_dict(self) -> dict:
        fields = asdict(self)
        if self.models_refused is None:
            del fields["models_refused"]
        return fields


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


def _change_key(results: list[FaceResult]) -> tuple:
    """What --log-on-change compares: each face's track and label."""
    return tuple(sorted((r.track_id if r.track_id is not None else -1, r.label_index)
                        for r in results))


class RunnerLoop:
    """Runs the frames of `source` through `pipeline` once (`run()`), with `options`."""

    def __init__(self, pipeline, source: FrameSource,
                 options: RunnerOptions | None = None) -> None:
        self.pipeline, self.source = pipeline, source
        self.options = options = options or RunnerOptions()
        self.bench = Benchmark()
        self.status = RunnerStatus()
        stream = options.log_stream
        self.results_log = (None if stream is None else stream if hasattr(stream, "offer")
                            else StreamLog(stream))
        self.scheduler = options.scheduler or DetectionScheduler(None)
        self.can_skip = bool(getattr(pipeline, "can_skip_detection", False))
        self.pacer = Pacer(options.fps_limit) if options.fps_limit else None
        self.notifier = options.notifier or SystemdNotifier({})
        self.display = _Display() if options.show else None
        self.writer: cv2.VideoWriter | None = None
        self.counted = 0  # timed frames
        self.seen = 0  # processed frames, warm-up included
        self.failed_in_row = 0

    def run(self) -> tuple[Benchmark, RunnerStatus]:
        """Run until the source ends, `max_frames`, `duration_s`, a signal, the user or too
        many failed frames; return the benchmark and the status."""
        options, bench = self.options, self.bench
        if options.frames_csv is not None:
            bench.open_frames_csv(options.frames_csv)
        frames = iter(self.source)
        deadline = None if options.duration_s is None else time.monotonic() + options.duration_s
        self._begin()
        try:
            self._run_frames(frames, deadline)
        except KeyboardInterrupt:
            stop = options.stop
            self.status.interrupted = True
            self.status.stop_signal = (stop.signal_name if stop is not None else None) \
                or "SIGINT"
            log.warning("interrupted: writing the summary of %d frames", self.counted)
        except SourceError as error:
            self.status.error = str(error)
            log.error("%s", error)
        except BaseException:
            bench.discard_frames_csv()
            raise
        finally:
            if self.writer is not None:
                self.writer.release()
            if self.display is not None:
                self.display.close()
        self._finish()
        return bench, self.status

    # --- the run's start and end -------------------------------------------------------------

    def _begin(self) -> None:
        if self.options.stop is not None:  # from here on a signal ends the run after a frame
            self.options.stop.immediate = False
        self.bench.start()
        if self.pacer is not None:
            self.pacer.start()
        self.notifier.ready(f"running on {self.source.name}")
        self.notifier.watchdog(force=True)

    def _finish(self) -> None:
        status, source = self.status, self.source
        if self.options.soak is not None:
            self.options.soak.maybe_sample(self.counted, force=True)
        if status.stopped_by_user:
            status.ended_by = "user"
        elif status.interrupted:
            status.ended_by = "signal"
        elif status.error:
            status.ended_by = "error"
        status.corrupt_frames_skipped = source.skipped
        status.reconnects = source.reconnects
        status.source = source.name
        status.frames_late = self.pacer.late if self.pacer else 0

    # --- one frame ---------------------------------------------------------------------------

    def _run_frames(self, frames: Iterator[Frame], deadline: float | None) -> None:
        max_frames = self.options.max_frames
        while max_frames is None or self.counted < max_frames:
            if not self._step(frames, deadline):
                return
        self.status.ended_by = "frames"

    def _step(self, frames: Iterator[Frame], deadline: float | None) -> bool:
        """Run one frame; False ends the run (the reason is in the status)."""
        if self._should_end(deadline):
            return False
        self._swap_in_deployed_model()
        started = time.perf_counter()
        with self.bench.stage("capture"):
            frame = next(frames, None)
        if frame is None:
            self.status.ended_by = "end of source"
            return False
        if frame.restarted and hasattr(self.pipeline, "restart"):
            self.pipeline.restart()  # a looped file began again: a scene cut
        detect = not self.can_skip or frame.restarted or self.scheduler.should_detect()
        try:
            results = self.pipeline.process(frame.image, self.bench, detect=detect)
        except Exception as error:  # noqa: BLE001 - one bad frame must not end a long run
            return self._frame_failed(frame, error)
        self.failed_in_row = 0
        self._draw(frame, results)
        self._account(frame, results, detect, started)
        if self.status.stopped_by_user:
            return False
        if self.pacer is not None:
            self._wait(self.pacer.delay())
        return True

    def _should_end(self, deadline: float | None) -> bool:
        """A signal came, or the soak's time is up: end before the next frame."""
        stop = self.options.stop
        if stop is not None and stop.requested:
            self.status.interrupted = True
            self.status.stop_signal = stop.signal_name
            log.warning("%s: writing the summary of %d frames", stop.signal_name, self.counted)
            return True
        if deadline is not None and time.monotonic() >= deadline:
            self.status.ended_by = "duration"
            return True
        return False

    def _swap_in_deployed_model(self) -> None:
        watcher = self.options.watcher
        if watcher is None or (fresh := watcher.poll()) is None:
            return
        previous = self.pipeline.model_id
        self.pipeline.swap_classifier(fresh)
        self.status.model_reloads += 1
        log.warning("model reloaded between frames: %s -> %s", previous, self.pipeline.model_id)

    def _frame_failed(self, frame: Frame, error: Exception) -> bool:
        """Count a failed frame; False (end the run) after too many in a row."""
        status = self.status
        status.frame_errors += 1
        self.failed_in_row += 1
        if status.frame_errors <= 5 or status.frame_errors % 1000 == 0:
            log.exception("frame %d failed (%d so far): %s", frame.index, status.frame_errors,
                          error)
        if self.failed_in_row >= MAX_FAILED_FRAMES_IN_ROW:
            status.error = (f"{self.failed_in_row} frames in a row failed; last: "
                            f"{type(error).__name__}: {error}")
            log.error("%s", status.error)
            return False
        self.bench.discard_frame()
        return True

    def _draw(self, frame: Frame, results: list[FaceResult]) -> None:
        """The overlay, the window and the video file."""
        options, display = self.options, self.display
        with self.bench.stage("draw"):
            if options.draw or display or options.video_path:
                draw_overlay(frame.image, results, self.pipeline.classes)
            if display is not None and not display.show(frame.image):
                self.status.stopped_by_user = True
        if options.video_path:
            if self.writer is None:
                height, width = frame.image.shape[:2]
                self.writer = cv2.VideoWriter(options.video_path,
                                              cv2.VideoWriter_fourcc(*"MJPG"), 30.0,
                                              (width, height))
            self.writer.write(frame.image)

    def _account(self, frame: Frame, results: list[FaceResult], detect: bool,
                 started: float) -> None:
        """Time the frame (or not, in the warm-up), record it, and tell the scheduler, the
        watchdog and the soak monitor."""
        bench = self.bench
        self.seen += 1
        # Read before end_frame/discard_frame start the next frame's stage times.
        detect_ms = bench.current_ms("detect")
        capture_ms = bench.current_ms("capture")
        if self.seen <= self.options.warmup:  # warm-up frames: run, but time nothing
            bench.discard_frame()
            if self.seen == self.options.warmup:
                bench.start()
        else:
            bench.end_frame(frame.index, sum(not r.held for r in results))
            self.counted += 1
            self._publish(frame, results, detect)
        work_ms = (time.perf_counter() - started) * 1000.0
        if self.source.live:  # a camera's capture time is mostly waiting for the sensor
            work_ms -= capture_ms
        self.scheduler.observe(detect, detect_ms, work_ms)
        self.notifier.watchdog()
        self.notifier.status(self._describe_progress)
        if self.options.soak is not None:
            self.options.soak.maybe_sample(self.counted)

    def _publish(self, frame: Frame, results: list[FaceResult], detect: bool) -> None:
        """The frame's record to the log and, with the annotated image, to the live page."""
        live = self.options.live
        if self.results_log is None and live is None:
            return
        record = frame_record(frame.index, frame.time, frame.origin, results,
                              self.pipeline.classes, getattr(self.pipeline, "model_id", None),
                              detected=detect, detect_every=self.scheduler.k)
        if self.results_log is not None:
            self.results_log.offer(record, _change_key(results))
        if live is not None:  # --serve: the live page; never waits for a viewer
            live.publish(frame.image, record, self.bench)

    def _describe_progress(self) -> str:
        return (f"{self.counted} frames, {self.bench.faces_total} faces, detecting every "
                f"{self.scheduler.k} frame(s)")

    def _wait(self, seconds: float) -> None:
        """Sleep for the pacer, in steps that keep the watchdog fed and see a stop signal."""
        stop = self.options.stop
        end = time.monotonic() + seconds
        while (remaining := end - time.monotonic()) > 0 and not (stop and stop.requested):
            time.sleep(min(remaining, 0.5))
            self.notifier.watchdog()


def run_loop(pipeline, source: FrameSource, options: RunnerOptions | None = None,
             **fields) -> tuple[Benchmark, dict]:
    """`RunnerLoop(pipeline, source, RunnerOptions(**fields)).run()`, the status as a dict.

    The keyword form the tests and older callers use: `run_loop(pipeline, source,
    fps_limit=40, duration_s=1.5)`. An unknown keyword is a TypeError, a bad value a
    ValueError naming the option.
    """
    if options is not None and fields:
        raise TypeError("run_loop: give RunnerOptions or keyword options, not both")
    bench, status = RunnerLoop(pipeline, source, options or RunnerOptions(**fields)).run()
    return bench, status.as_dict()
