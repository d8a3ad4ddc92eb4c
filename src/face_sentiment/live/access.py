"""Who may use the live page, and how many at once (the guards of live.server).

- `TokenGuard`: with a token, the stream and the API need it (`?token=`, `Authorization:
  Bearer`, or the HttpOnly cookie the page gets when opened with `?token=`); without one (the
  default on 127.0.0.1) the Host header must name this machine, against DNS rebinding. The page
  itself, its assets and /healthz stay public: they hold no data.
- `Viewers`: the open streaming connections, each a `StreamClient` with a bounded queue (a full
  queue drops its oldest entry, so a slow viewer skips frames); at most `max_clients` at once
  (HTTP 503 beyond), and the counts the publisher and /api/status read.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections import deque

from aiohttp import web

from face_sentiment.live.publisher import LivePublisher, is_loopback

COOKIE = "fs_live_token"
PROTECTED = ("/api/", "/stream.mjpg", "/snapshot.jpg")  # need the token when one is set


class StreamClient:
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


class TokenGuard:
    """The token check (an aiohttp middleware) and the cookie the page gets."""

    def __init__(self, token: str | None) -> None:
        self.token = token or None

    def authorized(self, request: web.Request) -> bool:
        """The request carries the token (any of its three ways), or none is needed."""
        if self.token is None:
            return True
        expected = self.token.encode()
        return any(hmac.compare_digest(value.encode(), expected)
                   for value in _candidates(request))

    @staticmethod
    def is_protected(path: str) -> bool:
        return path.startswith(PROTECTED)

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        if self.token is None:
            if request.host and not is_loopback(host_name(request.host)):
                raise web.HTTPForbidden(
                    text=f"Host {request.host!r} is not this machine: without a token the live "
                         "page answers only requests addressed to localhost/127.0.0.1 (DNS "
                         "rebinding guard); start the runner with --token to serve other names")
        elif self.is_protected(request.path) and not self.authorized(request):
            raise web.HTTPUnauthorized(
                text="this live page needs its access token: open the address the runner "
                     "printed (.../?token=...), or send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": 'Bearer realm="face-sentiment live"'})
        return await handler(request)

    def set_cookie(self, request: web.Request, response: web.StreamResponse) -> None:
        """The page opened with a valid `?token=` keeps it in an HttpOnly cookie, so its own
        requests (the stream's <img>, EventSource) need not carry it."""
        if self.token and request.query.get("token") and self.authorized(request):
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict", path="/")


def _candidates(request: web.Request) -> list[str]:
    found = [request.query.get("token"), request.cookies.get(COOKIE)]
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        found.append(header[7:].strip())
    return [value for value in found if value]


def host_name(host: str) -> str:
    """The name in a Host header, without the port ('[::1]:8080' -> '::1')."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Viewers:
    """The streaming connections: admitted up to `max_clients`, counted for the publisher (it
    encodes JPEGs and keeps records only while someone watches) and for /api/status."""

    def __init__(self, publisher: LivePublisher, max_clients: int) -> None:
        self.publisher, self.max_clients = publisher, max_clients
        self.clients: list[StreamClient] = []
        self.refused = 0  # turned away at the limit
        self.disconnected_slow = 0  # dropped for reading nothing within the write timeout
        self.closed = False

    def admit(self, kind: str, maxlen: int) -> StreamClient:
        """A new client of `kind` ('video', 'snapshot', 'events', 'frames'), or HTTP 503."""
        if self.closed:
            raise web.HTTPServiceUnavailable(text="the runner is stopping")
        if len(self.clients) >= self.max_clients:
            self.refused += 1
            raise web.HTTPServiceUnavailable(
                text=f"too many viewers: {len(self.clients)} streaming connections are open, "
                     f"the most this runner serves (--max-clients {self.max_clients}); a page "
                     "holds two", headers={"Retry-After": "10"})
        client = StreamClient(kind, maxlen)
        self.clients.append(client)
        self._count()
        return client

    def release(self, client: StreamClient) -> None:
        with contextlib.suppress(ValueError):
            self.clients.remove(client)
        self._count()

    def close(self) -> None:
        """Admit no one from now on, and wake every open stream so that it ends."""
        self.closed = True
        for client in list(self.clients):
            client.event.set()

    def push(self, kinds: tuple[str, ...], item) -> None:
        """Queue `item` for every client of these kinds."""
        for client in self.clients:
            if client.kind in kinds:
                client.push(item)

    def _count(self) -> None:
        self.publisher.video_clients = sum(c.kind in ("video", "snapshot") for c in self.clients)
        self.publisher.record_clients = sum(c.kind in ("events", "frames") for c in self.clients)
