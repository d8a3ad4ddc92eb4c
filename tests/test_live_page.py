"""The live page in a real headless browser: Debian's Chromium driven by playwright-core
(pi/web/tests/live-page.mjs) against `pi/run.py --source demo --serve ... --token ...` with the
shipped model.

It checks that the MJPEG stream shows frames that change, that the face count and the timeline
follow the pushed records, that the token is enforced (API, stream and events answer 401; the
page asks for it), that on a phone-sized screen nothing overflows and a held face is marked,
and saves a screenshot to reports/live-page.png. The demo clip is made from
scikit-image's public-domain astronaut photograph: no dataset face is in the picture.
Skipped, saying what is missing, without chromium (`make system-deps`), node or
pi/web/node_modules (`make web-deps`).
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import ROOT
from test_live_server import needs_runner, start_runner, stop_runner

WEB = ROOT / "pi" / "web"
CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
SCREENSHOT = ROOT / "reports" / "live-page.png"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_data,  # the shipped model
    needs_runner,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="Debian's chromium is not installed (make system-deps)"),
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
    pytest.mark.skipif(not (WEB / "node_modules" / "playwright-core").is_dir(),
                       reason="pi/web/node_modules is missing: make web-deps (npm ci in pi/web)"),
]


def test_the_live_page_in_headless_chromium():
    token = secrets.token_hex(12)
    process, url = start_runner("--source", "demo", "--serve", "127.0.0.1:0", f"--token={token}",
                                "--quiet")
    try:
        base = url.split("?")[0]
        done = subprocess.run(["node", "tests/live-page.mjs", "--url", base, "--token", token,
                               "--chromium", str(CHROMIUM), "--screenshot", str(SCREENSHOT)],
                              cwd=WEB, capture_output=True, text=True, timeout=180)
    finally:
        code = stop_runner(process)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result from the browser script: {done.stdout[-2000:]} {done.stderr[-2000:]}"
    result = json.loads(lines[-1])
    failed = {name: c["detail"] for name, c in result["checks"].items() if not c["ok"]}
    assert result["ok"] and done.returncode == 0, (result.get("error"), failed, done.stderr[-2000:])
    for check in ("api refuses without token", "stream refuses without token",
                  "page asks for the token", "stream frames change", "records are pushed",
                  "face count shown", "timeline counts pushed records", "timeline has areas",
                  "held face marked", "nothing overflows a phone screen"):
        assert result["checks"][check]["ok"], check
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert code == 130  # the runner stopped on SIGTERM and wrote its summary
