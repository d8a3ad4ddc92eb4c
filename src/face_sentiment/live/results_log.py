"""The runner's JSON-lines log, bounded on disk: rotation by size and count, optional gzip of
rotated files in a background thread, `--log-every`/`--log-on-change` thinning, and a full or
unwritable disk reported once and retried while the runner keeps going."""

from __future__ import annotations

import gzip
import json
import logging
import math
import os
import queue
import shutil
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

log = logging.getLogger("face_sentiment.live.runner")


DEFAULT_LOG_MAX_MB = 64.0
DEFAULT_LOG_KEEP = 4


class ResultsLog:
    """Append-only JSON-lines log with size/count rotation that never stops the run.

    When the file would grow past `max_bytes` it is renamed to `<name>.1` (older copies shift
    to `.2` ... `.<keep>`, the oldest is deleted; `keep=0` starts the file afresh), gzipped to
    `<name>.1.gz` by one background thread (started with the log) when `compress`. Disk use
    is bounded by `max_bytes * (keep + 1)` (a single record is never split, so one longer than
    the cap goes to a fresh file on its own). `max_bytes=0` disables rotation. Only regular
    files rotate (a pipe or /dev/full is written as it is). `every` writes every N-th frame
    offered; `on_change` writes a frame only when its faces' (track, label) pairs differ from
    the last record written, plus, with `every` > 1, every N-th frame as a heartbeat.

    A failed write (disk full, read-only, unwritable path) is reported once on the logging
    channel; records are then dropped (and counted) and the file is retried every
    `retry_s` seconds (monotonic), and the recovery is reported too.
    """

    def __init__(self, path: str | Path, max_bytes: int = 0, keep: int = DEFAULT_LOG_KEEP,
                 compress: bool = False, every: int = 1, on_change: bool = False,
                 retry_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        if every < 1:
            raise ValueError(f"--log-every must be at least 1, got {every}")
        if keep < 0 or max_bytes < 0:
            raise ValueError("--log-keep and --log-max-mb must not be negative")
        self.path = Path(path)
        self.max_bytes, self.keep, self.compress = int(max_bytes), keep, compress
        self.every, self.on_change, self.retry_s, self.clock = every, on_change, retry_s, clock
        self.records_written = self.records_dropped = self.records_skipped = 0
        self.bytes_written = self.rotations = self.errors = 0
        self.last_error: str | None = None
        self._file = None
        self._size = 0
        self._regular = False
        self._partial_line = False
        self._failing = False
        self._retry_at = -math.inf
        self._offered = 0
        self._since_written = 0
        self._last_key: object = None
        self._jobs: queue.Queue | None = None
        self._compressor: threading.Thread | None = None
        if compress:
            self._jobs = queue.Queue()
            self._compressor = threading.Thread(target=self._compress_jobs,
                                                name="log-compress", daemon=True)
            self._compressor.start()
        self._open()

    # --- file handling -----------------------------------------------------------------------

    def _open(self) -> bool:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115 - closed in close()
            info = os.fstat(self._file.fileno())
            self._regular = stat.S_ISREG(info.st_mode)
            self._size = info.st_size if self._regular else 0
        except OSError as error:
            self._fail(error, "cannot be opened")
            return False
        if self._regular and self.max_bytes and self._size > self.max_bytes:
            self._rotate()
        return self._file is not None

    def _close_file(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None

    def _fail(self, error: OSError, what: str) -> None:
        self.errors += 1
        self.last_error = f"{what}: {error}"
        self._close_file()
        self._retry_at = self.clock() + self.retry_s
        if not self._failing:  # once per outage, not once per frame
            self._failing = True
            log.error("results log %s %s (%s): records are dropped from now on; the run goes "
                      "on and retries the log every %g s", self.path, what,
                      error.strerror or error, self.retry_s)

    def rotated_path(self, number: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{number}")

    def _rotate(self) -> None:
        self._close_file()
        if self._jobs is not None:
            self._jobs.join()  # the previous copy is compressed before the names shift
        try:
            if self.keep == 0:
                self.path.unlink(missing_ok=True)
            else:
                for number in range(self.keep, 0, -1):
                    for suffix in ("", ".gz"):
                        source = Path(f"{self.rotated_path(number)}{suffix}")
                        if not source.exists():
                            continue
                        if number == self.keep:
                            source.unlink()
                        else:
                            os.replace(source, f"{self.rotated_path(number + 1)}{suffix}")
                os.replace(self.path, self.rotated_path(1))
                if self._jobs is not None:
                    self._jobs.put(self.rotated_path(1))
        except OSError as error:
            self._fail(error, "cannot be rotated")
            return
        self.rotations += 1
        self._partial_line = False
        try:
            self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115
            self._size = 0
        except OSError as error:
            self._fail(error, "cannot be reopened after rotation")

    def _compress_jobs(self) -> None:
        while True:
            path = self._jobs.get()
            try:
                if path is None:
                    return
                self._compress(path)
            finally:
                self._jobs.task_done()

    def _compress(self, path: Path) -> None:
        target = Path(f"{path}.gz")
        staging = target.with_name(f".{target.name}.partial")
        try:
            with open(path, "rb") as source, gzip.open(staging, "wb", compresslevel=6) as sink:
                shutil.copyfileobj(source, sink, 1 << 16)
            os.replace(staging, target)
            path.unlink()
        except OSError as error:
            staging.unlink(missing_ok=True)
            log.warning("results log: compressing %s failed (%s); kept it uncompressed",
                        path, error)

    def _stop_compressor(self) -> None:
        if self._compressor is not None:
            self._jobs.put(None)
            self._compressor.join()
            self._compressor = None

    # --- writing ---------------------------------------------------------------------------------

    def offer(self, record: dict, key: object = None) -> bool:
        """Write `record` if `every` / `on_change` select it; True when written."""
        self._offered += 1
        self._since_written += 1
        if self.on_change:
            changed = key != self._last_key or self._offered == 1
            heartbeat = self.every > 1 and self._since_written >= self.every
            if not (changed or heartbeat):
                self.records_skipped += 1
                return False
        elif (self._offered - 1) % self.every:
            self.records_skipped += 1
            return False
        written = self.write_line(json.dumps(record))
        if written:
            self._last_key = key
            self._since_written = 0
        return written

    def write_line(self, line: str) -> bool:
        """Append one line; False (counted as dropped) when the log cannot be written now."""
        if self._file is None:
            if self.clock() < self._retry_at or not self._open():
                self.records_dropped += 1
                return False
        payload = (line + "\n").encode("utf-8")
        if (self._regular and self.max_bytes and self._size
                and self._size + len(payload) + self._partial_line > self.max_bytes):
            self._rotate()
            if self._file is None:
                self.records_dropped += 1
                return False
        # End the line a failed write left unfinished before writing this one.
        data = b"\n" + payload if self._partial_line else payload
        written = 0
        try:
            while written < len(data):
                count = self._file.write(data[written:])
                if not count:
                    raise OSError(28, "no progress writing")
                written += count
                self._size += count
                self.bytes_written += count
        except OSError as error:
            if written:
                self._partial_line = data[written - 1:written] != b"\n"
            self.records_dropped += 1
            self._fail(error, "cannot be written")
            return False
        self._partial_line = False
        self.records_written += 1
        if self._failing:  # the first record written after an outage
            self._failing = False
            log.warning("results log %s is writable again (%d records were dropped)",
                        self.path, self.records_dropped)
        return True

    def disk_bytes(self) -> int:
        """Bytes on disk of the log and its rotated copies (for the soak's cap check)."""
        total = 0
        try:
            for entry in os.scandir(self.path.parent):
                name = entry.name
                if (name == self.path.name or name.startswith(f"{self.path.name}.")
                        or name.startswith(f".{self.path.name}.")) and entry.is_file():
                    total += entry.stat().st_size
        except OSError:
            pass
        return total

    @property
    def cap_bytes(self) -> int | None:
        """The most the log and its copies may take on disk (None: unbounded)."""
        return self.max_bytes * (self.keep + 1) if self.max_bytes else None

    def stats(self) -> dict:
        return {"path": str(self.path), "records_written": self.records_written,
                "records_skipped": self.records_skipped,
                "records_dropped": self.records_dropped, "bytes_written": self.bytes_written,
                "rotations": self.rotations, "errors": self.errors,
                "last_error": self.last_error, "max_bytes": self.max_bytes or None,
                "keep": self.keep, "compress": self.compress, "cap_bytes": self.cap_bytes,
                "every": self.every, "on_change": self.on_change,
                "disk_bytes": self.disk_bytes()}

    def close(self) -> None:
        self._close_file()
        self._stop_compressor()

    def __enter__(self) -> ResultsLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class StreamLog:
    """A plain text stream behind ResultsLog's interface (run_loop's older `log_stream`)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def offer(self, record: dict, key: object = None) -> bool:
        self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()
        return True

    def stats(self) -> dict | None:
        return None


# ------------------------------------------------------------------------------------------
# Keeping real time: detect every k-th frame; pacing; systemd; signals
