"""Running as a service: systemd's readiness and watchdog notifications over NOTIFY_SOCKET
(standard library only), and `StopRequest`, which turns SIGTERM and Ctrl-C into a stop after the
current frame so the summary is still written."""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import time
from collections.abc import Callable

log = logging.getLogger("face_sentiment.live.runner")


class SystemdNotifier:
    """sd_notify(3) over $NOTIFY_SOCKET with the standard library's socket (no dependency).

    `ready()`, `watchdog()` (at most every quarter of $WATCHDOG_USEC, monotonic clock),
    `status(text)` and `stopping()`; all do nothing outside systemd. A send error is logged
    once. An address starting with '@' is in the abstract namespace.
    """

    def __init__(self, environ: dict | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET") or ""
        if address.startswith("@"):
            address = "\0" + address[1:]
        self.address = address if address[:1] in ("/", "\0") else None
        self.watchdog_s: float | None = None
        try:
            usec = int(environ.get("WATCHDOG_USEC") or 0)
            pid = int(environ.get("WATCHDOG_PID") or os.getpid())
        except ValueError:
            usec, pid = 0, os.getpid()
        if usec > 0 and pid == os.getpid() and self.address:
            self.watchdog_s = usec / 1e6
        self.clock = clock
        self._socket: socket.socket | None = None
        self._next_ping = -math.inf
        self._next_status = -math.inf
        self._warned = False
        self.sent = 0

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *assignments: str) -> bool:
        if self.address is None:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX,
                                             socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.sendto("\n".join(assignments).encode("utf-8"), self.address)
        except OSError as error:
            if not self._warned:
                self._warned = True
                log.warning("sd_notify to %r failed: %s", self.address, error)
            return False
        self.sent += 1
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self, force: bool = False) -> bool:
        if self.watchdog_s is None:
            return False
        now = self.clock()
        if not force and now < self._next_ping:
            return False
        self._next_ping = now + self.watchdog_s / 4
        return self.notify("WATCHDOG=1")

    def status(self, text: str | Callable[[], str], every_s: float = 10.0) -> bool:
        if self.address is None or self.clock() < self._next_status:
            return False
        self._next_status = self.clock() + every_s
        return self.notify(f"STATUS={text() if callable(text) else text}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class StopRequest:
    """Signal handler for SIGTERM/SIGINT: inside the loop the first signal ends the run after
    the current frame (the summary is written); before the loop starts, or a second signal,
    raises KeyboardInterrupt at once."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.immediate = True

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def __call__(self, signum, frame) -> None:
        repeated = self.signal_name is not None
        self.signal_name = self.signal_name or signal.Signals(signum).name
        if self.immediate or repeated:
            raise KeyboardInterrupt(f"signal {signum}")


# ------------------------------------------------------------------------------------------
# Command line
