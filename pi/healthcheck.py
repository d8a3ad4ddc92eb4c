#!/usr/bin/env python3
"""Health check of the runner image (pi/Dockerfile's HEALTHCHECK): `GET /healthz` of the live
page that the runner in this container serves.

The address is read from the runner's own command line (`--serve [HOST:]PORT` of a process in
/proc), so a page on any port is checked; 0.0.0.0 and :: are checked on loopback. A container
whose runner has no `--serve` (`--benchmark`, `--soak`, `predict`, a camera run that only logs)
has no page to ask: it reports healthy while running, since Docker and Podman keep only one
health check per image. Exit 0: healthy, 1: unhealthy (the line printed is the check's log).
Standard library only: it runs every 30 s next to the runner.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def serve_address() -> str | None:
    """The `--serve` value of the first process that has one, or None."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:  # the process ended while we looked
            continue
        for i, arg in enumerate(argv):
            if arg == "--serve" and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith("--serve="):
                return arg.split("=", 1)[1]
    return None


def healthz_url(value: str) -> str:
    """`PORT`, `HOST:PORT` or `[IPv6]:PORT` (publisher.parse_serve_address's forms) -> URL."""
    host, _, port = value.strip().rpartition(":")
    host = host.strip("[]") if host else "127.0.0.1"
    host = ANY_ADDRESS.get(host, host)
    return f"http://{f'[{host}]' if ':' in host else host}:{int(port)}/healthz"


def main() -> int:
    value = serve_address()
    if value is None:
        print("no live page (the runner was started without --serve): nothing to check")
        return 0
    try:
        url = healthz_url(value)
        with urllib.request.urlopen(url, timeout=3) as response:
            body = json.loads(response.read())
    except (OSError, ValueError) as error:  # URLError, a timeout, a refused port, bad JSON
        print(f"unhealthy: --serve {value}: {error}")
        return 1
    if body.get("ok") is not True:
        print(f"unhealthy: {url} answered {body}")
        return 1
    print(f"healthy: {url}: {body.get('frames')} frames published")
    return 0


if __name__ == "__main__":
    sys.exit(main())
