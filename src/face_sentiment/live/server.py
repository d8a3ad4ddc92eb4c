"""The live page's server (`pi/run.py --serve`): aiohttp in a background thread.

Runs its own asyncio event loop in one daemon thread of the runner's process; the pipeline
hands it frames and records through `publisher.LivePublisher` and never waits for it.

- `/`, `/assets/...`, `/build-info.json`: the built React page (`live/web/`, nothing else);
  public (it holds no data).
- `/stream.mjpg`: the annotated video as MJPEG (`multipart/x-mixed-replace`: any browser's
  `<img>` shows it); `/snapshot.jpg`: one fresh annotated frame.
- `/api/events`: Server-Sent Events: `hello` (the run, the timeline so far, stats), `frame`
  (every record, as in the JSON-lines log), `stats` (1 Hz: FPS, stage times, CPU, temperature).
- `/api/frames`: the latest records as JSON lines, the log's own lines (`?limit=N`,
  `?after=FRAME`; `?follow=1` keeps streaming them).
- `/api/status`, `/api/timeline`: stats and clients (counts and queues, no addresses);
  per-second label counts.
- `/healthz`: `{"ok": true, ...}` for health checks (no token); HTTP 503 with a reason when no
  frame was processed for `stale_after_s` (a stalled pipeline, a lost source).

Every streaming client has a bounded queue (video: the 2 newest JPEGs; records: the 256
newest); a full queue drops its oldest entry, so a slow client skips frames, and one whose
socket accepts nothing for `write_timeout_s` is disconnected. At most `max_clients` streaming
connections at once (HTTP 503 beyond). With a token, the stream and the API need it (`?token=`,
`Authorization: Bearer`, or the HttpOnly cookie the page gets when opened with `?token=`);
without one (the default on 127.0.0.1) the Host header must name this machine (against DNS
rebinding). Files are served from an in-memory table of the bundle made at start: no request
path reaches the file system.

This module keeps the server's lifecycle (its thread and event loop), the hand-offs from the
pipeline and the 1 Hz statistics; the routes are live.handlers, the token and the viewer
limit live.access, the bundle's table live.bundle.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import deque
from pathlib import Path

from aiohttp import web

from face_sentiment.live.access import StreamClient, TokenGuard, Viewers
from face_sentiment.live.benchmark import read_throttled
from face_sentiment.live.bundle import WEB_DIR, load_bundle
from face_sentiment.live.handlers import LiveHandlers, sse
from face_sentiment.live.publisher import (
    DEFAULT_STALE_AFTER_S,
    HISTORY_RECORDS,
    LivePublisher,
)

__all__ = ["WEB_DIR", "LiveServer", "load_bundle"]  # load_bundle: imported from here by tests

log = logging.getLogger("face_sentiment.live.server")


class LiveServer:
    """aiohttp app serving the bundle, the MJPEG stream, SSE and the JSON API."""

    def __init__(self, publisher: LivePublisher, host: str = "127.0.0.1", port: int = 8080, *,
                 token: str | None = None, max_clients: int = 8, bundle: Path = WEB_DIR,
                 video_queue: int = 2, record_queue: int = 256, write_timeout_s: float = 10.0,
                 stats_interval_s: float = 1.0, heartbeat_s: float = 15.0,
                 records_interval_s: float = 0.05,
                 stale_after_s: float = DEFAULT_STALE_AFTER_S) -> None:
        self.publisher, self.host, self.port = publisher, host, port
        self.guard = TokenGuard(token)
        self.viewers = Viewers(publisher, max_clients)
        self.files = load_bundle(bundle)
        self.video_queue, self.record_queue = video_queue, record_queue
        self.write_timeout_s, self.stats_interval_s = write_timeout_s, stats_interval_s
        self.heartbeat_s = heartbeat_s
        self.records_interval_s = records_interval_s
        self.stale_after_s = stale_after_s
        self.latest_stats: dict | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._throttled: dict | None = None
        self._jpegs_sent_window: deque[float] = deque(maxlen=512)
        self.app = LiveHandlers(self).make_app()

    # The viewers' and the token's state, under the names callers and tests read.

    @property
    def token(self) -> str | None:
        return self.guard.token

    @property
    def max_clients(self) -> int:
        return self.viewers.max_clients

    @property
    def clients(self) -> list[StreamClient]:
        return self.viewers.clients

    @property
    def refused(self) -> int:
        return self.viewers.refused

    @property
    def disconnected_slow(self) -> int:
        return self.viewers.disconnected_slow

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            import socket
            host = socket.gethostname()
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    def start(self, timeout: float = 15.0) -> None:
        """Bind and serve in a background thread; raises OSError when the port cannot be
        bound."""
        self._thread = threading.Thread(target=self._serve, name="live-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise OSError(110, "the live server did not start in time")
        if self._error is not None:
            raise self._error
        self.publisher.listener = self
        log.debug("live page on %s", self.url)  # start_live_page prints it (with the token)

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._start())
        except BaseException as error:  # noqa: BLE001 - handed to start()'s caller
            self._error = error
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_until_complete(self._run_until_stopped())
        finally:
            loop.run_until_complete(self._cleanup())
            loop.close()

    async def _start(self) -> None:
        self._stop = asyncio.Event()
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, shutdown_timeout=1.0,
                           reuse_address=True)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or ()
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def _run_until_stopped(self) -> None:
        tasks = [asyncio.ensure_future(self._stats_loop()),
                 asyncio.ensure_future(self._records_loop())]
        try:
            await self._stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _cleanup(self) -> None:
        self.viewers.close()
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._runner.cleanup(), 3.0)

    def stop(self) -> None:
        """Stop serving (open streams end); safe to call twice."""
        self.publisher.listener = None
        loop = self.loop
        if loop is not None and self._stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=5)

    # --- hand-offs from the pipeline's threads (LivePublisher.listener) -----------------------

    def _call(self, callback, *args) -> None:
        loop = self.loop
        if loop is None or self.viewers.closed:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(callback, *args)

    def on_jpeg(self, jpeg: bytes, frame: int | None) -> None:
        self._call(self._broadcast_jpeg, jpeg, frame)

    def _broadcast_jpeg(self, jpeg: bytes, frame: int | None) -> None:
        self._jpegs_sent_window.append(time.monotonic())
        self.viewers.push(("video", "snapshot"), (frame, jpeg))

    async def _records_loop(self) -> None:
        """Every `records_interval_s`, the records published since the last round go to the
        listening clients (nothing per frame crosses threads; nothing at all while nobody
        listens)."""
        publisher = self.publisher
        sequence = publisher.frames_published
        while True:
            await asyncio.sleep(self.records_interval_s)
            if not publisher.record_clients:
                sequence = publisher.frames_published
                continue
            new = publisher.records_since(sequence)
            if new:
                sequence = new[-1][0]
                self._broadcast_records(new)

    def _broadcast_records(self, records: list[tuple[int, dict]]) -> None:
        """Queue (sequence, bytes) of each record for the listening clients, serialized once."""
        kinds = {client.kind for client in self.viewers.clients}
        for sequence, record in records:
            text = json.dumps(record)
            event = f"event: frame\ndata: {text}\n\n".encode() if "events" in kinds else None
            line = (text + "\n").encode() if "frames" in kinds else None
            for client in self.viewers.clients:
                if client.kind == "events":
                    client.push((sequence, event))
                elif client.kind == "frames":
                    client.push((sequence, line))

    def server_info(self) -> dict:
        """What /api/status and the SSE hello say about this server (no paths, no addresses)."""
        return {"host": self.host, "port": self.port, "token_required": self.token is not None,
                "max_clients": self.max_clients, "history_records": HISTORY_RECORDS,
                "stream_fps_limit": round(1.0 / self.publisher.min_interval, 2)
                if self.publisher.min_interval else None}

    # --- the 1 Hz statistics -----------------------------------------------------------------

    async def _stats_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_throttle = 0.0
        self.publisher.system()  # the CPU baseline
        while True:
            await asyncio.sleep(self.stats_interval_s)
            now = time.monotonic()
            if now >= next_throttle:  # vcgencmd (a Pi only) is a subprocess: off the loop
                next_throttle = now + 10.0
                with contextlib.suppress(Exception):
                    self._throttled = await loop.run_in_executor(None, read_throttled)
            self.latest_stats = self.compute_stats()
            # No sequence: never filtered out as already sent.
            self.viewers.push(("events",), (None, sse("stats", self.latest_stats)))

    def compute_stats(self) -> dict:
        publisher = self.publisher
        latest = publisher.latest_record or {}
        window = [t for t in self._jpegs_sent_window if t >= time.monotonic() - 2.0]
        encoded = publisher.frames_encoded
        return {
            "time": round(time.time(), 3),
            "frame": latest.get("frame"),
            "frames": publisher.frames_published,
            "fps": publisher.fps(),
            "faces": len(latest.get("faces") or ()),
            "stages_ms": publisher.take_stage_means(),
            "system": {**publisher.system(), "throttled": self._throttled},
            "stream": {"frames_encoded": encoded,
                       "encode_ms_mean": round(publisher.encode_ms_total / encoded, 2)
                       if encoded else None,
                       "fps": round(len(window) / 2.0, 1)},
            "clients": {"video": publisher.video_clients, "records": publisher.record_clients,
                        "max": self.max_clients, "refused": self.viewers.refused,
                        "dropped_frames": sum(c.dropped for c in self.viewers.clients),
                        "disconnected_slow": self.viewers.disconnected_slow},
        }

