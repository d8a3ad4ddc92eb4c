"""The runner's side of the live page (`pi/run.py --serve`): one cheap call per frame.

`LivePublisher.publish(image, record, bench)` is called by the runner's loop once per frame,
after the overlay is drawn and the frame's JSON record is built. It never blocks and never
waits for a viewer:

- the record goes into a bounded ring (`/api/frames`) and a per-second timeline of label counts
  (the page's chart of expression shares over the last minutes); that costs microseconds;
- only while someone watches the video, the annotated image is copied (latest wins) for the
  encoder thread, which JPEG-encodes it at most once, at most `stream_fps` times a second, and
  hands the bytes to every stream client (cv2.imencode releases the GIL: it runs on another
  core while the pipeline goes on);
- nothing is handed to the server per record: its event loop collects the new records from
  the ring 20 times a second, and only while someone listens.

The server (`server.LiveServer`, aiohttp, in its own thread) registers itself as `listener`
and sets the client counts. This module needs numpy and OpenCV only; `add_serve_arguments` and
`start_live_page` wire it to the command line (aiohttp is imported only when `--serve` is
given).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import math
import os
import secrets
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

import cv2
import numpy as np

from face_sentiment.live.benchmark import (
    _system_cpu_times,
    process_snapshot,
    read_soc_temperature,
)

log = logging.getLogger("face_sentiment.live.publisher")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_MAX_CLIENTS = 8
DEFAULT_STREAM_FPS = 30.0
DEFAULT_JPEG_QUALITY = 80
HISTORY_RECORDS = 600  # /api/frames keeps this many records
TIMELINE_SECONDS = 600  # the chart's history: 10 minutes of 1 s buckets
STAGE_NAMES = ("capture", "detect", "align", "classify", "draw")
# /healthz fails when no frame was processed for this long: a camera delivers 10-30 frames a
# second and a stalled pipeline none; a camera's reconnect backoff (0.5 s, doubling) passes it
# only at the fifth try, when the camera is most likely gone (health checks retry anyway).
DEFAULT_STALE_AFTER_S = 10.0
TOKEN_ENV = "FACE_SENTIMENT_TOKEN"
# 16 characters: 64 bits as hex, more in any richer alphabet; shorter ones are guessable.
MIN_TOKEN_LENGTH = 16


class Listener(Protocol):
    """What the server gives the publisher: thread-safe hand-offs into its event loop."""

    def on_jpeg(self, jpeg: bytes, frame: int) -> None: ...


class Timeline:
    """Label counts of the faces seen, in `bucket_s` buckets over the last `seconds`.

    Buckets are keyed by the records' capture time (wall clock, whole seconds). `snapshot()`
    also returns the publisher's sequence number of the last record counted, so a client that
    then follows the pushed records counts each frame once. Updated by the pipeline thread,
    read by the server's.
    """

    def __init__(self, classes: tuple[str, ...], seconds: int = TIMELINE_SECONDS,
                 bucket_s: int = 1) -> None:
        self.classes = tuple(classes)
        self.index = {name: i for i, name in enumerate(self.classes)}
        self.bucket_s = bucket_s
        self.buckets: deque[list] = deque(maxlen=max(1, seconds // bucket_s))
        self.last_frame: int | None = None
        self.sequence = 0
        self._lock = threading.Lock()

    def add(self, record: dict, sequence: int | None = None) -> None:
        when = record.get("time")
        if not isinstance(when, int | float) or not math.isfinite(when):
            when = time.time()
        start = int(when // self.bucket_s * self.bucket_s)
        faces = record.get("faces") or ()
        with self._lock:
            if not self.buckets or self.buckets[-1][0] != start:
                if self.buckets and start < self.buckets[-1][0]:
                    self.buckets.clear()  # the clock went back: start afresh
                self.buckets.append([start, 0, 0, [0] * len(self.classes)])
            bucket = self.buckets[-1]
            bucket[1] += 1
            for face in faces:
                position = self.index.get(face.get("label"))
                if position is not None:
                    bucket[2] += 1
                    bucket[3][position] += 1
            self.last_frame = record.get("frame", self.last_frame)
            self.sequence = self.sequence + 1 if sequence is None else sequence

    def snapshot(self) -> dict:
        with self._lock:
            buckets = [{"t": t, "frames": frames, "faces": faces, "counts": list(counts)}
                       for t, frames, faces, counts in self.buckets]
            last, sequence = self.last_frame, self.sequence
        return {"bucket_s": self.bucket_s, "classes": list(self.classes),
                "seconds": self.buckets.maxlen * self.bucket_s, "last_frame": last,
                "sequence": sequence, "buckets": buckets}


class LivePublisher:
    """Thread-safe hand-off of frames and records from the pipeline to the live server."""

    def __init__(self, classes: tuple[str, ...], *, stream_fps: float | None = DEFAULT_STREAM_FPS,
                 jpeg_quality: int = DEFAULT_JPEG_QUALITY, history: int = HISTORY_RECORDS,
                 timeline_s: int = TIMELINE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 1 <= jpeg_quality <= 100:
            raise ValueError(f"--jpeg-quality must be 1..100, got {jpeg_quality}")
        self.classes = tuple(classes)
        self.clock = clock
        self.min_interval = 1.0 / stream_fps if stream_fps else 0.0
        self.jpeg_quality = int(jpeg_quality)
        self._feed: deque[tuple[int, dict]] = deque(maxlen=history)  # (sequence, record)
        self.timeline = Timeline(self.classes, timeline_s)
        self.listener: Listener | None = None
        # Set by the server: how many clients want the video / the records right now.
        self.video_clients = 0
        self.record_clients = 0
        self.frames_published = 0
        self.started = clock()
        self.frames_encoded = 0
        self.encode_ms_total = 0.0
        self.latest_jpeg: bytes | None = None
        self.latest_jpeg_frame: int | None = None
        self.latest_record: dict | None = None
        self.info: dict = {}
        self._times: deque[float] = deque(maxlen=1024)
        self._stage_sums: dict[str, float] = {}
        self._stage_count = 0
        self._next_encode = -math.inf
        self._lock = threading.Lock()
        self._pending: np.ndarray | None = None
        self._pending_frame: int | None = None
        self._spare: list[np.ndarray] = []
        self._wake = threading.Event()
        self._closed = False
        self._cpu_last: tuple[float, float, tuple[float, float] | None] | None = None
        self._encoder = threading.Thread(target=self._encode_loop, name="live-jpeg",
                                         daemon=True)
        self._encoder.start()

    # --- the pipeline's side (one call per frame) -----------------------------------------

    def publish(self, image: np.ndarray | None, record: dict, bench=None) -> None:
        """Hand one frame (annotated BGR image, its log record) to the live page; never blocks.

        `bench` (the runner's Benchmark) gives the frame's stage times, when it has them.
        """
        now = self.clock()
        self.frames_published += 1
        self._times.append(now)
        rows = getattr(bench, "rows", None)
        if rows:
            row = rows[-1]
            sums = self._stage_sums
            for stage in STAGE_NAMES:
                value = row.get(f"{stage}_ms")
                if value is not None:
                    sums[stage] = sums.get(stage, 0.0) + value
            self._stage_count += 1
        self._feed.append((self.frames_published, record))
        self.latest_record = record
        self.timeline.add(record, self.frames_published)
        listener = self.listener
        if listener is None:
            return
        # At most stream_fps frames a second on average; a frame a little early (camera
        # jitter) still counts for its slot, so a 30 FPS camera streams at 30, not 15-20.
        if (self.video_clients > 0 and image is not None
                and now >= self._next_encode - 0.2 * self.min_interval):
            self._next_encode = max(self._next_encode + self.min_interval, now)
            with self._lock:
                buffer = self._pending
                if buffer is None or buffer.shape != image.shape:
                    buffer = self._spare.pop() if self._spare else None
                    if buffer is None or buffer.shape != image.shape:
                        buffer = np.empty_like(image)
                np.copyto(buffer, image)
                self._pending, self._pending_frame = buffer, record.get("frame")
            self._wake.set()

    @property
    def records(self) -> list[dict]:
        """The latest records (at most `history`), oldest first."""
        return [record for _, record in list(self._feed)]

    def records_since(self, sequence: int) -> list[tuple[int, dict]]:
        """(sequence, record) of the records published after `sequence` (1, 2, ... per
        publish), oldest first; older ones than the ring holds are gone."""
        return [(number, record) for number, record in list(self._feed) if number > sequence]

    # --- the encoder thread ----------------------------------------------------------------

    def _encode_loop(self) -> None:
        params = [int(cv2.IMWRITE_JPEG_QUALITY), self.jpeg_quality]
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._closed:
                return
            with self._lock:
                image, frame = self._pending, self._pending_frame
                self._pending = None
            if image is None:
                continue
            started = time.perf_counter()
            ok, encoded = cv2.imencode(".jpg", image, params)
            self.encode_ms_total += (time.perf_counter() - started) * 1000.0
            with self._lock:
                if len(self._spare) < 2:
                    self._spare.append(image)
            if not ok:
                continue
            jpeg = encoded.tobytes()
            self.frames_encoded += 1
            self.latest_jpeg, self.latest_jpeg_frame = jpeg, frame
            listener = self.listener
            if listener is not None:
                listener.on_jpeg(jpeg, frame)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._encoder.join(timeout=2)

    # --- readings for the page (the server's thread) ---------------------------------------

    def fps(self, window_s: float = 2.0) -> float | None:
        times = list(self._times)
        if len(times) < 2:
            return None
        now = self.clock()
        recent = [t for t in times if t >= now - window_s]
        if len(recent) < 2:
            return 0.0 if now - times[-1] > window_s else None
        span = recent[-1] - recent[0]
        return round((len(recent) - 1) / span, 2) if span > 0 else None

    def health(self, stale_after_s: float = DEFAULT_STALE_AFTER_S) -> dict:
        """/healthz: ok while the last frame was processed at most `stale_after_s` ago (before
        the first frame: since the start), else a reason."""
        now = self.clock()
        times = self._times
        last = times[-1] if times else None
        age = now - (self.started if last is None else last)
        reading = {"ok": age <= stale_after_s, "frames": self.frames_published,
                   "last_frame_age_s": None if last is None else round(age, 2),
                   "stale_after_s": stale_after_s}
        if not reading["ok"]:
            reading["reason"] = (
                f"no frame processed for {age:.1f} s (limit {stale_after_s:g} s): the pipeline "
                "is stalled or its source lost" if last is not None else
                f"no frame processed since the start {age:.1f} s ago (limit "
                f"{stale_after_s:g} s): the source has not delivered one")
        return reading

    def take_stage_means(self) -> dict[str, float] | None:
        """Mean ms of each stage over the frames since the last call (None: no frames)."""
        sums, count = self._stage_sums, self._stage_count
        self._stage_sums, self._stage_count = {}, 0
        if not count:
            return None
        means = {stage: round(sums.get(stage, 0.0) / count, 2) for stage in STAGE_NAMES}
        means["total"] = round(sum(means.values()), 2)
        return means

    def system(self) -> dict:
        """CPU (this process and the whole machine, % since the last call), RSS, SoC
        temperature (None off a Pi or where /sys has no thermal zone)."""
        wall, cpu, system = time.monotonic(), time.process_time(), _system_cpu_times()
        reading = {"cpu_percent_process": None, "cpu_percent_system": None}
        if self._cpu_last is not None:
            wall0, cpu0, system0 = self._cpu_last
            if wall > wall0:
                reading["cpu_percent_process"] = round(100.0 * (cpu - cpu0) / (wall - wall0), 1)
            if system and system0 and system[1] > system0[1]:
                reading["cpu_percent_system"] = round(
                    100.0 * (system[0] - system0[0]) / (system[1] - system0[1]), 1)
        self._cpu_last = (wall, cpu, system)
        rss = process_snapshot().get("rss_bytes")
        reading["rss_mb"] = None if rss is None else round(rss / 2**20, 1)
        reading["temperature_c"] = read_soc_temperature()
        return reading


# ------------------------------------------------------------------------------------------
# Command line


def parse_serve_address(value: str) -> tuple[str, int]:
    """`PORT`, `HOST:PORT` or `[IPv6]:PORT` -> (host, port); the host defaults to 127.0.0.1."""
    text = value.strip()
    host = DEFAULT_HOST
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1:end + 2] != ":":
            raise argparse.ArgumentTypeError(f"expected [IPv6]:PORT, got {value!r}")
        host, text = text[1:end], text[end + 2:]
    elif ":" in text:
        host, text = text.rsplit(":", 1)
        if not host:
            raise argparse.ArgumentTypeError(f"expected [HOST:]PORT, got {value!r}")
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected [HOST:]PORT, got {value!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {port}")
    return host, port


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "live page", "serve the annotated video, per-face probabilities, a timeline and the "
                     "per-frame records to a browser (needs aiohttp; see pi/README.md)")
    group.add_argument("--serve", type=parse_serve_address, metavar="[HOST:]PORT",
                       help="serve the live page on HOST:PORT while running (HOST defaults to "
                            "127.0.0.1, this machine only; 0.0.0.0 for every interface, which "
                            "then needs a token)")
    group.add_argument("--token", help="access token required for the stream and the API, at "
                                       f"least {MIN_TOKEN_LENGTH} characters; visible to "
                                       f"`ps`: prefer --token-file or ${TOKEN_ENV} (default: none "
                                       "on 127.0.0.1, generated and printed when HOST is any "
                                       "other address)")
    group.add_argument("--token-file", metavar="PATH",
                       help="read the token from this file (its first line; a Docker/Podman "
                            "secret such as /run/secrets/live_token)")
    group.add_argument("--stale-after", type=float, default=DEFAULT_STALE_AFTER_S,
                       metavar="SECONDS",
                       help="/healthz answers 503 when no frame was processed for SECONDS "
                            f"(default: {DEFAULT_STALE_AFTER_S:g})")
    group.add_argument("--max-clients", type=int, default=DEFAULT_MAX_CLIENTS,
                       help="most streaming connections at once (a page holds two: video and "
                            f"records); more get HTTP 503 (default: {DEFAULT_MAX_CLIENTS})")
    group.add_argument("--stream-fps", type=float, default=DEFAULT_STREAM_FPS,
                       help="most JPEG frames encoded per second for viewers; 0: every frame "
                            f"(default: {DEFAULT_STREAM_FPS:g})")
    group.add_argument("--jpeg-quality", type=int, default=DEFAULT_JPEG_QUALITY,
                       help=f"JPEG quality of the stream (default: {DEFAULT_JPEG_QUALITY})")


def resolve_token(args: argparse.Namespace,
                  environ: Mapping[str, str] = os.environ) -> tuple[str | None, str | None]:
    """(token, where it came from) from --token, --token-file or $FACE_SENTIMENT_TOKEN, in that
    order; (None, None) when none is given. Raises ValueError for both options at once, an
    unreadable or empty file, or a token under MIN_TOKEN_LENGTH characters."""
    given, path = getattr(args, "token", None), getattr(args, "token_file", None)
    if given is not None and path is not None:
        raise ValueError("--token and --token-file both given: use one")
    if path is not None:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"--token-file {path}: cannot read it ({error})") from None
        token, origin = (lines[0] if lines else ""), f"--token-file {path}"
    elif given is not None:
        token, origin = given, "--token"
    elif environ.get(TOKEN_ENV):
        token, origin = environ[TOKEN_ENV], f"${TOKEN_ENV}"
    else:
        return None, None
    token = token.strip()
    if not token:
        raise ValueError(f"the token ({origin}) is empty")
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"the token ({origin}) has {len(token)} characters: use at least "
                         f"{MIN_TOKEN_LENGTH} (e.g. python3 -c 'import secrets; "
                         "print(secrets.token_hex(16))')")
    return token, origin


def display_source(spec: str) -> str:
    """How the page names a source: a file or folder by its name only (never the host's path),
    a camera as 'camera 0' or 'camera video2'; 'demo' and 'picam' as they are."""
    text = str(spec).strip()
    if text.isdigit():
        return f"camera {text}"
    if text.startswith("/dev/"):
        return f"camera {Path(text).name}"
    return Path(text).name or text


def _overlay_colours() -> dict[str, str]:
    """The overlay's class colours (runner.COLOURS, BGR) as CSS hex, for the page."""
    from face_sentiment.live.runner import COLOURS
    return {name: "#{:02x}{:02x}{:02x}".format(*reversed(bgr)) for name, bgr in COLOURS.items()}


class LivePage:
    """The running live page: its publisher (the runner calls `publish`) and its server."""

    def __init__(self, publisher: LivePublisher, server) -> None:
        self.publisher, self.server = publisher, server

    def publish(self, image: np.ndarray | None, record: dict, bench=None) -> None:
        self.publisher.publish(image, record, bench)

    @property
    def url(self) -> str:
        return self.server.url

    def close(self) -> None:
        self.server.stop()
        self.publisher.close()


def start_live_page(args: argparse.Namespace, pipeline, source: str | None = None,
                    out=None) -> LivePage | None:
    """Start the live page for parsed runner arguments (None without --serve).

    Raises ImportError (aiohttp missing), ValueError (bad option) or RuntimeError (the port
    cannot be bound), which the runner reports as `error: ...`, exit 2. With --serve a video
    file, folder or the demo clip loops unless --max-frames, --benchmark or --soak bounds the
    run, so the page keeps showing something.
    """
    if getattr(args, "serve", None) is None:
        return None
    if args.max_clients < 1:
        raise ValueError("--max-clients must be at least 1")
    if args.stream_fps is not None and args.stream_fps < 0:
        raise ValueError("--stream-fps must not be negative")
    stale_after = getattr(args, "stale_after", DEFAULT_STALE_AFTER_S)
    if not stale_after > 0:
        raise ValueError("--stale-after must be positive")
    try:
        from face_sentiment.live.server import LiveServer
    except ImportError as error:
        raise ImportError(f"--serve needs aiohttp ({error}): pip install -r pi/requirements.txt "
                          "(aiohttp==3.14.5)") from error
    host, port = args.serve
    token, origin = resolve_token(args)
    generated = token is None and not is_loopback(host)
    if generated:
        token = secrets.token_hex(16)  # hex: never starts with "-" (argparse)
    if (args.max_frames is None and getattr(args, "benchmark", None) is None
            and getattr(args, "soak", None) is None and not args.loop):
        args.loop = True
    publisher = LivePublisher(pipeline.classes, stream_fps=args.stream_fps or None,
                              jpeg_quality=args.jpeg_quality)
    # Names only: the page and /api/status are for viewers, not a map of the host's disk.
    publisher.info = {"source": display_source(source or args.source),
                      "pipeline": getattr(pipeline, "name", None),
                      "detector": getattr(getattr(pipeline, "detector", None), "name", None),
                      "model": Path(str(getattr(args, "model", None) or "")).name,
                      "classes": list(pipeline.classes), "colours": _overlay_colours()}
    server = LiveServer(publisher, host, port, token=token, max_clients=args.max_clients,
                        stale_after_s=stale_after)
    try:
        server.start()
    except OSError as error:
        publisher.close()
        reason = error.strerror or str(error)
        raise RuntimeError(f"--serve {host}:{port}: cannot listen there ({reason})") from error
    out = out or sys.stdout
    # A token from a file or the environment stays out of the output (and the logs).
    shown = token is not None and (generated or origin == "--token")
    where = server.url + (f"?token={quote(token, safe='')}" if shown else "")
    scope = "this machine only" if is_loopback(host) else "reachable from the network"
    print(f"live page ({scope}): {where}", file=out, flush=True)
    if generated:
        print(f"  the token was generated for this run (set ${TOKEN_ENV} or --token-file to "
              "choose one); the stream and the API refuse requests without it", file=out,
              flush=True)
    elif token is not None and not shown:
        print(f"  open it with ?token=<the token from {origin}>", file=out, flush=True)
    return LivePage(publisher, server)
