#!/usr/bin/env python3
"""End-to-end FPS of the Pi runner's benchmark with 0, 1, 3... live-page viewers connected.

    python pi/tools/viewer_bench.py --viewers 0 1 3 [--source clip.mp4|demo] [--frames 300]
                                    [--rounds 2] [--bad] [--out reports/pi-bench-viewers]

(`make pi-bench-viewers` runs it on $FACE_VIDEO_PATH, else the demo clip.) Each run is
`pi/run.py --benchmark FRAMES --loop --threads 1 --log ... --serve 127.0.0.1:0 --token ...`,
the settings of `make pi-bench` (without the fer comparison) plus the server; as soon as it
prints its address, N viewers connect, each like an open page: the MJPEG stream and the
Server-Sent Events, read as fast as they come, from threads of this process (not the
runner's). The warm-up (60 frames) gives them time to connect before the timing starts.
`--bad` adds a run with one viewer plus one client that never reads the stream (dropped after
the server's write timeout) and a thread sending unknown paths, traversal attempts and
requests without the token. Rounds are interleaved (0, 1, 3, 0, 1, 3...) so that a busy
machine slows all settings alike; the table keeps each setting's best round and the median.
Writes viewers.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Viewer:
    """One open page: /stream.mjpg and /api/events, read until the server goes away."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.bytes = {"stream": 0, "events": 0}
        self.jpegs = 0
        self.events = 0
        self.first = self.last = None
        self.threads = [threading.Thread(target=self._read, args=(path, kind), daemon=True)
                        for path, kind in (("/stream.mjpg", "stream"), ("/api/events", "events"))]

    def start(self) -> Viewer:
        for thread in self.threads:
            thread.start()
        return self

    def _read(self, path: str, kind: str) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
                sock.sendall(f"GET {path}?token={self.token} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "\r\n".encode())
                tail = b""
                while chunk := sock.recv(1 << 16):
                    self.bytes[kind] += len(chunk)
                    window = tail + chunk
                    if kind == "stream":
                        found = window.count(b"Content-Type: image/jpeg")
                        if found:  # the rate counts from the first frame, not the headers
                            self.last = time.monotonic()
                            self.first = self.first or self.last
                        self.jpegs += found
                    else:
                        self.events += window.count(b"event: frame")
                    tail = chunk[-32:]
        except OSError:
            pass

    def join(self, timeout: float = 10.0) -> None:
        for thread in self.threads:
            thread.join(timeout)

    @property
    def jpegs_per_s(self) -> float | None:
        if self.first is None or self.last is None or self.last <= self.first:
            return None
        return round(self.jpegs / (self.last - self.first), 1)


def stalled_client(port: int, token: str) -> socket.socket:
    """Asks for the stream and never reads it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET /stream.mjpg?token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return sock


def bad_requests(port: int, stop: threading.Event, counts: dict) -> None:
    """Unknown paths, traversal and requests without the token, 20 a second."""
    paths = ["/nope", "/../../etc/passwd", "/api/frames", "/stream.mjpg", "/assets/%2e%2e/x"]
    while not stop.is_set():
        for path in paths:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: "
                                 "close\r\n\r\n".encode())
                    status = sock.recv(64).split(b" ")[1].decode()
                    counts[status] = counts.get(status, 0) + 1
            except ConnectionRefusedError:
                return  # the run is over
            except (OSError, IndexError) as error:
                key = f"{path}: {type(error).__name__}"
                counts[key] = counts.get(key, 0) + 1
            stop.wait(0.05)


def run_once(args: argparse.Namespace, viewers: int, bad: bool, out: Path) -> dict:
    token = secrets.token_hex(12)
    command = [sys.executable, str(ROOT / "pi" / "run.py"), "--source", args.source, "--loop",
               "--model", args.model, "--benchmark", str(args.frames), "--warmup",
               str(args.warmup), "--threads", "1", "--out", str(out), "--quiet",
               "--log", str(out / "results.jsonl"), "--serve", "127.0.0.1:0", f"--token={token}"]
    (out / "results.jsonl").unlink(missing_ok=True)
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    port = None
    while True:
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith("live page"):
            port = int(line.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
            break
    if port is None:
        process.wait()
        raise SystemExit(f"the runner printed no address: {process.stderr.read()[-2000:]}")
    clients = [Viewer(port, token).start() for _ in range(viewers)]
    stalled, stop, counts, spammer = None, threading.Event(), {}, None
    if bad:
        stalled = stalled_client(port, token)
        spammer = threading.Thread(target=bad_requests, args=(port, stop, counts), daemon=True)
        spammer.start()
    stdout, stderr = process.communicate(timeout=600)
    stop.set()
    if stalled is not None:
        stalled.close()
    for client in clients:
        client.join()
    if process.returncode != 0:
        raise SystemExit(f"runner failed ({process.returncode}): {stderr[-2000:]}")
    summary = json.loads((out / "benchmark.json").read_text())
    return {"viewers": viewers, "bad_clients": bad,
            "fps_end_to_end": summary["fps_end_to_end"],
            "cpu_ms_per_frame": summary["cpu_ms_per_frame"],
            "total_p50_ms": summary["stages_ms"]["total"]["p50"],
            "faces_per_frame": summary["faces"]["mean_per_frame"],
            "frames": summary["frames"],
            "viewer_jpegs": [c.jpegs for c in clients],
            "viewer_jpegs_per_s": [c.jpegs_per_s for c in clients],
            "viewer_records": [c.events for c in clients],
            "viewer_mb": [round(sum(c.bytes.values()) / 2**20, 1) for c in clients],
            "bad_responses": counts or None}


def summarize(runs: list[dict], settings: list[tuple[int, bool]]) -> list[dict]:
    """Per setting: best and median FPS over the rounds, their change against 0 viewers."""
    table, base = [], None
    for viewers, bad in settings:
        mine = [r for r in runs if r["viewers"] == viewers and r["bad_clients"] == bad]
        fps = [r["fps_end_to_end"] for r in mine]
        rates = [v for r in mine for v in r.get("viewer_jpegs_per_s") or [] if v]
        row = {"viewers": viewers, "bad_clients": bad, "fps_best": max(fps),
               "fps_median": round(statistics.median(fps), 1),
               "cpu_ms_per_frame_median": round(statistics.median(
                   r["cpu_ms_per_frame"] for r in mine), 2),
               "total_p50_ms_median": round(statistics.median(
                   r["total_p50_ms"] for r in mine), 2),
               "viewer_jpegs_per_s": round(statistics.mean(rates), 1) if rates else None}
        if viewers == 0 and not bad:
            base = row
        elif base is not None:
            row["change_best_percent"] = round(100 * (row["fps_best"] / base["fps_best"] - 1), 1)
            row["change_median_percent"] = round(
                100 * (row["fps_median"] / base["fps_median"] - 1), 1)
        table.append(row)
    return table


def markdown(table: list[dict]) -> str:
    lines = ["| viewers | FPS end to end, best (median) | change, best (median) | CPU ms/frame "
             "| p50 total ms | JPEGs/s per viewer |", "| --- | --- | --- | --- | --- | --- |"]
    for row in table:
        name = f"{row['viewers']}" + (" + 1 stalled + bad requests" if row["bad_clients"]
                                      else "")
        change = ("—" if "change_best_percent" not in row else
                  f"{row['change_best_percent']:+.1f} % ({row['change_median_percent']:+.1f} %)")
        lines.append(f"| {name} | {row['fps_best']} ({row['fps_median']}) | {change} | "
                     f"{row['cpu_ms_per_frame_median']} | {row['total_p50_ms_median']} | "
                     f"{row['viewer_jpegs_per_s'] or '—'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, nargs="+", default=[0, 1, 3])
    parser.add_argument("--source", default=os.environ.get("FACE_VIDEO_PATH") or "demo")
    parser.add_argument("--model", default="models/face_sentiment_int8.tflite")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--bad", action="store_true",
                        help="also run 1 viewer + a stalled client + bad requests")
    parser.add_argument("--out", default="reports/pi-bench-viewers")
    args = parser.parse_args(argv)
    out = Path(args.out)
    settings = [(n, False) for n in args.viewers] + ([(1, True)] if args.bad else [])
    runs: list[dict] = []
    for round_ in range(args.rounds):
        for viewers, bad in settings:
            name = f"{viewers}{'-bad' if bad else ''}-r{round_}"
            result = run_once(args, viewers, bad, out / name)
            result["round"] = round_
            runs.append(result)
            print(f"round {round_}, {viewers} viewer(s){' + bad clients' if bad else ''}: "
                  f"{result['fps_end_to_end']} FPS, {result['cpu_ms_per_frame']} ms CPU/frame, "
                  f"viewers got {result['viewer_jpegs']} JPEGs", flush=True)
    table = summarize(runs, settings)
    report = {"source": args.source, "frames": args.frames, "warmup": args.warmup,
              "rounds": args.rounds, "model": args.model, "time": time.time(),
              "table": table, "runs": runs}
    out.mkdir(parents=True, exist_ok=True)
    (out / "viewers.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{args.frames} frames of {Path(args.source).name}, 1 thread, {args.rounds} "
          "rounds\n")
    print(markdown(table))
    print(f"\nwrote {out / 'viewers.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
