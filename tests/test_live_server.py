"""The live page's server (`pi/run.py --serve`: live/publisher.py + live/server.py) over real
sockets: the bundle and nothing else, the token, the Host guard, the JSON-lines API, SSE, the
MJPEG stream, the client cap, stalled clients, and the committed bundle against its source.

Most tests feed the publisher synthetic frames from a thread (no model, no camera); the last
ones run the real runner on the demo clip with the shipped model (real_data).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import importlib.util
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import HAS_BLAZEFACE, HAS_SKIMAGE, ROOT, build_wheel, needs_uv

from face_sentiment.labels import FER2013_CLASSES

pytestmark = pytest.mark.skipif(importlib.util.find_spec("aiohttp") is None,
                                reason="aiohttp not installed (pip install aiohttp==3.14.5)")

WEB_SOURCE = ROOT / "pi" / "web"
BUNDLE = ROOT / "src" / "face_sentiment" / "live" / "web"
TOKEN = "s3cret-token-for-tests"


def _record(index: int) -> dict:
    label = FER2013_CLASSES[index % len(FER2013_CLASSES)]
    return {"frame": index, "time": round(time.time(), 3), "source": f"test#{index}",
            "faces": [{"track": 1, "box": [10.0, 10.0, 60.0, 60.0], "score": 0.9,
                       "label": label, "confidence": 0.8,
                       "probabilities": {c: 1 / 7 for c in FER2013_CLASSES},
                       "smoothed": {c: 1 / 7 for c in FER2013_CLASSES}}]}


class Feed:
    """Publishes a changing 640x480 frame and its record every `interval` s from a thread,
    timing every publish() call."""

    def __init__(self, publisher, interval: float = 0.01) -> None:
        self.publisher, self.interval = publisher, interval
        self.rng = np.random.default_rng(0)
        self.noise = self.rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
        self.index = 0
        self.max_publish_s = 0.0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            image = np.roll(self.noise, self.index * 7, axis=1)
            cv2.putText(image, str(self.index), (40, 240), cv2.FONT_HERSHEY_SIMPLEX, 4,
                        (255, 255, 255), 8)
            started = time.perf_counter()
            self.publisher.publish(image, _record(self.index))
            self.max_publish_s = max(self.max_publish_s, time.perf_counter() - started)
            self.index += 1
            time.sleep(self.interval)

    def start(self) -> Feed:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5)


@pytest.fixture
def serve():
    """serve(**server options) -> (server, feed), stopped after the test."""
    from face_sentiment.live.publisher import LivePublisher
    from face_sentiment.live.server import LiveServer

    started = []

    def start(feed: bool = True, stream_fps: float | None = None, **options):
        options.setdefault("stats_interval_s", 0.2)
        publisher = LivePublisher(FER2013_CLASSES, stream_fps=stream_fps)
        publisher.info = {"source": "test", "classes": list(FER2013_CLASSES)}
        server = LiveServer(publisher, "127.0.0.1", 0, **options)
        server.start()
        runner = Feed(publisher).start() if feed else None
        started.append((server, publisher, runner))
        return server, runner

    yield start
    for server, publisher, runner in started:
        if runner is not None:
            runner.stop()
        server.stop()
        publisher.close()


def request(server, path: str, headers: dict | None = None, method: str = "GET",
            read: bool = True):
    """(status, headers, body) of one request; the path is sent exactly as given."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request(method, path, headers=headers or {})
    response = connection.getresponse()
    body = response.read() if read else None
    result = (response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    if read:
        connection.close()
        return result
    return result + (_Closer(connection, response), response)


class _Closer:
    """Closes a streaming response and its connection (the response holds the socket)."""

    def __init__(self, connection, response) -> None:
        self.connection, self.response = connection, response

    def close(self) -> None:
        self.response.close()
        self.connection.close()


def wait_for(condition, timeout: float = 10.0, step: float = 0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(step)
    return condition()


def read_sse(response, until, timeout: float = 10.0) -> list[tuple[str, dict]]:
    """(event, data) pairs read from a text/event-stream until until(events) is true."""
    events, name, end = [], None, time.monotonic() + timeout
    while time.monotonic() < end and not until(events):
        line = response.readline().decode().rstrip("\r\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
    return events


def read_mjpeg_parts(response, count: int) -> list[bytes]:
    parts = []
    while len(parts) < count:
        line = response.readline().strip()
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
            while response.readline().strip():  # the rest of the part's headers
                pass
            parts.append(response.read(length))
    return parts


# ------------------------------------------------------------------------------------------
# Command line and small parts


def test_serve_address_parsing_defaults_to_localhost():
    from face_sentiment.live.publisher import is_loopback, parse_serve_address

    assert parse_serve_address("8080") == ("127.0.0.1", 8080)
    assert parse_serve_address("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_serve_address("[::1]:8080") == ("::1", 8080)
    assert parse_serve_address("localhost:0") == ("localhost", 0)
    for bad in ("abc", ":80", "70000", "[::1]8080", "host:port"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_serve_address(bad)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")


def test_runner_parser_has_the_serve_options():
    from face_sentiment.live.runner import build_parser

    args = build_parser().parse_args(["--serve", "8080"])
    assert args.serve == ("127.0.0.1", 8080) and args.token is None and args.max_clients == 8
    assert build_parser().parse_args([]).serve is None


def test_timeline_counts_labels_per_second_and_the_last_frame():
    from face_sentiment.live.publisher import Timeline

    timeline = Timeline(("happy", "sad"), seconds=3)
    for frame, (when, labels) in enumerate([(100.2, ["happy", "sad"]), (100.7, ["happy"]),
                                            (101.1, []), (102.5, ["sad", "unknown"]),
                                            (103.0, ["happy"])]):
        timeline.add({"frame": frame, "time": when, "faces": [{"label": x} for x in labels]})
    snapshot = timeline.snapshot()
    assert snapshot["last_frame"] == 4 and snapshot["seconds"] == 3
    assert snapshot["sequence"] == 5  # records counted (the publisher passes its numbers)
    assert [(b["t"], b["frames"], b["faces"], b["counts"]) for b in snapshot["buckets"]] == [
        (101, 1, 0, [0, 0]), (102, 1, 1, [0, 1]), (103, 1, 1, [1, 0])]  # 100 fell out


def test_bundle_table_leaves_out_dot_files_links_and_unknown_types(tmp_path):
    from face_sentiment.live.server import load_bundle

    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<p>hi")
    (tmp_path / "assets" / "a.js").write_text("x" * 2000)
    (tmp_path / ".env").write_text("SECRET=1")
    (tmp_path / "assets" / "notes.py").write_text("print()")
    (tmp_path / "assets" / "link.js").symlink_to(ROOT / "pyproject.toml")
    table = load_bundle(tmp_path)
    assert sorted(table) == ["/assets/a.js", "/index.html"]
    assert table["/assets/a.js"][1].startswith("text/javascript")
    assert table["/assets/a.js"][3] is not None  # gzipped copy of the larger file


# ------------------------------------------------------------------------------------------
# What is served, to whom


def test_the_page_and_its_assets_are_served_from_the_bundle(serve):
    server, _ = serve(feed=False)
    status, headers, body = request(server, "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'<div id="root">' in body
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    info = json.loads((BUNDLE / "build-info.json").read_text())
    for name in info["files"]:
        status, headers, body = request(server, f"/{name}")
        assert status == 200 and body == (BUNDLE / name).read_bytes(), name
        status, headers, packed = request(server, f"/{name}", {"Accept-Encoding": "gzip"})
        if headers.get("content-encoding") == "gzip":
            import gzip
            assert gzip.decompress(packed) == (BUNDLE / name).read_bytes()
    etag = request(server, "/")[1]["etag"]
    assert request(server, "/", {"If-None-Match": etag})[0] == 304


@pytest.mark.parametrize("path", [
    "/nope", "/api/nope", "/server.py", "/web/index.html", "/../server.py",
    "/../../../../etc/passwd", "/assets/../server.py", "/assets/../../publisher.py",
    "/%2e%2e/server.py", "/assets/%2e%2e/%2e%2e/server.py", "/..%2f..%2fserver.py",
    "//etc/passwd", "/assets/.hidden", "/assets/", "/index.html/", "/%00",
])
def test_unknown_paths_and_traversal_get_404_and_no_file(serve, path):
    server, _ = serve(feed=False)
    status, headers, body = request(server, path)
    assert status in (400, 404), (path, status)
    if status == 404:
        assert headers["content-type"].startswith("application/json")
        assert "error" in json.loads(body)
    assert b"import " not in body and b"root:" not in body


def test_other_methods_are_refused(serve):
    server, _ = serve(feed=False)
    status, headers, body = request(server, "/api/frames", method="POST")
    assert status == 405 and "read-only" in json.loads(body)["error"]
    assert request(server, "/", method="DELETE")[0] == 405
    assert request(server, "/stream.mjpg", method="HEAD")[0] == 405  # would hold a slot
    assert request(server, "/", method="HEAD")[0] == 200


PROTECTED = ["/api/frames", "/api/status", "/api/timeline", "/api/events", "/stream.mjpg",
             "/snapshot.jpg"]


@pytest.mark.parametrize("path", PROTECTED)
def test_the_stream_and_the_api_need_the_token(serve, path):
    server, _ = serve(token=TOKEN)
    status, headers, body = request(server, path)
    assert status == 401, path
    assert "token" in json.loads(body)["error"] and "bearer" in headers["www-authenticate"].lower()
    assert request(server, f"{path}?token=wrong")[0] == 401
    assert request(server, path, {"Authorization": "Bearer wrong"})[0] == 401
    for query, headers in ((f"?token={TOKEN}", {}), ("", {"Authorization": f"Bearer {TOKEN}"})):
        status, got, _, connection, response = request(server, path + query, headers, read=False)
        assert status == 200, (path, query)
        if not path.startswith(("/api/events", "/stream")):
            response.read()
        connection.close()


def test_the_page_is_public_and_sets_a_cookie_for_the_right_token(serve):
    server, _ = serve(token=TOKEN)
    assert request(server, "/")[0] == 200 and request(server, "/healthz")[0] == 200
    status, headers, _ = request(server, f"/?token={TOKEN}")
    cookie = headers["set-cookie"]
    assert status == 200 and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "set-cookie" not in request(server, "/?token=wrong")[1]
    assert request(server, "/api/status", {"Cookie": cookie.split(";")[0]})[0] == 200
    assert request(server, "/api/status", {"Cookie": "fs_live_token=wrong"})[0] == 401


def test_without_a_token_only_this_machines_names_are_answered(serve):
    server, _ = serve(feed=False)
    assert request(server, "/api/status")[0] == 200
    for host in ("localhost", f"localhost:{server.port}", "127.0.0.1", "[::1]:80"):
        assert request(server, "/api/status", {"Host": host})[0] == 200, host
    status, _, body = request(server, "/api/status", {"Host": "attacker.example:8080"})
    assert status == 403 and "rebinding" in json.loads(body)["error"]


def test_a_token_is_generated_and_printed_off_localhost(capsys):
    from face_sentiment.live.publisher import start_live_page
    from face_sentiment.live.runner import build_parser

    class Pipeline:
        classes = FER2013_CLASSES
        name = "fake"

    args = build_parser().parse_args(["--source", "demo", "--serve", "0.0.0.0:0"])
    page = start_live_page(args, Pipeline())
    try:
        printed = capsys.readouterr().out
        token = page.server.token
        assert token and len(token) >= 20 and f"?token={token}" in printed
        assert "reachable from the network" in printed and args.loop  # a file source loops
        assert request(page.server, "/api/status")[0] == 401
        assert request(page.server, f"/api/status?token={token}")[0] == 200
    finally:
        page.close()
    local = build_parser().parse_args(["--serve", "127.0.0.1:0", "--max-frames", "5"])
    page = start_live_page(local, Pipeline())
    try:
        assert page.server.token is None and not local.loop
        assert "this machine only" in capsys.readouterr().out
    finally:
        page.close()


def test_a_busy_port_is_a_clear_error(serve):
    from face_sentiment.live.publisher import start_live_page
    from face_sentiment.live.runner import build_parser

    server, _ = serve(feed=False)

    class Pipeline:
        classes = FER2013_CLASSES

    args = build_parser().parse_args(["--serve", f"127.0.0.1:{server.port}"])
    with pytest.raises(RuntimeError, match="cannot listen there"):
        start_live_page(args, Pipeline())


def test_the_token_comes_from_the_option_a_file_or_the_environment(tmp_path):
    from face_sentiment.live.publisher import MIN_TOKEN_LENGTH, TOKEN_ENV, resolve_token
    from face_sentiment.live.runner import build_parser

    def parse(*argv: str) -> argparse.Namespace:
        return build_parser().parse_args(["--serve", "0.0.0.0:0", *argv])

    secret = tmp_path / "live_token"
    secret.write_text("  file-token-0123456789  \nsecond line ignored\n")
    environ = {TOKEN_ENV: "environment-token-0123"}
    assert resolve_token(parse(), {}) == (None, None)
    assert resolve_token(parse(), environ) == ("environment-token-0123", f"${TOKEN_ENV}")
    assert resolve_token(parse("--token-file", str(secret)), environ) == (
        "file-token-0123456789", f"--token-file {secret}")  # an option beats the environment
    assert resolve_token(parse(f"--token={TOKEN}"), environ) == (TOKEN, "--token")
    with pytest.raises(ValueError, match="both given"):
        resolve_token(parse("--token", TOKEN, "--token-file", str(secret)), {})
    with pytest.raises(ValueError, match="cannot read it"):
        resolve_token(parse("--token-file", str(tmp_path / "absent")), {})
    secret.write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        resolve_token(parse("--token-file", str(secret)), {})
    short = "x" * (MIN_TOKEN_LENGTH - 1)
    for argv, env in (((f"--token={short}",), {}), ((), {TOKEN_ENV: short})):
        with pytest.raises(ValueError, match=f"has {len(short)} characters: use at least "
                                             f"{MIN_TOKEN_LENGTH}"):
            resolve_token(parse(*argv), env)
    assert resolve_token(parse(f"--token={'x' * MIN_TOKEN_LENGTH}"), {})[0] is not None


def test_a_token_from_the_environment_guards_the_page_and_is_not_printed(capsys, monkeypatch):
    from face_sentiment.live.publisher import TOKEN_ENV, start_live_page
    from face_sentiment.live.runner import build_parser

    class Pipeline:
        classes = FER2013_CLASSES
        name = "fake"

    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    args = build_parser().parse_args(["--source", "/home/someone/videos/party.mp4",
                                      "--serve", "0.0.0.0:0", "--max-frames", "5"])
    page = start_live_page(args, Pipeline())
    try:
        printed = capsys.readouterr().out
        assert page.server.token == TOKEN and TOKEN not in printed
        assert printed.count("http://") == 1 and f"${TOKEN_ENV}" in printed
        assert request(page.server, "/api/status")[0] == 401
        status, _, body = request(page.server, f"/api/status?token={TOKEN}")
        assert status == 200 and json.loads(body)["info"]["source"] == "party.mp4"
    finally:
        page.close()


def test_sources_and_models_are_named_without_the_hosts_paths():
    from face_sentiment.live.publisher import display_source

    assert display_source("/home/someone/videos/party 2026.mp4") == "party 2026.mp4"
    assert display_source("../clips/") == "clips" and display_source("clip.mp4") == "clip.mp4"
    assert display_source("0") == "camera 0" and display_source("/dev/video2") == "camera video2"
    assert display_source("demo") == "demo" and display_source("picam") == "picam"


def test_status_names_no_path_and_no_viewer_address(serve):
    """/api/status is readable by every viewer: no file path of the host, no client address."""
    from face_sentiment.live.publisher import start_live_page
    from face_sentiment.live.runner import build_parser

    class Pipeline:
        classes = FER2013_CLASSES
        name = "fake"

    model = ROOT / "models" / "face_sentiment_int8.tflite"
    args = build_parser().parse_args(["--source", str(ROOT / "clips" / "party.mp4"),
                                      "--model", str(model), "--serve", "127.0.0.1:0",
                                      "--max-frames", "5"])
    page = start_live_page(args, Pipeline())
    try:
        page.publish(None, _record(1))
        status, _, _, closer, _ = request(page.server, "/api/events", read=False)
        assert status == 200
        time.sleep(0.2)  # the events client is registered
        status, _, body = request(page.server, "/api/status")
        closer.close()
    finally:
        page.close()
    assert status == 200
    info = json.loads(body)
    assert info["info"]["source"] == "party.mp4"
    assert info["info"]["model"] == "face_sentiment_int8.tflite"
    assert info["clients"] and all(set(c) == {"kind", "since", "sent", "dropped", "queued"}
                                   for c in info["clients"])
    assert str(ROOT) not in body.decode() and "127.0.0.1\"" not in json.dumps(info["clients"])


def test_healthz_fails_when_no_frame_was_processed_for_the_limit():
    from face_sentiment.live.publisher import LivePublisher
    from face_sentiment.live.server import LiveServer

    now = [1000.0]
    publisher = LivePublisher(FER2013_CLASSES, clock=lambda: now[0])
    server = LiveServer(publisher, "127.0.0.1", 0, stale_after_s=5.0)
    server.start()

    def health() -> tuple[int, dict]:
        status, headers, body = request(server, "/healthz")
        assert headers["cache-control"] == "no-store"
        return status, json.loads(body)

    try:
        status, body = health()  # starting: no frame yet, within the limit
        assert status == 200 and body["ok"] and body["frames"] == 0
        now[0] += 6.0
        status, body = health()
        assert status == 503 and not body["ok"] and "since the start" in body["reason"]
        publisher.publish(None, _record(1))
        assert health()[0] == 200
        now[0] += 4.9
        status, body = health()
        assert status == 200 and body["last_frame_age_s"] == 4.9 and body["stale_after_s"] == 5
        now[0] += 0.3  # the pipeline hangs: no frame for 5.2 s
        status, body = health()
        assert status == 503 and body["frames"] == 1
        assert "no frame processed for 5.2 s (limit 5 s)" in body["reason"]
        publisher.publish(None, _record(2))  # it recovers
        assert health()[0] == 200
    finally:
        server.stop()
        publisher.close()


# ------------------------------------------------------------------------------------------
# The data: records, events, video


def test_api_frames_returns_the_log_lines_and_follows(serve):
    server, feed = serve()
    wait_for(lambda: feed.index > 30)
    status, headers, body = request(server, "/api/frames?limit=5")
    lines = body.decode().splitlines()
    assert status == 200 and headers["content-type"].startswith("application/x-ndjson")
    assert len(lines) == 5
    records = [json.loads(line) for line in lines]
    assert [r["frame"] for r in records] == list(range(records[0]["frame"],
                                                        records[0]["frame"] + 5))
    kept = {r["frame"]: r for r in server.publisher.records}
    assert all(line == json.dumps(kept[r["frame"]]) for line, r in zip(lines, records,
                                                                        strict=True))
    after = records[-1]["frame"]
    later = request(server, f"/api/frames?after={after}")[2].decode().splitlines()
    assert all(json.loads(line)["frame"] > after for line in later)
    assert request(server, "/api/frames?limit=x")[0] == 400
    assert request(server, "/api/frames?limit=-1")[0] == 400
    status, _, _, connection, response = request(server, "/api/frames?limit=1&follow=1",
                                                 read=False)
    frames = [json.loads(response.readline())["frame"] for _ in range(6)]
    connection.close()
    assert frames == sorted(frames) and len(set(frames)) == 6 and frames[-1] > after


def test_events_push_hello_then_every_record_and_stats(serve):
    server, feed = serve()
    wait_for(lambda: feed.index > 10)
    status, headers, _, connection, response = request(server, "/api/events", read=False)
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    events = read_sse(response, lambda e: sum(n == "stats" for n, _ in e) >= 2
                      and sum(n == "frame" for n, _ in e) >= 20)
    connection.close()
    assert events[0][0] == "hello"
    hello = events[0][1]
    assert hello["info"]["classes"] == list(FER2013_CLASSES)
    assert hello["timeline"]["last_frame"] is not None and hello["timeline"]["buckets"]
    assert hello["timeline"]["sequence"] == hello["timeline"]["last_frame"] + 1
    frames = [data["frame"] for name, data in events if name == "frame"]
    assert frames[0] > hello["timeline"]["last_frame"]  # none counted twice
    assert frames == list(range(frames[0], frames[0] + len(frames)))  # none lost
    stats = [data for name, data in events if name == "stats"][-1]
    assert stats["fps"] > 10 and stats["clients"]["records"] == 1
    assert {"cpu_percent_process", "rss_mb", "temperature_c"} <= set(stats["system"])


def test_the_mjpeg_stream_shows_changing_frames_encoded_only_when_watched(serve):
    server, feed = serve()
    wait_for(lambda: feed.index > 20)
    assert server.publisher.frames_encoded == 0  # nobody watches: nothing encoded
    status, headers, _, connection, response = request(server, "/stream.mjpg", read=False)
    assert status == 200
    assert headers["content-type"] == "multipart/x-mixed-replace; boundary=frame"
    parts = read_mjpeg_parts(response, 4)
    connection.close()
    images = [cv2.imdecode(np.frombuffer(part, np.uint8), cv2.IMREAD_COLOR) for part in parts]
    assert all(image is not None and image.shape == (480, 640, 3) for image in images)
    assert len({part for part in parts}) >= 3  # the frames change
    publisher = server.publisher
    assert 0 < publisher.frames_encoded <= publisher.frames_published  # once per frame at most
    wait_for(lambda: not server.clients)
    encoded = publisher.frames_encoded
    time.sleep(0.3)
    assert publisher.frames_encoded <= encoded + 1  # the viewer left: encoding stops
    status, headers, body = request(server, "/snapshot.jpg")
    assert status == 200 and headers["content-type"] == "image/jpeg" and body[:2] == b"\xff\xd8"


def test_the_client_cap_answers_503_and_frees_slots(serve):
    server, _ = serve(max_clients=2)
    held = [request(server, path, read=False) for path in ("/stream.mjpg", "/api/events")]
    assert all(h[0] == 200 for h in held)
    status, headers, body = request(server, "/api/frames?follow=1")
    assert status == 503 and "max-clients 2" in json.loads(body)["error"]
    assert headers["retry-after"] == "10"
    assert request(server, "/api/frames?limit=1")[0] == 200  # plain requests still answered
    held[0][3].close()
    assert wait_for(lambda: len(server.clients) == 1)
    again = request(server, "/stream.mjpg", read=False)
    assert again[0] == 200
    again[3].close()
    held[1][3].close()


@pytest.mark.slow
def test_a_client_that_never_reads_is_dropped_and_never_blocks_the_pipeline(serve):
    server, feed = serve(write_timeout_s=1.0)
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", server.port))
    stalled.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    idle = socket.create_connection(("127.0.0.1", server.port))  # sends nothing at all
    status, _, _, connection, response = request(server, "/stream.mjpg", read=False)
    healthy = read_mjpeg_parts(response, 2)  # a reading client is served meanwhile
    assert status == 200 and len(healthy) == 2
    assert wait_for(lambda: server.disconnected_slow >= 1, timeout=20)
    frames_then = feed.index
    assert wait_for(lambda: feed.index > frames_then + 20)  # the pipeline goes on
    assert feed.max_publish_s < 0.05, feed.max_publish_s
    assert read_mjpeg_parts(response, 2)  # and the healthy client still gets frames
    connection.close()
    stalled.close()
    idle.close()
    assert wait_for(lambda: not server.clients)


# ------------------------------------------------------------------------------------------
# The committed bundle is the build of the committed source


def source_digest(root: Path = WEB_SOURCE) -> tuple[str, dict[str, str]]:
    """The rule of pi/web/scripts/build-info.mjs: index.html, package.json,
    package-lock.json, vite.config.js and every file under src/ and scripts/ (no dot files);
    SHA-256 of the sorted "<sha256>  <path>" lines."""
    paths = [root / name for name in ("index.html", "package.json", "package-lock.json",
                                      "vite.config.js")]
    for folder in ("src", "scripts"):
        for path in sorted((root / folder).rglob("*")):
            relative = path.relative_to(root)
            if path.is_file() and not any(p.startswith(".") for p in relative.parts):
                paths.append(path)
    files = {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
             for path in paths}
    listing = "".join(f"{files[name]}  {name}\n" for name in sorted(files))
    return hashlib.sha256(listing.encode()).hexdigest(), files


def test_the_committed_bundle_is_built_from_the_committed_source():
    info = json.loads((BUNDLE / "build-info.json").read_text())
    digest, files = source_digest()
    changed = sorted(set(files) ^ set(info["sources"])
                     | {n for n in files if info["sources"].get(n) != files[n]})
    assert info["source_sha256"] == digest and not changed, (
        f"src/face_sentiment/live/web/ was built from other sources (changed: {changed}): "
        "run `make web` and commit the bundle")
    built = {path.relative_to(BUNDLE).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
             for path in BUNDLE.rglob("*") if path.is_file() and path.name != "build-info.json"}
    assert built == info["files"], "the bundle's files differ from those its build wrote"
    index = (BUNDLE / "index.html").read_text()
    assert all(f"./{name}" in index for name in info["files"] if name.startswith("assets/"))
    assert sum((BUNDLE / name).stat().st_size for name in info["files"]) < 400_000  # small


@pytest.mark.slow
@pytest.mark.skipif(not (WEB_SOURCE / "node_modules" / ".bin" / "vite").exists()
                    or shutil.which("node") is None,
                    reason="node or pi/web/node_modules missing (make web-deps: npm ci in pi/web)")
def test_building_the_source_again_gives_the_committed_bundle(tmp_path):
    out = tmp_path / "bundle"
    done = subprocess.run([str(WEB_SOURCE / "node_modules" / ".bin" / "vite"), "build",
                           "--outDir", str(out), "--emptyOutDir", "--logLevel", "warn"],
                          cwd=WEB_SOURCE, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    rebuilt = {path.relative_to(out).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
               for path in out.rglob("*") if path.is_file()}
    info = json.loads((BUNDLE / "build-info.json").read_text())
    assert rebuilt == info["files"], "make web gives another bundle than the committed one"


@pytest.mark.slow
@needs_uv
def test_the_wheel_carries_the_bundle(tmp_path):
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    info = json.loads((BUNDLE / "build-info.json").read_text())
    expected = {f"face_sentiment/live/web/{name}" for name in [*info["files"], "build-info.json"]}
    assert expected <= names, sorted(expected - names)
    assert {"face_sentiment/live/server.py", "face_sentiment/live/publisher.py"} <= names


# ------------------------------------------------------------------------------------------
# The real runner


def start_runner(*args: str, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """pi/run.py with `args` (--serve 127.0.0.1:0 ...); returns it and the printed URL."""
    process = subprocess.Popen([sys.executable, str(ROOT / "pi" / "run.py"), *args],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        line = process.stdout.readline()
        if line.startswith("live page"):
            return process, line.split(": ", 1)[1].strip()
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError(f"the runner printed no URL: {process.stderr.read()[-2000:]}")


def stop_runner(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()


needs_runner = pytest.mark.skipif(
    not (HAS_SKIMAGE and HAS_BLAZEFACE and (ROOT / "models/face_sentiment_int8.tflite").exists()),
    reason="needs scikit-image (demo clip), the BlazeFace models and the shipped model")


@pytest.mark.slow
@pytest.mark.real_data
@needs_runner
def test_the_runner_serves_the_records_of_its_log(tmp_path):
    log_path = tmp_path / "results.jsonl"
    process, url = start_runner("--source", "demo", "--serve", "127.0.0.1:0", f"--token={TOKEN}",
                                "--log", str(log_path), "--quiet")
    try:
        assert url.endswith(f"?token={TOKEN}")
        base = url.split("?")[0]
        port = int(base.rstrip("/").rsplit(":", 1)[1])

        class Server:
            pass

        server = Server()
        server.port = port
        assert wait_for(lambda: log_path.exists() and log_path.stat().st_size > 20_000, 30)
        status, _, body = request(server, f"/api/frames?limit=20&token={TOKEN}")
        served = body.decode().splitlines()
        snapshot = request(server, "/snapshot.jpg", {"Authorization": f"Bearer {TOKEN}"})
    finally:
        code = stop_runner(process)
    assert status == 200 and len(served) == 20
    logged = set(log_path.read_text().splitlines())
    assert set(served) <= logged  # the very lines of the JSON-lines log
    assert snapshot[0] == 200 and cv2.imdecode(np.frombuffer(snapshot[2], np.uint8),
                                               cv2.IMREAD_COLOR).shape == (480, 640, 3)
    assert code == 130  # SIGTERM: summary written, like Ctrl-C


@pytest.mark.slow
@pytest.mark.real_data
@needs_runner
def test_the_runner_refuses_a_busy_port_with_exit_2():
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    try:
        done = subprocess.run([sys.executable, str(ROOT / "pi" / "run.py"), "--source", "demo",
                               "--serve", str(blocker.getsockname()[1]), "--quiet"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120,
                              env={**os.environ})
    finally:
        blocker.close()
    assert done.returncode == 2
    assert "cannot listen there" in done.stderr


@pytest.mark.slow
@pytest.mark.real_data
@needs_runner
def test_the_runner_started_elsewhere_finds_its_model_and_says_things_once(tmp_path):
    """pi/run.py from another folder finds the shipped model beside its code (not ./models);
    the URL is printed once; --quiet also hides the runtime's XNNPACK start-up line; a short
    token is refused with the reason."""
    def run(*extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "pi" / "run.py"), "--source", "demo",
                               "--benchmark", "3", "--warmup", "0", "--serve", "127.0.0.1:0",
                               *extra], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120, env={**base, **(env or {})})

    # an in-process CLI test may have set the quiet flag in this process: not for these runs
    base = {k: v for k, v in os.environ.items() if k != "FACE_SENTIMENT_QUIET"}
    loud = run("--out", str(tmp_path / "loud"))
    assert loud.returncode == 0, loud.stderr[-2000:]
    summary = json.loads((tmp_path / "loud" / "benchmark.json").read_text())
    assert summary["model"] == str(ROOT / "models" / "face_sentiment_int8.tflite")
    assert (loud.stdout + loud.stderr).count("http://127.0.0.1:") == 1
    if summary["interpreter"] == "ai_edge_litert.interpreter":  # tflite-runtime prints none
        assert "XNNPACK" in loud.stderr
    quiet = run("--quiet", "--out", str(tmp_path / "quiet"))
    assert quiet.returncode == 0 and "XNNPACK" not in quiet.stdout + quiet.stderr, quiet.stderr
    short = run("--quiet", env={"FACE_SENTIMENT_TOKEN": "short"})
    assert short.returncode == 2
    assert "the token ($FACE_SENTIMENT_TOKEN) has 5 characters: use at least 16" in short.stderr


def test_io_helpers_read_what_the_server_writes():
    """read_mjpeg_parts/read_sse parse the formats the server writes (guards the helpers)."""
    stream = io.BytesIO(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: 3\r\n"
                        b"X-Frame: 1\r\n\r\nabc\r\n--frame\r\n")
    assert read_mjpeg_parts(stream, 1) == [b"abc"]
    stream = io.BytesIO(b"retry: 2000\n\nevent: hello\ndata: {\"a\": 1}\n\n")
    assert read_sse(stream, lambda e: len(e) == 1) == [("hello", {"a": 1})]
