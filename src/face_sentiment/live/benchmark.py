"""Benchmark bookkeeping for the live runner: per-stage latencies, CPU, memory, Pi SoC health.

Each frame's stages (capture, detect, align, classify, draw) are timed with a monotonic clock
(`time.perf_counter`, never the wall clock, so NTP steps do not distort them). Everything kept
for the summary needs O(1) memory however long the run: per stage a `StreamingLatency` (exact
count, mean, min and max; p50/p95/p99 from a logarithmic histogram whose estimates are within
`PERCENTILE_RELATIVE_ERROR` (1 %) of the exact linear-interpolated percentile); face counts as
running totals; the SoC temperature as start/min/max/end. The per-frame CSV is written only
when asked for (benchmark mode), streamed to a hidden staging file in the output folder and
renamed into place at the end, never held in memory; `rows` keeps only the last
`RECENT_ROWS` frames. The JSON summary is written atomically (temporary file + rename).
`SoakMonitor` samples resident memory, open file descriptors, threads and log size during a
soak run and fits their growth after a warm-up. Standard library and numpy only (matplotlib,
for the soak plot, is imported lazily and is optional; glibc's malloc_trim/mallinfo2 are
reached through ctypes when present).
"""

from __future__ import annotations

import csv
import ctypes
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import time
from collections import deque
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from face_sentiment.paths import write_atomic

STAGES = ("capture", "detect", "align", "classify", "draw")
CSV_COLUMNS = ("frame", "faces", *(f"{s}_ms" for s in STAGES), "total_ms")
RECENT_ROWS = 256
PERCENTILE_RELATIVE_ERROR = 0.01
THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")
# Bits of `vcgencmd get_throttled` (Raspberry Pi firmware documentation).
THROTTLE_BITS = {
    0: "under_voltage_now", 1: "arm_frequency_capped_now", 2: "throttled_now",
    3: "soft_temperature_limit_now", 16: "under_voltage_occurred",
    17: "arm_frequency_capped_occurred", 18: "throttled_occurred",
    19: "soft_temperature_limit_occurred",
}


def latency_stats(values_ms: list[float] | np.ndarray) -> dict[str, float | int | None]:
    """count, mean, p50, p95, p99 and max of latencies in milliseconds (exact, from all values)."""
    values = np.asarray(values_ms, np.float64)
    if values.size == 0:
        return {"count": 0, "mean": None, "p50": None, "p95": None, "p99": None, "max": None}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"count": int(values.size), "mean": round(float(values.mean()), 3),
            "p50": round(float(p50), 3), "p95": round(float(p95), 3),
            "p99": round(float(p99), 3), "max": round(float(values.max()), 3)}


class StreamingLatency:
    """Latency statistics in O(1) memory: exact count, mean, min, max; percentiles from a
    logarithmic histogram (the DDSketch construction).

    Bucket k holds the values in (gamma^(k-1), gamma^k] with gamma = (1 + a) / (1 - a); each
    order statistic is estimated as 2 gamma^k / (gamma + 1), within a relative error `a` of
    the true value. `quantile` interpolates linearly between the two order statistics around
    rank q (n - 1), as `np.percentile` does, so the estimate is within `a` (relative) of the
    exact percentile, for values between `min_value` and `max_value` (smaller values count as
    0, larger ones as `max_value`: an absolute error below `min_value`). With the defaults
    (a = 1 %, 1 microsecond to 1000 s in ms) that is 1,037 buckets: 8 KiB per stage.
    """

    def __init__(self, relative_error: float = PERCENTILE_RELATIVE_ERROR,
                 min_value: float = 1e-3, max_value: float = 1e6) -> None:
        if not 0 < relative_error < 1:
            raise ValueError(f"relative_error must be in (0, 1), got {relative_error}")
        self.relative_error = relative_error
        self.gamma = (1 + relative_error) / (1 - relative_error)
        self._log_gamma = math.log(self.gamma)
        self.min_value, self.max_value = min_value, max_value
        self._offset = math.ceil(math.log(min_value) / self._log_gamma)
        self.counts = np.zeros(math.ceil(math.log(max_value) / self._log_gamma)
                               - self._offset + 1, np.int64)
        self.below = 0  # values under min_value
        self.count = 0
        self.mean = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float) -> None:
        value = float(value)
        self.count += 1
        self.mean += (value - self.mean) / self.count  # running mean (Welford)
        self.min = min(self.min, value)
        self.max = max(self.max, value)
        if value < self.min_value:
            self.below += 1
            return
        key = math.ceil(math.log(value) / self._log_gamma) - self._offset
        self.counts[min(max(key, 0), len(self.counts) - 1)] += 1

    def _order_statistic(self, rank: int, cumulative: np.ndarray) -> float:
        """Estimate of the rank-th smallest value (0-based)."""
        if rank < self.below:
            return 0.0
        bucket = int(np.searchsorted(cumulative, rank - self.below, side="right"))
        estimate = 2 * self.gamma ** (bucket + self._offset) / (self.gamma + 1)
        return min(max(estimate, self.min), self.max)

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0 <= q <= 1), as np.percentile(values, 100 q) within the error."""
        if self.count == 0:
            return None
        cumulative = np.cumsum(self.counts)
        rank = q * (self.count - 1)
        low, high = math.floor(rank), math.ceil(rank)
        lower = self._order_statistic(low, cumulative)
        if high == low:
            return lower
        upper = self._order_statistic(high, cumulative)
        return lower + (upper - lower) * (rank - low)

    def stats(self) -> dict[str, float | int | None]:
        """The keys of `latency_stats` (plus min), rounded the same way."""
        if self.count == 0:
            return {"count": 0, "mean": None, "p50": None, "p95": None, "p99": None,
                    "max": None, "min": None}
        return {"count": self.count, "mean": round(self.mean, 3),
                **{f"p{p}": round(self.quantile(p / 100), 3) for p in (50, 95, 99)},
                "max": round(self.max, 3), "min": round(self.min, 3)}


def read_soc_temperature() -> float | None:
    """SoC temperature in degrees C from the first thermal zone, or None."""
    try:
        return int(THERMAL_ZONE.read_text().strip()) / 1000.0
    except (OSError, ValueError):
        return None


def read_throttled() -> dict | None:
    """Decoded `vcgencmd get_throttled` (Raspberry Pi only), or None elsewhere."""
    if shutil.which("vcgencmd") is None:
        return None
    try:
        output = subprocess.run(["vcgencmd", "get_throttled"], capture_output=True, text=True,
                                timeout=2, check=True).stdout
        value = int(output.strip().split("=")[-1], 16)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return {"raw": hex(value), **{name: bool(value >> bit & 1)
                                  for bit, name in THROTTLE_BITS.items()}}


def _system_cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies from /proc/stat, or None off Linux."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    values = [float(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)
    return sum(values) - idle, sum(values)


def platform_info() -> dict:
    info = {"machine": platform.machine(), "system": platform.system(),
            "python": platform.python_version(), "cpu_count": os.cpu_count()}
    try:
        fields = dict(line.split(":", 1) for line in
                      Path("/proc/cpuinfo").read_text().splitlines() if ":" in line)
        fields = {key.strip().lower(): value.strip() for key, value in fields.items()}
        cpu = fields.get("model name") or fields.get("hardware") or fields.get("model")
        if cpu:
            info["cpu"] = cpu
    except (OSError, ValueError):
        pass
    try:
        info["board"] = Path("/proc/device-tree/model").read_text().strip("\x00\n ")
    except OSError:
        pass
    return info


def process_snapshot() -> dict[str, int | None]:
    """This process's resident memory (bytes, VmRSS), its peak (VmHWM), threads and open file
    descriptors, from /proc (Linux); None for what cannot be read."""
    snapshot: dict[str, int | None] = {"rss_bytes": None, "threads": None, "fds": None,
                                       "peak_rss_bytes": None}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                snapshot["rss_bytes"] = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                snapshot["peak_rss_bytes"] = int(line.split()[1]) * 1024
            elif line.startswith("Threads:"):
                snapshot["threads"] = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        snapshot["fds"] = len(os.listdir("/proc/self/fd"))
    except OSError:
        pass
    return snapshot


class GlibcAllocator:
    """glibc's malloc_trim(0) and mallinfo2() through ctypes; `available` is False elsewhere.

    The soak samples RSS after malloc_trim(0): glibc keeps freed memory at the top of its
    heaps (here 1-4 MB, up and down with the pattern of ~1 MB frame buffers), which would
    hide or fake a trend of a few hundred KB; trimming first leaves what is in use plus the
    fragmentation that cannot be returned, which is what a leak grows.
    """

    class _MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost")]

    def __init__(self) -> None:
        self._trim = self._info = None
        try:
            libc = ctypes.CDLL(None)
            self._trim = libc.malloc_trim
            self._trim.argtypes, self._trim.restype = [ctypes.c_size_t], ctypes.c_int
            self._info = libc.mallinfo2
            self._info.argtypes, self._info.restype = [], self._MallInfo2
        except (OSError, AttributeError):
            pass

    @property
    def available(self) -> bool:
        return self._trim is not None

    def trim(self) -> None:
        if self._trim is not None:
            self._trim(0)

    def heap_in_use(self) -> int | None:
        """Bytes malloc has handed out and not got back (heap + mmapped chunks)."""
        if self._info is None:
            return None
        info = self._info()
        return int(info.uordblks + info.hblkhd)


class Benchmark:
    """Per-stage timers and system readings of a run, in bounded memory; writes the summary
    JSON and (when `open_frames_csv` was called) the per-frame CSV."""

    def __init__(self, soc_interval_s: float = 1.0, recent_rows: int = RECENT_ROWS) -> None:
        self.rows: deque[dict] = deque(maxlen=recent_rows)  # the last frames only
        self.frames = 0
        self.stats = {name: StreamingLatency() for name in (*STAGES, "total")}
        self.faces_total = self.frames_with_faces = self.faces_max = 0
        self._current: dict[str, float] = {}
        self.soc_interval_s = soc_interval_s
        self.temperature: dict[str, float] | None = None
        self._last_soc = -math.inf
        self.started = self.finished = None
        self._csv_final: Path | None = None
        self._csv_staging: Path | None = None
        self._csv_stream = None
        self._csv_writer = None

    def start(self) -> None:
        self.started = time.time()
        self._wall0 = time.perf_counter()
        self._cpu0 = time.process_time()
        self._sys0 = _system_cpu_times()
        self.throttled_start = read_throttled()
        self._sample_soc(force=True)

    # --- per-frame bookkeeping ---------------------------------------------------------------

    @contextmanager
    def stage(self, name: str):
        """Time a block as stage `name` of the current frame (repeats add up)."""
        begin = time.perf_counter()
        try:
            yield
        finally:
            elapsed = (time.perf_counter() - begin) * 1000.0
            self._current[name] = self._current.get(name, 0.0) + elapsed

    def add_stage(self, name: str, milliseconds: float) -> None:
        self._current[name] = self._current.get(name, 0.0) + milliseconds

    def current_ms(self, name: str | None = None) -> float:
        """Milliseconds of stage `name` (all stages when None) in the frame being timed."""
        if name is None:
            return sum(self._current.get(s, 0.0) for s in STAGES)
        return self._current.get(name, 0.0)

    def discard_frame(self) -> None:
        """Forget the stages timed since the last end_frame (warm-up frames)."""
        self._current = {}

    def end_frame(self, frame_index: int, faces: int) -> dict:
        row = {"frame": frame_index, "faces": faces,
               **{f"{s}_ms": round(self._current.get(s, 0.0), 4) for s in STAGES}}
        row["total_ms"] = round(sum(self._current.get(s, 0.0) for s in STAGES), 4)
        for name in STAGES:
            self.stats[name].add(self._current.get(name, 0.0))
        self.stats["total"].add(sum(self._current.get(s, 0.0) for s in STAGES))
        self.frames += 1
        self.faces_total += faces
        self.frames_with_faces += faces > 0
        self.faces_max = max(self.faces_max, faces)
        self.rows.append(row)
        if self._csv_writer is not None:
            self._csv_writer.writerow(row)
        self._current = {}
        self._sample_soc()
        return row

    def _sample_soc(self, force: bool = False) -> None:
        now = time.perf_counter()
        if force or now - self._last_soc >= self.soc_interval_s:
            self._last_soc = now
            temperature = read_soc_temperature()
            if temperature is None:
                return
            if self.temperature is None:
                self.temperature = {"start": temperature, "min": temperature,
                                    "max": temperature, "end": temperature}
            else:
                self.temperature.update(min=min(self.temperature["min"], temperature),
                                        max=max(self.temperature["max"], temperature),
                                        end=temperature)

    # --- the per-frame CSV, streamed -------------------------------------------------------

    def open_frames_csv(self, path: str | Path) -> None:
        """Stream one CSV row per timed frame to a hidden staging file beside `path`; `write`
        (or `finish_frames_csv`) renames it to `path`, `discard_frames_csv` removes it."""
        self.discard_frames_csv()
        self._csv_final = Path(path)
        self._csv_final.parent.mkdir(parents=True, exist_ok=True)
        self._csv_staging = self._csv_final.with_name(f".{self._csv_final.name}.partial")
        self._csv_stream = open(self._csv_staging, "w", newline="", encoding="utf-8")  # noqa: SIM115
        self._csv_writer = csv.DictWriter(self._csv_stream, CSV_COLUMNS, lineterminator="\n")
        self._csv_writer.writeheader()

    def finish_frames_csv(self) -> Path | None:
        """Close the streamed CSV and move it into place; its final path (None if none)."""
        if self._csv_stream is None:
            return None
        self._csv_stream.close()
        os.replace(self._csv_staging, self._csv_final)
        final = self._csv_final
        self._csv_stream = self._csv_writer = self._csv_staging = None
        return final

    def discard_frames_csv(self) -> None:
        if self._csv_stream is not None:
            self._csv_stream.close()
            Path(self._csv_staging).unlink(missing_ok=True)
        self._csv_stream = self._csv_writer = self._csv_staging = None

    def frames_csv(self) -> str:
        """The CSV of the recent rows held in memory (the full CSV is streamed to disk)."""
        import io
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        return buffer.getvalue()

    # --- summary -------------------------------------------------------------------------------

    def summary(self, **context) -> dict:
        """The JSON summary; `context` (source, detector, model, ...) is merged in."""
        self.finished = time.time()
        wall = time.perf_counter() - self._wall0
        cpu = time.process_time() - self._cpu0
        sys1 = _system_cpu_times()
        system_cpu = None
        if self._sys0 and sys1 and sys1[1] > self._sys0[1]:
            system_cpu = round(100 * (sys1[0] - self._sys0[0]) / (sys1[1] - self._sys0[1]), 1)
        frames = self.frames
        self._sample_soc(force=True)
        snapshot = process_snapshot()
        rss = snapshot["rss_bytes"]
        # VmHWM is this program's peak; ru_maxrss can carry the peak of the process image
        # before exec (a big parent such as pytest), so it is only the fallback.
        peak_kb = (snapshot["peak_rss_bytes"] // 1024 if snapshot["peak_rss_bytes"]
                   else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux
        temperature = self.temperature
        return {
            "frames": frames,
            "wall_s": round(wall, 3),
            "fps_end_to_end": round(frames / wall, 2) if wall > 0 else None,
            "faces": {"total": self.faces_total,
                      "frames_with_faces": self.frames_with_faces,
                      "mean_per_frame": round(self.faces_total / frames, 3) if frames else None,
                      "max_per_frame": self.faces_max},
            "stages_ms": {name: stats.stats() for name, stats in self.stats.items()},
            "stage_percentiles": {
                "method": "logarithmic histogram (DDSketch), O(1) memory",
                "relative_error": PERCENTILE_RELATIVE_ERROR,
                "note": "p50/p95/p99 are within this relative error of the exact "
                        "(np.percentile, linear) values; count, mean, min, max are exact"},
            "cpu_percent_process": round(100 * cpu / wall, 1) if wall > 0 else None,
            # CPU time per frame is what a frame costs, whatever else runs on the machine:
            # 1000 / cpu_ms_per_frame is the FPS one free core would give.
            "cpu_ms_per_frame": round(1000 * cpu / frames, 3) if frames else None,
            "cpu_percent_system": system_cpu,
            "peak_rss_mb": round(peak_kb / 1024, 1),
            "rss_mb_end": round(rss / 2**20, 1) if rss else None,
            "soc": {
                "temperature_c": None if temperature is None else {
                    "start": temperature["start"], "max": temperature["max"],
                    "end": temperature["end"], "min": temperature["min"]},
                "throttled_start": self.throttled_start,
                "throttled_end": read_throttled(),
            },
            "platform": platform_info(),
            "started_at": self.started,
            "finished_at": self.finished,
            **context,
        }

    def write(self, out_dir: str | Path, summary: dict,
              stem: str = "benchmark") -> tuple[Path, Path | None]:
        """Write `<stem>.json` atomically and move the streamed `<stem>_frames.csv` into place
        (when one was opened); return both paths (the CSV's is None without one)."""
        out_dir = Path(out_dir)
        json_path = write_atomic(out_dir / f"{stem}.json", json.dumps(summary, indent=2) + "\n")
        return json_path, self.finish_frames_csv()


class SoakMonitor:
    """Samples RSS, open file descriptors, threads and log size every `interval_s` (monotonic
    clock) during a soak run and fits their growth per frame after `warmup_s` (numpy polyfit).

    `report()` gives the samples, the fits and a verdict against `max_slope_bytes_per_frame`
    and the log's cap. Memory: one small tuple per sample (720 an hour at 5 s). With glibc
    (`trim`), each sample reads VmRSS as it is (`rss_raw_bytes`), calls malloc_trim(0) and reads
    it again (`rss_bytes`, the one fitted and judged); see GlibcAllocator.
    """

    def __init__(self, duration_s: float, interval_s: float = 5.0, warmup_s: float | None = None,
                 max_slope_bytes_per_frame: float = 50.0, log_cap_bytes: int | None = None,
                 log_size: Callable[[], int | None] | None = None,
                 clock: Callable[[], float] = time.monotonic, trim: bool = True) -> None:
        self.duration_s, self.interval_s = duration_s, interval_s
        self.warmup_s = (min(max(0.25 * duration_s, 10.0), 300.0) if warmup_s is None
                         else warmup_s)
        self.max_slope = max_slope_bytes_per_frame
        self.log_cap_bytes, self._log_size = log_cap_bytes, log_size or (lambda: None)
        self.clock = clock
        self.allocator = GlibcAllocator()
        self.trim = trim and self.allocator.available
        self.samples: list[tuple] = []  # see COLUMNS
        self._t0 = clock()
        self._next = self._t0

    def elapsed(self) -> float:
        return self.clock() - self._t0

    def done(self) -> bool:
        return self.elapsed() >= self.duration_s

    def maybe_sample(self, frames: int, force: bool = False) -> None:
        now = self.clock()
        if not force and now < self._next:
            return
        self._next = now + self.interval_s
        snapshot = process_snapshot()
        raw = snapshot["rss_bytes"]
        if self.trim:
            self.allocator.trim()
            snapshot["rss_bytes"] = process_snapshot()["rss_bytes"]
        self.samples.append((round(now - self._t0, 3), frames, snapshot["rss_bytes"],
                             snapshot["fds"], snapshot["threads"], self._log_size(), raw,
                             self.allocator.heap_in_use()))

    @staticmethod
    def _fit(x: np.ndarray, y: np.ndarray) -> float | None:
        if len(x) < 3 or np.ptp(x) == 0:
            return None
        return float(np.polyfit(x, y, 1)[0])

    COLUMNS = ("seconds", "frames", "rss_bytes", "fds", "threads", "log_bytes",
               "rss_raw_bytes", "heap_in_use_bytes")

    def report(self) -> dict:
        samples = [dict(zip(self.COLUMNS, s, strict=True)) for s in self.samples]
        usable = [s for s in samples if s["rss_bytes"] is not None]
        after = [s for s in usable if s["seconds"] >= self.warmup_s]
        report: dict = {"duration_s": self.duration_s, "interval_s": self.interval_s,
                        "warmup_s": self.warmup_s, "samples": len(samples),
                        "samples_after_warmup": len(after),
                        "rss_sampling": "VmRSS after malloc_trim(0)" if self.trim
                        else "VmRSS"}
        if usable:
            report["frames"] = usable[-1]["frames"]
            report["rss_mb"] = {"first": round(usable[0]["rss_bytes"] / 2**20, 2),
                                "max": round(max(s["rss_bytes"] for s in usable) / 2**20, 2),
                                "last": round(usable[-1]["rss_bytes"] / 2**20, 2)}
        slope = per_hour = None
        if len(after) >= 3:
            frames = np.array([s["frames"] for s in after], np.float64)
            seconds = np.array([s["seconds"] for s in after], np.float64)
            rss = np.array([s["rss_bytes"] for s in after], np.float64)
            slope = self._fit(frames, rss)
            per_hour = self._fit(seconds, rss)
            for key, name in (("rss_raw_bytes", "rss_raw_slope_bytes_per_frame"),
                              ("heap_in_use_bytes", "heap_slope_bytes_per_frame")):
                values = [s[key] for s in after]
                if all(v is not None for v in values):
                    fit = self._fit(frames, np.array(values, np.float64))
                    report[name] = None if fit is None else round(fit, 3)
            report["after_warmup"] = {
                "frames": int(frames[-1] - frames[0]),
                "seconds": round(float(seconds[-1] - seconds[0]), 1),
                "rss_mb_start": round(rss[0] / 2**20, 2),
                "rss_mb_end": round(rss[-1] / 2**20, 2),
                "rss_mb_change": round((rss[-1] - rss[0]) / 2**20, 3),
                "rss_mb_min": round(rss.min() / 2**20, 2),
                "rss_mb_max": round(rss.max() / 2**20, 2),
                "rss_raw_mb_start": None if after[0]["rss_raw_bytes"] is None else
                round(after[0]["rss_raw_bytes"] / 2**20, 2),
                "rss_raw_mb_end": None if after[-1]["rss_raw_bytes"] is None else
                round(after[-1]["rss_raw_bytes"] / 2**20, 2),
                "fps": round(float((frames[-1] - frames[0]) / (seconds[-1] - seconds[0])), 2)
                if seconds[-1] > seconds[0] else None}
            for key in ("fds", "threads"):
                values = [s[key] for s in after if s[key] is not None]
                if values:
                    report["after_warmup"][key] = {"start": values[0], "end": values[-1],
                                                   "max": max(values)}
        report["rss_slope_bytes_per_frame"] = None if slope is None else round(slope, 3)
        report["rss_slope_mb_per_hour"] = None if per_hour is None else round(
            per_hour * 3600 / 2**20, 3)
        logs = [s["log_bytes"] for s in samples if s["log_bytes"] is not None]
        report["log"] = {"max_bytes_seen": max(logs) if logs else None,
                         "cap_bytes": self.log_cap_bytes}
        failures = []
        if slope is None:
            failures.append("too few samples after the warm-up to fit a slope")
        elif slope > self.max_slope:
            failures.append(f"RSS grows {slope:.1f} B/frame after the warm-up "
                            f"(limit {self.max_slope:g})")
        if self.log_cap_bytes and logs and max(logs) > self.log_cap_bytes:
            failures.append(f"log reached {max(logs)} bytes, over its cap "
                            f"{self.log_cap_bytes}")
        after_fds = report.get("after_warmup", {}).get("fds")
        if after_fds and after_fds["end"] > after_fds["start"] + 8:
            failures.append(f"open file descriptors grew {after_fds['start']} -> "
                            f"{after_fds['end']}")
        report["limits"] = {"max_slope_bytes_per_frame": self.max_slope,
                            "log_cap_bytes": self.log_cap_bytes}
        report["passed"] = not failures
        report["failures"] = failures
        report["series"] = samples
        return report

    def write(self, out_dir: str | Path, report: dict) -> list[Path]:
        """soak.json and, when matplotlib is importable, soak_rss.png; the paths written."""
        out_dir = Path(out_dir)
        written = [write_atomic(out_dir / "soak.json", json.dumps(report, indent=2) + "\n")]
        plot = plot_soak(report, out_dir / "soak_rss.png")
        if plot is not None:
            written.append(plot)
        return written


def plot_soak(report: dict, path: Path) -> Path | None:
    """RSS over frames with the fitted line after the warm-up; None (with a message on
    stderr... via the caller's log) when matplotlib is not installed, as on the Pi."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    series = [s for s in report["series"] if s["rss_bytes"] is not None]
    if not series:
        return None
    frames = np.array([s["frames"] for s in series], np.float64)
    rss = np.array([s["rss_bytes"] for s in series], np.float64) / 2**20
    seconds = np.array([s["seconds"] for s in series], np.float64)
    figure, axis = plt.subplots(figsize=(8, 4))
    raw = [s.get("rss_raw_bytes") for s in series]
    if report.get("rss_sampling", "").endswith("malloc_trim(0)") and None not in raw:
        axis.plot(frames, np.array(raw, np.float64) / 2**20, "-", color="0.6", linewidth=0.6,
                  label="RSS as sampled")
        label = "RSS after malloc_trim(0)"
    else:
        label = "RSS"
    axis.plot(frames, rss, ".-", markersize=3, linewidth=0.8, label=label)
    after = seconds >= report["warmup_s"]
    if after.sum() >= 3:
        slope, intercept = np.polyfit(frames[after], rss[after], 1)
        axis.plot(frames[after], slope * frames[after] + intercept, "r--",
                  label=f"fit after warm-up: {report['rss_slope_bytes_per_frame']} B/frame")
        if (~after).any():
            axis.axvspan(frames[0], frames[after][0], color="0.9", label="warm-up")
    axis.set_xlabel("frames")
    axis.set_ylabel("resident memory (MiB)")
    axis.set_title(f"soak: {report.get('frames')} frames in {report['duration_s']:g} s")
    axis.legend(loc="best")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.partial.png")
    figure.savefig(staging, dpi=100)
    plt.close(figure)
    os.replace(staging, path)
    return path


def format_summary(summary: dict) -> str:
    """A short human-readable table of a summary."""
    lines = [f"{summary.get('pipeline', 'ours')}: {summary['frames']} frames, "
             f"{summary['fps_end_to_end']} FPS end to end, "
             f"{summary['faces']['mean_per_frame']} faces/frame, "
             f"CPU {summary['cpu_percent_process']}% (system {summary['cpu_percent_system']}%), "
             f"{summary['cpu_ms_per_frame']} ms CPU/frame, peak RSS {summary['peak_rss_mb']} MB"]
    lines.append(f"  {'stage':9s} {'p50':>8s} {'p95':>8s} {'p99':>8s} {'mean':>8s}  (ms; "
                 f"percentiles within {PERCENTILE_RELATIVE_ERROR:.0%})")
    for name, stats in summary["stages_ms"].items():
        if stats["count"]:
            lines.append(f"  {name:9s} {stats['p50']:8.2f} {stats['p95']:8.2f} "
                         f"{stats['p99']:8.2f} {stats['mean']:8.2f}")
    if summary.get("self_test"):
        lines.append(f"  model {summary['self_test']}, {summary.get('kernels')} kernels")
    detection = summary.get("detection")
    if detection and detection.get("mode") != "every frame":
        lines.append(f"  detection every {detection['detect_every']} frame(s) at the end "
                     f"(mean {detection['detect_every_mean']}, max {detection['detect_every_max']}"
                     f"; {detection['mode']}, frame interval {detection['interval_ms']} ms)")
    log_stats = summary.get("log")
    if log_stats and (log_stats.get("errors") or log_stats.get("rotations")):
        lines.append(f"  log: {log_stats['records_written']} records, "
                     f"{log_stats['rotations']} rotations, {log_stats['errors']} write errors, "
                     f"{log_stats['records_dropped']} dropped")
    soc = summary.get("soc") or {}
    if soc.get("temperature_c"):
        lines.append(f"  SoC temperature {soc['temperature_c']}")
    if soc.get("throttled_end"):
        flags = [k for k, v in soc["throttled_end"].items() if v is True]
        lines.append(f"  throttling: {', '.join(flags) or 'none'}")
    return "\n".join(lines)
