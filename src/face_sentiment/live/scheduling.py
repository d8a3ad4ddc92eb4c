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
    `patience` frames in which a smaller k would fit 80 % of that budget (no flapping); a single
    stall moves an average by at most `smoothing` x 3 of its value (each observation is capped
    at 4x the average). `fixed` pins k; no interval (a file read as fast as it goes) means k = 1.
    """

    def __init__(self, interval_ms: float | None, *, fixed: int | None = None,
                 max_every: int = DEFAULT_MAX_DETECT_EVERY, headroom: float = 0.85,
                 smoothing: float = 0.2, patience: int = 30, rise_after: int = 3) -> None:
        if fixed is not None and fixed < 1:
            raise ValueError(f"--detect-every must be 'auto' or at least 1, got {fixed}")
        if max_every < 1:
            raise ValueError(f"--max-detect-every must be at least 1, got {max_every}")
        self.interval_ms, self.fixed, self.max_every = interval_ms, fixed, max_every
        self.headroom, self.smoothing, self.patience = headroom, smoothing, patience
        self.rise_after = rise_after
        self.k = fixed or 1
        self.detect_ms: float | None = None
        self.rest_ms: float | None = None
        self.detected_frames = self.tracked_frames = self.changes = 0
        self.k_max_seen = self.k
        self._since_detect: int | None = None
        self._calm = 0
        self._pressure: list[int] = []
        self.keeps_up: bool | None = None

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
        report = log.warning if k > self.k else log.info
        report("detecting every %d frame(s) (was %d): detector %.1f ms, rest of a frame %.1f ms, "
               "frame interval %.1f ms%s", k, self.k, self.detect_ms, self.rest_ms,
               self.interval_ms, "" if k < self.max_every or self.keeps_up else
               " - cannot keep real time even so")
        self.k, self._calm = k, 0
        self._pressure.clear()
        self.changes += 1
        self.k_max_seen = max(self.k_max_seen, k)

    def summary(self) -> dict:
        frames = self.detected_frames + self.tracked_frames
        return {"mode": self.mode, "interval_ms": None if not self.interval_ms
                else round(self.interval_ms, 2),
                "detect_every": self.k, "detect_every_max": self.k_max_seen,
                "detect_every_mean": round(frames / self.detected_frames, 2)
                if self.detected_frames else None,
                "detected_frames": self.detected_frames, "tracked_frames": self.tracked_frames,
                "changes": self.changes, "max_detect_every": self.max_every,
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
