"""Benchmark bookkeeping for the live runner: per-stage latencies, CPU, memory, Pi SoC health.

Each frame's stages (capture, detect, align, classify, draw) are timed with a monotonic clock;
the summary gives p50/p95/p99 per stage, end-to-end FPS, process and system CPU %, peak
resident memory and, on a Raspberry Pi, the SoC temperature and `vcgencmd get_throttled`
flags. Results are a JSON summary plus a per-frame CSV, both written atomically (temporary
file + rename) so a reader never sees half a file, even when the run is interrupted.
Standard library and numpy only.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import resource
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from face_sentiment.paths import write_atomic

STAGES = ("capture", "detect", "align", "classify", "draw")
THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")
# Bits of `vcgencmd get_throttled` (Raspberry Pi firmware documentation).
THROTTLE_BITS = {
    0: "under_voltage_now", 1: "arm_frequency_capped_now", 2: "throttled_now",
    3: "soft_temperature_limit_now", 16: "under_voltage_occurred",
    17: "arm_frequency_capped_occurred", 18: "throttled_occurred",
    19: "soft_temperature_limit_occurred",
}


def latency_stats(values_ms: list[float] | np.ndarray) -> dict[str, float | int | None]:
    """count, mean, p50, p95, p99 and max of latencies in milliseconds."""
    values = np.asarray(values_ms, np.float64)
    if values.size == 0:
        return {"count": 0, "mean": None, "p50": None, "p95": None, "p99": None, "max": None}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"count": int(values.size), "mean": round(float(values.mean()), 3),
            "p50": round(float(p50), 3), "p95": round(float(p95), 3),
            "p99": round(float(p99), 3), "max": round(float(values.max()), 3)}


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


class Benchmark:
    """Collects per-frame stage times and system readings; writes summary JSON + frame CSV."""

    def __init__(self, soc_interval_s: float = 1.0) -> None:
        self.rows: list[dict] = []
        self._current: dict[str, float] = {}
        self.soc_interval_s = soc_interval_s
        self.temperatures: list[float] = []
        self._last_soc = 0.0
        self.started = self.finished = None

    def start(self) -> None:
        self.started = time.time()
        self._wall0 = time.perf_counter()
        self._cpu0 = time.process_time()
        self._sys0 = _system_cpu_times()
        self.throttled_start = read_throttled()
        self._sample_soc(force=True)

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

    def discard_frame(self) -> None:
        """Forget the stages timed since the last end_frame (warm-up frames)."""
        self._current = {}

    def end_frame(self, frame_index: int, faces: int) -> dict:
        row = {"frame": frame_index, "faces": faces,
               **{f"{s}_ms": round(self._current.get(s, 0.0), 4) for s in STAGES}}
        row["total_ms"] = round(sum(self._current.get(s, 0.0) for s in STAGES), 4)
        self.rows.append(row)
        self._current = {}
        self._sample_soc()
        return row

    def _sample_soc(self, force: bool = False) -> None:
        now = time.perf_counter()
        if force or now - self._last_soc >= self.soc_interval_s:
            self._last_soc = now
            temperature = read_soc_temperature()
            if temperature is not None:
                self.temperatures.append(temperature)

    def summary(self, **context) -> dict:
        """The JSON summary; `context` (source, detector, model, ...) is merged in."""
        self.finished = time.time()
        wall = time.perf_counter() - self._wall0
        cpu = time.process_time() - self._cpu0
        sys1 = _system_cpu_times()
        system_cpu = None
        if self._sys0 and sys1 and sys1[1] > self._sys0[1]:
            system_cpu = round(100 * (sys1[0] - self._sys0[0]) / (sys1[1] - self._sys0[1]), 1)
        frames = len(self.rows)
        faces = [row["faces"] for row in self.rows]
        self._sample_soc(force=True)
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return {
            "frames": frames,
            "wall_s": round(wall, 3),
            "fps_end_to_end": round(frames / wall, 2) if wall > 0 else None,
            "faces": {"total": int(sum(faces)),
                      "frames_with_faces": int(sum(1 for f in faces if f)),
                      "mean_per_frame": round(float(np.mean(faces)), 3) if faces else None,
                      "max_per_frame": int(max(faces)) if faces else 0},
            "stages_ms": {s: latency_stats([r[f"{s}_ms"] for r in self.rows]) for s in STAGES}
            | {"total": latency_stats([r["total_ms"] for r in self.rows])},
            "cpu_percent_process": round(100 * cpu / wall, 1) if wall > 0 else None,
            # CPU time per frame is what a frame costs, whatever else runs on the machine:
            # 1000 / cpu_ms_per_frame is the FPS one free core would give.
            "cpu_ms_per_frame": round(1000 * cpu / frames, 3) if frames else None,
            "cpu_percent_system": system_cpu,
            "peak_rss_mb": round(peak_kb / 1024, 1),
            "soc": {
                "temperature_c": {"start": self.temperatures[0], "max": max(self.temperatures),
                                  "end": self.temperatures[-1]} if self.temperatures else None,
                "throttled_start": self.throttled_start,
                "throttled_end": read_throttled(),
            },
            "platform": platform_info(),
            "started_at": self.started,
            "finished_at": self.finished,
            **context,
        }

    def frames_csv(self) -> str:
        columns = ["frame", "faces", *(f"{s}_ms" for s in STAGES), "total_ms"]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        return buffer.getvalue()

    def write(self, out_dir: str | Path, summary: dict, stem: str = "benchmark") -> tuple[Path,
                                                                                        Path]:
        """Write `<stem>.json` and `<stem>_frames.csv` atomically; return both paths."""
        out_dir = Path(out_dir)
        json_path = write_atomic(out_dir / f"{stem}.json", json.dumps(summary, indent=2) + "\n")
        csv_path = write_atomic(out_dir / f"{stem}_frames.csv", self.frames_csv())
        return json_path, csv_path


def format_summary(summary: dict) -> str:
    """A short human-readable table of a summary."""
    lines = [f"{summary.get('pipeline', 'ours')}: {summary['frames']} frames, "
             f"{summary['fps_end_to_end']} FPS end to end, "
             f"{summary['faces']['mean_per_frame']} faces/frame, "
             f"CPU {summary['cpu_percent_process']}% (system {summary['cpu_percent_system']}%), "
             f"{summary['cpu_ms_per_frame']} ms CPU/frame, peak RSS {summary['peak_rss_mb']} MB"]
    lines.append(f"  {'stage':9s} {'p50':>8s} {'p95':>8s} {'p99':>8s} {'mean':>8s}  (ms)")
    for name, stats in summary["stages_ms"].items():
        if stats["count"]:
            lines.append(f"  {name:9s} {stats['p50']:8.2f} {stats['p95']:8.2f} "
                         f"{stats['p99']:8.2f} {stats['mean']:8.2f}")
    soc = summary.get("soc") or {}
    if soc.get("temperature_c"):
        lines.append(f"  SoC temperature {soc['temperature_c']}")
    if soc.get("throttled_end"):
        flags = [k for k, v in soc["throttled_end"].items() if v is True]
        lines.append(f"  throttling: {', '.join(flags) or 'none'}")
    return "\n".join(lines)
