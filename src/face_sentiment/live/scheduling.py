"""Keeping real time: `DetectionScheduler` picks k (detect every k-th frame, track between)
from measured stage times against the frame interval; `Pacer` holds a source to a frame rate
(`--fps-limit`, `--realtime`) on the monotonic clock."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

log = logging.getLogger("face_sentiment.live.runner")


DEFAULT_MAX_DETECT_EVERY = 8


class DetectionScheduler:
    """Chooses k, the detector running on every k-th frame only, so a frame fits the interval.

    Moving averages (EMA, weight `smoothing`) of the detector's time `d` (detection frames)
    and of the rest of a frame's work `r` (capture of a file, alignment, classification,
    drawing, logging; a live camera's capture is left out: it includes waiting for the
    sensor) give the mean cost per frame with detection every k-th frame, d / k + r. k is the
    smallest that fits `headroom` x the frame interval, at most `max_every`. It rises after
    `rise_after` frames in a row that need more (the least they need), and falls only after
    `patience` frames in which a smaller k would fit 80 % of that budget; a single stall moves
    an average by at most `smoothing` x 3 of its value (each observation is capped at 4x the
    average). `fixed` pins k; no interval (a file read as fast as it goes) means k = 1.

    Hysteresis against a shared CPU: load that comes and goes in bursts (other processes)
    made k flap between 1-3 and 8 every second or two. A rise within `flap_window` x patience
    frames of a fall is a flap: the patience doubles (at most `max_patience`), so k stays at
    the larger value; each `flap_window` x patience frames without a change halve it again.
    Every change is logged at DEBUG; a change is reported (WARNING up, INFO down) only once k
    has kept its new value for `report_after` frames, with the number of changes in between.
    """

    def __init__(self, interval_ms: float | None, *, fixed: int | None = None,
                 max_every: int = DEFAULT_MAX_DETECT_EVERY, headroom: float = 0.85,
                 smoothing: float = 0.2, patience: int = 30, rise_after: int = 3,
                 max_patience: int = 300, flap_window: int = 4,
                 report_after: int = 90) -> None:
        if fixed is not None and fixed < 1:
            raise ValueError(f"--detect-every must be 'auto' or at least 1, got {fixed}")
        if max_every < 1:
            raise ValueError(f"--max-detect-every must be at least 1, got {max_every}")
        self.interval_ms, self.fixed, self.max_every = interval_ms, fixed, max_every
        self.headroom, self.smoothing, self.patience = headroom, smoothing, patience
        self.rise_after = rise_after
        self.base_patience, self.max_patience = patience, max(max_patience, patience)
        self.flap_window, self.report_after = flap_window, report_after
        self.k = fixed or 1
        self.detect_ms: float | None = None
        self.rest_ms: float | None = None
        self.detected_frames = self.tracked_frames = self.changes = 0
        self.k_max_seen = self.k
        self._since_detect: int | None = None
        self._calm = 0
        self._pressure: list[int] = []
        self.keeps_up: bool | None = None
        self.flaps = self.reports = 0
        self._frames = 0
        self._changed_at = self._fell_at = None  # frame numbers of the last change, fall
        self._relaxed_at = 0
        self._reported_k, self._unreported = self.k, 0

    @property
    def mode(self) -> str:
        if self.fixed is not None:
            return "every frame" if self.fixed == 1 else "fixed"
        return "auto" if self.interval_ms else "every frame"

    def should_detect(self) -> bool:
        return self._since_detect is None or self._since_detect + 1 >= self.k

    def _ema(self, old: float | None, new: float) -> float:
        if old is None:
            return new
        if old > 0:
            new = min(new, 4 * old)
        return old + self.smoothing * (new - old)

    def observe(self, detected: bool, detect_ms: float, work_ms: float) -> int:
        """Record one frame (its detector time and all its work, in ms); returns the new k."""
        self._frames += 1
        if detected:
            self.detected_frames += 1
            self._since_detect = 0
            self.detect_ms = self._ema(self.detect_ms, detect_ms)
            self.rest_ms = self._ema(self.rest_ms, max(work_ms - detect_ms, 0.0))
        else:
            self.tracked_frames += 1
            self._since_detect = (self._since_detect or 0) + 1
            self.rest_ms = self._ema(self.rest_ms, work_ms)
        if self.fixed is not None or not self.interval_ms or self.detect_ms is None:
            return self.k
        self._settle()
        budget = self.headroom * self.interval_ms
        target = self._needed(budget)
        self.keeps_up = self.detect_ms / self.max_every + self.rest_ms <= budget
        if target > self.k:
            self._calm = 0
            self._pressure.append(target)
            if len(self._pressure) >= self.rise_after:
                self._change(min(self._pressure))
        elif target < self.k and self._needed(0.8 * budget) < self.k:
            self._pressure.clear()
            self._calm += 1
            if self._calm >= self.patience:
                self._change(max(self._needed(0.8 * budget), 1))
        else:
            self._pressure.clear()
            self._calm = 0
        return self.k

    def _needed(self, budget: float) -> int:
        spare = budget - self.rest_ms
        if spare <= 0:
            return self.max_every
        return int(min(max(math.ceil(self.detect_ms / spare - 1e-9), 1), self.max_every))

    def _change(self, k: int) -> None:
        window = self.flap_window * self.patience
        if k > self.k and self._fell_at is not None and self._frames - self._fell_at <= window:
            self.flaps += 1  # back up soon after coming down: wait longer before the next fall
            self.patience = min(2 * self.patience, self.max_patience)
        if k < self.k:
            self._fell_at = self._frames
        log.debug("detecting every %d frame(s) (was %d): detector %.1f ms, rest %.1f ms", k,
                  self.k, self.detect_ms, self.rest_ms)
        self.k, self._calm = k, 0
        self._pressure.clear()
        self.changes += 1
        self._unreported += 1
        self._changed_at = self._frames
        self.k_max_seen = max(self.k_max_seen, k)

    def _settle(self) -> None:
        """Report a change that has lasted; relax the patience after a quiet spell."""
        since = self._frames - (self._changed_at or 0)
        quiet = self._frames - max(self._changed_at or 0, self._relaxed_at)
        if self.patience > self.base_patience and quiet >= self.flap_window * self.patience:
            self.patience = max(self.patience // 2, self.base_patience)
            self._relaxed_at = self._frames
        if self.k == self._reported_k:
            self._unreported = 0  # back where it was: the flap goes unreported
            return
        if since < self.report_after:
            return
        report = log.warning if self.k > self._reported_k else log.info
        between = (f", {self._unreported - 1} short-lived change(s) in between"
                   if self._unreported > 1 else "")
        report("detecting every %d frame(s) (was %d%s): detector %.1f ms, rest of a frame "
               "%.1f ms, frame interval %.1f ms%s", self.k, self._reported_k, between,
               self.detect_ms, self.rest_ms, self.interval_ms,
               "" if self.k < self.max_every or self.keeps_up else
               " - cannot keep real time even so")
        self._reported_k, self._unreported = self.k, 0
        self.reports += 1

    def summary(self) -> dict:
        frames = self.detected_frames + self.tracked_frames
        return {"mode": self.mode, "interval_ms": None if not self.interval_ms
                else round(self.interval_ms, 2),
                "detect_every": self.k, "detect_every_max": self.k_max_seen,
                "detect_every_mean": round(frames / self.detected_frames, 2)
                if self.detected_frames else None,
                "detected_frames": self.detected_frames, "tracked_frames": self.tracked_frames,
                "changes": self.changes, "changes_reported": self.reports,
                "flaps": self.flaps, "patience_frames": self.patience,
                "max_detect_every": self.max_every,
                "detect_ms_ema": None if self.detect_ms is None else round(self.detect_ms, 2),
                "rest_ms_ema": None if self.rest_ms is None else round(self.rest_ms, 2),
                "keeps_real_time": self.keeps_up,
                "between_detections": "tracked faces moved by their velocity, then aligned, "
                                      "classified and smoothed"}


class Pacer:
    """Holds the loop to `fps` frames a second on average (monotonic clock). A frame later than
    its slot is counted in `late` and the next frames start at once until the schedule is
    caught up, as buffered camera frames would; more than `max_lag_s` behind, the schedule
    restarts from now (the time is lost, not made up in a burst)."""

    def __init__(self, fps: float, clock: Callable[[], float] = time.monotonic,
                 max_lag_s: float = 1.0) -> None:
        if fps <= 0:
            raise ValueError(f"--fps-limit must be positive, got {fps}")
        self.interval = 1.0 / fps
        self.max_lag_s = max(max_lag_s, 2 * self.interval)
        self.clock = clock
        self.late = 0
        self._next: float | None = None

    def start(self) -> None:
        self._next = self.clock()

    def delay(self) -> float:
        """Seconds to wait before the next frame (0 when late)."""
        now = self.clock()
        if self._next is None:
            self._next = now
        self._next += self.interval
        wait = self._next - now
        if wait < 0:
            self.late += 1
            if wait < -self.max_lag_s:
                self._next = now
            return 0.0
        return wait
