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
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import hmac
import json
import logging
import threading
import time
from collections import deque
from pathlib import Path

from aiohttp import web

from face_sentiment.live.benchmark import read_throttled
from face_sentiment.live.publisher import (
    DEFAULT_STALE_AFTER_S,
    HISTORY_RECORDS,
    LivePublisher,
    is_loopback,
)

log = logging.getLogger("face_sentiment.live.server")

WEB_DIR = Path(__file__).resolve().with_name("web")
COOKIE = "fs_live_token"
BOUNDARY = "frame"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".json": "application/json",
                 ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon",
                 ".txt": "text/plain; charset=utf-8", ".woff2": "font/woff2"}
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
       "connect-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'")
PROTECTED = ("/api/", "/stream.mjpg", "/snapshot.jpg")  # need the token when one is set


class _Client:
    """One streaming connection: a bounded queue (newest kept) and its counters. Its address is
    not kept: /api/status is readable by every viewer."""

    __slots__ = ("kind", "since", "queue", "event", "sent", "dropped")

    def __init__(self, kind: str, maxlen: int) -> None:
        self.kind, self.since = kind, time.time()
        self.queue: deque = deque(maxlen=maxlen)
        self.event = asyncio.Event()
        self.sent = self.dropped = 0

    def push(self, item) -> None:
        if len(self.queue) == self.queue.maxlen:
            self.dropped += 1
        self.queue.append(item)
        self.event.set()

    def describe(self) -> dict:
        return {"kind": self.kind, "since": round(self.since, 3),
                "sent": self.sent, "dropped": self.dropped, "queued": len(self.queue)}


class _SlowClientError(Exception):
    pass


def load_bundle(folder: Path = WEB_DIR) -> dict[str, tuple[bytes, str, str, bytes | None]]:
    """URL path -> (content, content type, ETag, gzipped content or None) of every regular file
    of the bundle.

    Dot files, symbolic links and unknown file types are left out. Read once at start: a
    request path is only ever looked up in this table.
    """
    table: dict[str, tuple[bytes, str, str, bytes | None]] = {}
    if not folder.is_dir():
        return table
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if (path.is_symlink() or not path.is_file()
                or any(part.startswith(".") for part in relative.parts)):
            continue
        content_type = CONTENT_TYPES.get(path.suffix.lower())
        if content_type is None:
            continue
        content = path.read_bytes()
        etag = '"' + hashlib.sha256(content).hexdigest()[:20] + '"'
        packed = gzip.compress(content, 9, mtime=0) if len(content) > 1024 else None
        table["/" + relative.as_posix()] = (content, content_type, etag, packed)
    return table


MISSING_BUNDLE = (b"<!doctype html><meta charset=utf-8><title>face sentiment live</title>"
                  b"<p>The live page's bundle is missing from this installation "
                  b"(face_sentiment/live/web/). Build it with <code>make web</code>. The "
                  b"stream is at <a href=/stream.mjpg>/stream.mjpg</a>, the records at "
                  b"<a href=/api/frames>/api/frames</a>.")


class LiveServer:
    """aiohttp app serving the bundle, the MJPEG stream, SSE and the JSON API."""

    def __init__(self, publisher: LivePublisher, host: str = "127.0.0.1", port: int = 8080, *,
                 token: str | None = None, max_clients: int = 8, bundle: Path = WEB_DIR,
                 video_queue: int = 2, record_queue: int = 256, write_timeout_s: float = 10.0,
                 stats_interval_s: float = 1.0, heartbeat_s: float = 15.0,
                 records_interval_s: float = 0.05,
                 stale_after_s: float = DEFAULT_STALE_AFTER_S) -> None:
        self.publisher, self.host, self.port = publisher, host, port
        self.token = token or None
        self.max_clients = max_clients
        self.files = load_bundle(bundle)
        self.video_queue, self.record_queue = video_queue, record_queue
        self.write_timeout_s, self.stats_interval_s = write_timeout_s, stats_interval_s
        self.heartbeat_s = heartbeat_s
        self.records_interval_s = records_interval_s
        self.stale_after_s = stale_after_s
        self.clients: list[_Client] = []
        self.refused = self.disconnected_slow = 0
        self.latest_stats: dict | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._throttled: dict | None = None
        self._jpegs_sent_window: deque[float] = deque(maxlen=512)
        self.app = self._make_app()

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
        self._closing = True
        for client in list(self.clients):
            client.event.set()
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
        if loop is None or self._closing:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(callback, *args)

    def on_jpeg(self, jpeg: bytes, frame: int | None) -> None:
        self._call(self._broadcast_jpeg, jpeg, frame)

    def _broadcast_jpeg(self, jpeg: bytes, frame: int | None) -> None:
        self._jpegs_sent_window.append(time.monotonic())
        for client in self.clients:
            if client.kind in ("video", "snapshot"):
                client.push((frame, jpeg))

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
        kinds = {client.kind for client in self.clients}
        for sequence, record in records:
            text = json.dumps(record)
            event = f"event: frame\ndata: {text}\n\n".encode() if "events" in kinds else None
            line = (text + "\n").encode() if "frames" in kinds else None
            for client in self.clients:
                if client.kind == "events":
                    client.push((sequence, event))
                elif client.kind == "frames":
                    client.push((sequence, line))

    def _count_clients(self) -> None:
        self.publisher.video_clients = sum(c.kind in ("video", "snapshot") for c in self.clients)
        self.publisher.record_clients = sum(c.kind in ("events", "frames") for c in self.clients)

    # --- the app -----------------------------------------------------------------------------

    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors, self._guard],
                              client_max_size=64 * 1024)
        app.router.add_get("/healthz", self._healthz)
        # Streams answer GET only: a HEAD would hold a client slot for a body nobody reads.
        app.router.add_get("/stream.mjpg", self._stream, allow_head=False)
        app.router.add_get("/snapshot.jpg", self._snapshot, allow_head=False)
        app.router.add_get("/api/events", self._events, allow_head=False)
        for path in ("/stream.mjpg", "/snapshot.jpg", "/api/events"):
            app.router.add_route("HEAD", path, self._no_head)
        app.router.add_get("/api/frames", self._frames)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/api/timeline", self._timeline)
        app.router.add_get("/{path:.*}", self._static)
        app.on_response_prepare.append(self._headers)
        return app

    @staticmethod
    async def _headers(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        if response.content_type == "text/html":
            response.headers.setdefault("Content-Security-Policy", CSP)
        if request.path.startswith(("/api/", "/stream", "/snapshot")):
            response.headers.setdefault("Cache-Control", "no-store")

    @web.middleware
    async def _errors(self, request: web.Request, handler):
        """Every HTTP error as JSON with a sentence saying what went wrong."""
        try:
            return await handler(request)
        except web.HTTPException as error:
            if error.status < 400:
                raise
            message = error.text if error.text and not error.text.startswith(
                f"{error.status}:") else _default_message(error.status, request)
            headers = {k: v for k, v in error.headers.items()
                       if k.lower() in ("allow", "retry-after", "www-authenticate")}
            return web.json_response({"error": message, "status": error.status},
                                     status=error.status, headers=headers)

    @staticmethod
    def _is_api(path: str) -> bool:
        return path.startswith(PROTECTED)

    @web.middleware
    async def _guard(self, request: web.Request, handler):
        if self.token is None:
            if request.host and not is_loopback(_host_name(request.host)):
                raise web.HTTPForbidden(
                    text=f"Host {request.host!r} is not this machine: without a token the live "
                         "page answers only requests addressed to localhost/127.0.0.1 (DNS "
                         "rebinding guard); start the runner with --token to serve other names")
        elif self._is_api(request.path) and not self._authorized(request):
            raise web.HTTPUnauthorized(
                text="this live page needs its access token: open the address the runner "
                     "printed (.../?token=...), or send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": 'Bearer realm="face-sentiment live"'})
        return await handler(request)

    def _candidates(self, request: web.Request) -> list[str]:
        found = [request.query.get("token"), request.cookies.get(COOKIE)]
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            found.append(header[7:].strip())
        return [value for value in found if value]

    def _authorized(self, request: web.Request) -> bool:
        if self.token is None:
            return True
        expected = self.token.encode()
        return any(hmac.compare_digest(value.encode(), expected)
                   for value in self._candidates(request))

    def _admit(self, request: web.Request, kind: str, maxlen: int) -> _Client:
        if self._closing:
            raise web.HTTPServiceUnavailable(text="the runner is stopping")
        if len(self.clients) >= self.max_clients:
            self.refused += 1
            raise web.HTTPServiceUnavailable(
                text=f"too many viewers: {len(self.clients)} streaming connections are open, "
                     f"the most this runner serves (--max-clients {self.max_clients}); a page "
                     "holds two", headers={"Retry-After": "10"})
        client = _Client(kind, maxlen)
        self.clients.append(client)
        self._count_clients()
        return client

    def _release(self, client: _Client) -> None:
        with contextlib.suppress(ValueError):
            self.clients.remove(client)
        self._count_clients()

    async def _write(self, request: web.Request, response: web.StreamResponse,
                     data: bytes) -> None:
        try:
            await asyncio.wait_for(response.write(data), self.write_timeout_s)
        except TimeoutError:
            self.disconnected_slow += 1
            log.warning("live page: dropped %s, which read nothing for %g s", request.remote,
                        self.write_timeout_s)
            if request.transport is not None:
                request.transport.abort()
            raise _SlowClientError() from None

    @staticmethod
    def _drain(client: _Client, first, after: int | None) -> tuple[bytes, int]:
        """`first` and everything queued behind it that is newer than `after`, as one write
        (record events only), and how many records that is."""
        items = [first] + [client.queue.popleft() for _ in range(len(client.queue))]
        kept = [data for sequence, data in items
                if sequence is None or after is None or sequence > after]
        return b"".join(kept), sum(1 for sequence, _ in items if sequence is not None)

    async def _next(self, client: _Client, timeout: float):
        """The client's next queued item, or None after `timeout` s or when stopping."""
        while not client.queue:
            if self._closing:
                return None
            client.event.clear()
            try:
                await asyncio.wait_for(client.event.wait(), timeout)
            except TimeoutError:
                return None
        return client.queue.popleft()

    # --- handlers ----------------------------------------------------------------------------

    @staticmethod
    async def _no_head(request: web.Request) -> web.Response:
        raise web.HTTPMethodNotAllowed("HEAD", ["GET"], text=f"HEAD is not served on "
                                       f"{request.path}: it is a stream; use GET")

    async def _healthz(self, request: web.Request) -> web.Response:
        health = self.publisher.health(self.stale_after_s)
        return web.json_response(health, status=200 if health["ok"] else 503,
                                 headers={"Cache-Control": "no-store"})

    async def _static(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["path"]
        if path == "/":
            path = "/index.html"
        entry = self.files.get(path)
        if entry is None:
            if path == "/index.html":
                return web.Response(body=MISSING_BUNDLE, content_type="text/html")
            raise web.HTTPNotFound(text=f"no such page: {request.path} (the live page is /, "
                                        "the API /api/..., the stream /stream.mjpg)")
        content, content_type, etag, packed = entry
        headers = {"ETag": etag, "Vary": "Accept-Encoding",
                   "Cache-Control": "public, max-age=31536000, immutable"
                   if path.startswith("/assets/") else "no-cache"}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        if packed is not None and "gzip" in request.headers.get("Accept-Encoding", ""):
            headers["Content-Encoding"] = "gzip"
            content = packed
        response = web.Response(body=content, headers=headers)
        response.headers["Content-Type"] = content_type
        if path == "/index.html" and self.token and request.query.get("token") and \
                self._authorized(request):
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict", path="/")
        return response

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        client = self._admit(request, "video", self.video_queue)
        try:
            response = web.StreamResponse(headers={
                "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                "Connection": "close", "Pragma": "no-cache"})
            await response.prepare(request)
            await self._write(request, response, f"--{BOUNDARY}\r\n".encode())
            if self.publisher.latest_jpeg is not None:
                client.push((self.publisher.latest_jpeg_frame, self.publisher.latest_jpeg))
            while not self._closing:
                item = await self._next(client, self.heartbeat_s)
                if item is None:  # no new frame for a while: resend the last (keep-alive)
                    if self._closing or self.publisher.latest_jpeg is None:
                        continue
                    item = (self.publisher.latest_jpeg_frame, self.publisher.latest_jpeg)
                frame, jpeg = item
                header = (f"Content-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n"
                          f"X-Frame: {frame}\r\n\r\n").encode()
                await self._write(request, response,
                                  header + jpeg + f"\r\n--{BOUNDARY}\r\n".encode())
                client.sent += 1
        except (ConnectionError, _SlowClientError):
            pass
        finally:
            self._release(client)
        return response

    async def _snapshot(self, request: web.Request) -> web.Response:
        client = self._admit(request, "snapshot", 1)
        try:
            item = await self._next(client, 5.0)
        finally:
            self._release(client)
        if item is None:
            if self.publisher.latest_jpeg is None:
                raise web.HTTPServiceUnavailable(text="no frame yet: the runner has not "
                                                      "produced one in 5 s",
                                                 headers={"Retry-After": "5"})
            item = (self.publisher.latest_jpeg_frame, self.publisher.latest_jpeg)
        frame, jpeg = item
        return web.Response(body=jpeg, content_type="image/jpeg",
                            headers={"X-Frame": str(frame)})

    def _hello(self) -> dict:
        timeline = self.publisher.timeline.snapshot()
        return {"info": self.publisher.info, "server": self._server_info(),
                "timeline": timeline, "stats": self.latest_stats,
                "latest": self.publisher.latest_record, "time": time.time()}

    def _server_info(self) -> dict:
        return {"host": self.host, "port": self.port, "token_required": self.token is not None,
                "max_clients": self.max_clients, "history_records": HISTORY_RECORDS,
                "stream_fps_limit": round(1.0 / self.publisher.min_interval, 2)
                if self.publisher.min_interval else None}

    async def _events(self, request: web.Request) -> web.StreamResponse:
        client = self._admit(request, "events", self.record_queue)
        try:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                                   "X-Accel-Buffering": "no"})
            await response.prepare(request)
            hello = self._hello()
            last = hello["timeline"]["sequence"]  # records up to it are in the hello's timeline
            await self._write(request, response, b"retry: 2000\n\n" + _sse("hello", hello))
            await self._pump(request, response, client, last, keep_alive=b": keep-alive\n\n")
        except (ConnectionError, _SlowClientError):
            pass
        finally:
            self._release(client)
        return response

    async def _pump(self, request: web.Request, response: web.StreamResponse, client,
                    last: int, keep_alive: bytes | None = None) -> None:
        """Send the client's queued items until the server closes; `keep_alive` goes out when
        nothing came within the heartbeat interval (SSE comments keep proxies from timing out)."""
        while not self._closing:
            item = await self._next(client, self.heartbeat_s)
            if item is None:
                if keep_alive and not self._closing:
                    await self._write(request, response, keep_alive)
                continue
            data, count = self._drain(client, item, last)
            if data:
                await self._write(request, response, data)
                client.sent += count

    async def _frames(self, request: web.Request) -> web.StreamResponse:
        try:
            limit = int(request.query.get("limit", HISTORY_RECORDS))
            after = request.query.get("after")
            after = None if after in (None, "") else int(after)
        except ValueError:
            raise web.HTTPBadRequest(text="limit and after must be whole numbers") from None
        if limit < 0:
            raise web.HTTPBadRequest(text="limit must not be negative")
        follow = request.query.get("follow", "0").lower() in ("1", "true", "yes")
        client = self._admit(request, "frames", self.record_queue) if follow else None
        entries = self.publisher.records_since(0)
        last = entries[-1][0] if entries else self.publisher.frames_published
        records = [r for _, r in entries]
        if after is not None:
            records = [r for r in records if r.get("frame", -1) > after]
        records = records[-limit:] if limit else []
        body = "".join(json.dumps(r) + "\n" for r in records).encode()
        if client is None:
            return web.Response(body=body, content_type="application/x-ndjson")
        try:
            response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
            await response.prepare(request)
            if body:
                await self._write(request, response, body)
            await self._pump(request, response, client, last)
        except (ConnectionError, _SlowClientError):
            pass
        finally:
            self._release(client)
        return response

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response({"info": self.publisher.info, "server": self._server_info(),
                                  "stats": self.latest_stats,
                                  "clients": [c.describe() for c in self.clients],
                                  "refused": self.refused,
                                  "disconnected_slow": self.disconnected_slow})

    async def _timeline(self, request: web.Request) -> web.Response:
        return web.json_response(self.publisher.timeline.snapshot())

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
            data = _sse("stats", self.latest_stats)  # no sequence: never filtered
            for client in self.clients:
                if client.kind == "events":
                    client.push((None, data))

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
                        "max": self.max_clients, "refused": self.refused,
                        "dropped_frames": sum(c.dropped for c in self.clients),
                        "disconnected_slow": self.disconnected_slow},
        }


def _sse(event: str, payload: dict | None) -> bytes:
    return f"event: {event}\ndata: {json.dumps(payload)}\n\n".encode()


def _host_name(host: str) -> str:
    """The name in a Host header, without the port ('[::1]:8080' -> '::1')."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _default_message(status: int, request: web.Request) -> str:
    if status == 404:
        return f"no such page: {request.path}"
    if status == 405:
        return f"{request.method} is not allowed on {request.path}: the live page is read-only"
    return f"HTTP {status}"
