"""The live page's HTTP routes, answered on live.server's event loop.

- `/`, `/assets/...`, `/build-info.json`: the built page (live.bundle's in-memory table).
- `/stream.mjpg`: the annotated video as MJPEG; `/snapshot.jpg`: one fresh annotated frame.
- `/api/events`: Server-Sent Events (`hello`, then `frame` and `stats`).
- `/api/frames`: the latest records as JSON lines (`?limit=N`, `?after=FRAME`, `?follow=1`).
- `/api/status`, `/api/timeline`; `/healthz` (no token, 503 when the pipeline stalled).

Streams go through the viewer's bounded queue (live.access.StreamClient); a write that the
socket does not accept within `write_timeout_s` drops that viewer. Every HTTP error is JSON
with a sentence saying what went wrong; every response carries the security headers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING

from aiohttp import web

from face_sentiment.live.access import StreamClient
from face_sentiment.live.bundle import MISSING_BUNDLE
from face_sentiment.live.publisher import HISTORY_RECORDS

if TYPE_CHECKING:  # the server builds the handlers; only a type here
    from face_sentiment.live.server import LiveServer

log = logging.getLogger("face_sentiment.live.server")

BOUNDARY = "frame"
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
       "connect-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'")
STREAMS = ("/stream.mjpg", "/snapshot.jpg", "/api/events")


class SlowClientError(Exception):
    """A viewer's socket accepted nothing for the write timeout: it was disconnected."""


def sse(event: str, payload: dict | None) -> bytes:
    """One Server-Sent Event."""
    return f"event: {event}\ndata: {json.dumps(payload)}\n\n".encode()


class LiveHandlers:
    """The aiohttp application of a `LiveServer`: its routes, middlewares and stream writers.

    Reads the server's settings and state (publisher, viewers, token guard, bundle, latest
    statistics) at request time, so it holds no copy that could go stale.
    """

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.publisher, self.viewers, self.guard = server.publisher, server.viewers, server.guard

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors, self.guard.middleware],
                              client_max_size=64 * 1024)
        app.router.add_get("/healthz", self._healthz)
        # Streams answer GET only: a HEAD would hold a client slot for a body nobody reads.
        app.router.add_get("/stream.mjpg", self._stream, allow_head=False)
        app.router.add_get("/snapshot.jpg", self._snapshot, allow_head=False)
        app.router.add_get("/api/events", self._events, allow_head=False)
        for path in STREAMS:
            app.router.add_route("HEAD", path, self._no_head)
        app.router.add_get("/api/frames", self._frames)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/api/timeline", self._timeline)
        app.router.add_get("/{path:.*}", self._static)
        app.on_response_prepare.append(_security_headers)
        return app

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

    # --- the page and the plain API ----------------------------------------------------------

    @staticmethod
    async def _no_head(request: web.Request) -> web.Response:
        raise web.HTTPMethodNotAllowed("HEAD", ["GET"], text=f"HEAD is not served on "
                                       f"{request.path}: it is a stream; use GET")

    async def _healthz(self, request: web.Request) -> web.Response:
        health = self.publisher.health(self.server.stale_after_s)
        return web.json_response(health, status=200 if health["ok"] else 503,
                                 headers={"Cache-Control": "no-store"})

    async def _static(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["path"]
        if path == "/":
            path = "/index.html"
        entry = self.server.files.get(path)
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
        if path == "/index.html":
            self.guard.set_cookie(request, response)
        return response

    async def _status(self, request: web.Request) -> web.Response:
        viewers = self.viewers
        return web.json_response({"info": self.publisher.info,
                                  "server": self.server.server_info(),
                                  "stats": self.server.latest_stats,
                                  "clients": [c.describe() for c in viewers.clients],
                                  "refused": viewers.refused,
                                  "disconnected_slow": viewers.disconnected_slow})

    async def _timeline(self, request: web.Request) -> web.Response:
        return web.json_response(self.publisher.timeline.snapshot())

    # --- the streams -------------------------------------------------------------------------

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        """MJPEG: each new annotated frame as one part; the last again when none came within
        the heartbeat interval (keep-alive)."""
        client = self.viewers.admit("video", self.server.video_queue)
        try:
            response = web.StreamResponse(headers={
                "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                "Connection": "close", "Pragma": "no-cache"})
            await response.prepare(request)
            await self._write(request, response, f"--{BOUNDARY}\r\n".encode())
            if self.publisher.latest_jpeg is not None:
                client.push(self._latest_jpeg())
            while not self.viewers.closed:
                item = await self._next(client, self.server.heartbeat_s)
                if item is None:  # no new frame for a while: resend the last (keep-alive)
                    if self.viewers.closed or self.publisher.latest_jpeg is None:
                        continue
                    item = self._latest_jpeg()
                frame, jpeg = item
                header = (f"Content-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n"
                          f"X-Frame: {frame}\r\n\r\n").encode()
                await self._write(request, response,
                                  header + jpeg + f"\r\n--{BOUNDARY}\r\n".encode())
                client.sent += 1
        except (ConnectionError, SlowClientError):
            pass
        finally:
            self.viewers.release(client)
        return response

    async def _snapshot(self, request: web.Request) -> web.Response:
        client = self.viewers.admit("snapshot", 1)
        try:
            item = await self._next(client, 5.0)
        finally:
            self.viewers.release(client)
        if item is None:
            if self.publisher.latest_jpeg is None:
                raise web.HTTPServiceUnavailable(text="no frame yet: the runner has not "
                                                      "produced one in 5 s",
                                                 headers={"Retry-After": "5"})
            item = self._latest_jpeg()
        frame, jpeg = item
        return web.Response(body=jpeg, content_type="image/jpeg",
                            headers={"X-Frame": str(frame)})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        """SSE: `hello` (the run, the timeline so far, stats), then every record as `frame`
        and the 1 Hz `stats`."""
        client = self.viewers.admit("events", self.server.record_queue)
        try:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                                   "X-Accel-Buffering": "no"})
            await response.prepare(request)
            hello = self._hello()
            last = hello["timeline"]["sequence"]  # records up to it are in the hello's timeline
            await self._write(request, response, b"retry: 2000\n\n" + sse("hello", hello))
            await self._pump(request, response, client, last, keep_alive=b": keep-alive\n\n")
        except (ConnectionError, SlowClientError):
            pass
        finally:
            self.viewers.release(client)
        return response

    async def _frames(self, request: web.Request) -> web.StreamResponse:
        """The latest records as the log's JSON lines; with ?follow=1, then every new one."""
        limit, after, follow = _frames_query(request)
        client = self.viewers.admit("frames", self.server.record_queue) if follow else None
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
        except (ConnectionError, SlowClientError):
            pass
        finally:
            self.viewers.release(client)
        return response

    # --- writing to a viewer -----------------------------------------------------------------

    def _latest_jpeg(self) -> tuple[int | None, bytes]:
        return self.publisher.latest_jpeg_frame, self.publisher.latest_jpeg

    def _hello(self) -> dict:
        timeline = self.publisher.timeline.snapshot()
        return {"info": self.publisher.info, "server": self.server.server_info(),
                "timeline": timeline, "stats": self.server.latest_stats,
                "latest": self.publisher.latest_record, "time": time.time()}

    async def _write(self, request: web.Request, response: web.StreamResponse,
                     data: bytes) -> None:
        timeout = self.server.write_timeout_s
        try:
            await asyncio.wait_for(response.write(data), timeout)
        except TimeoutError:
            self.viewers.disconnected_slow += 1
            log.warning("live page: dropped %s, which read nothing for %g s", request.remote,
                        timeout)
            if request.transport is not None:
                request.transport.abort()
            raise SlowClientError() from None

    async def _next(self, client: StreamClient, timeout: float):
        """The client's next queued item, or None after `timeout` s or when stopping."""
        while not client.queue:
            if self.viewers.closed:
                return None
            client.event.clear()
            try:
                await asyncio.wait_for(client.event.wait(), timeout)
            except TimeoutError:
                return None
        return client.queue.popleft()

    async def _pump(self, request: web.Request, response: web.StreamResponse,
                    client: StreamClient, last: int, keep_alive: bytes | None = None) -> None:
        """Send the client's queued items until the server closes; `keep_alive` goes out when
        nothing came within the heartbeat interval (SSE comments keep proxies from timing out)."""
        while not self.viewers.closed:
            item = await self._next(client, self.server.heartbeat_s)
            if item is None:
                if keep_alive and not self.viewers.closed:
                    await self._write(request, response, keep_alive)
                continue
            data, count = _drain(client, item, last)
            if data:
                await self._write(request, response, data)
                client.sent += count


def _drain(client: StreamClient, first, after: int | None) -> tuple[bytes, int]:
    """`first` and everything queued behind it that is newer than `after`, as one write
    (record events only), and how many records that is."""
    items = [first] + [client.queue.popleft() for _ in range(len(client.queue))]
    kept = [data for sequence, data in items
            if sequence is None or after is None or sequence > after]
    return b"".join(kept), sum(1 for sequence, _ in items if sequence is not None)


def _frames_query(request: web.Request) -> tuple[int, int | None, bool]:
    """/api/frames' ?limit=, ?after= and ?follow=, or HTTP 400."""
    try:
        limit = int(request.query.get("limit", HISTORY_RECORDS))
        after = request.query.get("after")
        after = None if after in (None, "") else int(after)
    except ValueError:
        raise web.HTTPBadRequest(text="limit and after must be whole numbers") from None
    if limit < 0:
        raise web.HTTPBadRequest(text="limit must not be negative")
    follow = request.query.get("follow", "0").lower() in ("1", "true", "yes")
    return limit, after, follow


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", CSP)
    if request.path.startswith(("/api/", "/stream", "/snapshot")):
        response.headers.setdefault("Cache-Control", "no-store")


def _default_message(status: int, request: web.Request) -> str:
    if status == 404:
        return f"no such page: {request.path}"
    if status == 405:
        return f"{request.method} is not allowed on {request.path}: the live page is read-only"
    return f"HTTP {status}"
