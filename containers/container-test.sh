#!/usr/bin/env bash
# The container test (`make container-test`, which .ci/run calls after `make test`): run the
# images containers/podman.sh built (`podman.sh test` builds them first):
#
#   1. face-sentiment-pi: its HEALTHCHECK, user (not root) and commit (label and environment);
#      the demo clip with --serve 0.0.0.0:8080 --token, published on a free 127.0.0.1 port: the
#      page, one MJPEG frame, 401 without the token, the health check healthy, SIGTERM -> 130;
#      `--benchmark` into its default folder (reports/pi-bench under /app), on the model of
#      record of a mounted registry (its current version, not models/); `predict` on a
#      mounted folder with one photo (skimage's astronaut, taken from the image itself). The
#      image has no model: models/ is mounted read-only at /app/models;
#   2. face-sentiment-workbench: its user (not root) writes the reports' index to a bind
#      mount: the files are that user's on the host and name the image's commit; then
#      `face-sentiment --help` and `make test-fast` inside.
#
# `container-test.sh pi` runs the first part only. Prints the time of each step. Needs podman
# (containers/podman.sh deps) and python3.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"
IMAGE_PREFIX="${IMAGE_PREFIX:-face-sentiment}"
runner="$IMAGE_PREFIX-pi"
workbench="$IMAGE_PREFIX-workbench"
started=$SECONDS
step() { printf '[container-test +%ds] %s\n' "$((SECONDS - started))" "$*" >&2; }
fail() { echo "container-test: $*" >&2; exit 1; }
# Without systemd (CI containers, most VMs) podman logs an error for each health-check timer
# it cannot add or remove; harmless here (the check is run by hand below), so filtered out.
# One-shot runs pass --no-healthcheck instead.
quiet() { "$@" 2> >(grep -v "unable to get systemd connection" >&2); }

# The image's commit: its label, the same as $FACE_SENTIMENT_COMMIT inside; "unknown" only
# when built outside a git checkout. Prints it.
image_commit() {
  local label env
  label="$(podman image inspect --format \
    '{{index .Config.Labels "org.opencontainers.image.revision"}}' "$1")"
  env="$(podman image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$1" \
    | sed -n 's/^FACE_SENTIMENT_COMMIT=//p')"
  [[ -n "$label" && "$label" != "<no value>" ]] \
    || fail "$1 has no org.opencontainers.image.revision label (build it with containers/podman.sh)"
  [[ "$env" == "$label" ]] || fail "$1: \$FACE_SENTIMENT_COMMIT '$env' is not its label '$label'"
  if [[ "$label" == unknown ]] && git -C "$root" rev-parse -q --verify HEAD >/dev/null 2>&1; then
    fail "$1 says commit 'unknown' in a git checkout: build it with containers/podman.sh" \
      "(it passes --build-arg FACE_SENTIMENT_COMMIT)"
  fi
  echo "$label"
}

# The owner of a file a container wrote, as the container saw it (rootless podman maps the
# container's uids to subordinate ones on the host).
owner_uid() {
  if [[ "$(podman info --format '{{.Host.Security.Rootless}}')" == true ]]; then
    podman unshare stat -c %u "$1"
  else
    stat -c %u "$1"
  fi
}

token="$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
name="fs-live-test-$$"
bench="fs-bench-test-$$"
tmp="$(mktemp -d)"
chmod 755 "$tmp"  # the containers' users (uid 1000) read below it
cleanup() {
  podman rm -f "$name" "$bench" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
# The image carries no model: the committed models/ is the model of record unless a registry
# with a current version is mounted at /registry.
models=(-v "$root/models:/app/models:ro")

step "runner image: health check, user, commit"
health="$(podman image inspect --format '{{json .Config.Healthcheck}}' "$runner")"
[[ "$health" == *healthcheck.py* ]] \
  || fail "$runner has no HEALTHCHECK ($health): build it with --format docker (podman.sh does)"
uid="$(podman run --rm --no-healthcheck --entrypoint id "$runner" -u)"
[[ "$uid" != 0 ]] || fail "$runner runs as root"
echo "runner: uid $uid, commit $(image_commit "$runner")"

step "runner image: demo clip, live page on 127.0.0.1:$port"
quiet podman run -d --name "$name" "${models[@]}" -p "127.0.0.1:$port:8080" "$runner" \
  --source demo --serve 0.0.0.0:8080 --token="$token" >/dev/null

python3 - "$port" "$token" <<'EOF'
"""The page, 401 without the token, one frame of the MJPEG stream, one record."""
import http.client
import json
import sys
import time

port, token = int(sys.argv[1]), sys.argv[2]


def get(path, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers=headers or {})
    return connection, connection.getresponse()


deadline = time.monotonic() + 120
while True:
    try:
        connection, response = get("/healthz")
        if response.status == 200 and json.loads(response.read())["frames"] > 0:
            break
    except (OSError, http.client.HTTPException, ValueError):
        pass
    if time.monotonic() > deadline:
        sys.exit("the runner's live page did not come up in 120 s")
    time.sleep(0.5)

_, response = get("/")
page = response.read()
assert response.status == 200 and b'<div id="root">' in page, (response.status, page[:200])
_, response = get("/api/status")
assert response.status == 401, response.status
_, response = get("/stream.mjpg")
assert response.status == 401, response.status

connection, response = get(f"/stream.mjpg?token={token}")
assert response.status == 200, response.status
assert response.getheader("Content-Type").startswith("multipart/x-mixed-replace")
length = None
while length is None:
    line = response.readline().strip()
    if line.lower().startswith(b"content-length:"):
        length = int(line.split(b":")[1])
while response.readline().strip():
    pass
jpeg = response.read(length)
connection.close()
assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9", "not a JPEG"

_, response = get("/api/frames?limit=1", {"Authorization": f"Bearer {token}"})
record = json.loads(response.read())
assert response.status == 200 and "faces" in record and "frame" in record
print(f"page {len(page)} bytes, one stream frame {len(jpeg)} bytes (JPEG), "
      f"record of frame {record['frame']} with {len(record['faces'])} face(s); "
      "401 without the token")
EOF
# Read the log whole first: `podman logs | grep -q` fails under pipefail when grep stops early.
runner_log="$(podman logs "$name" 2>&1)"
grep -q "live page (reachable from the network)" <<<"$runner_log" \
  || { echo "$runner_log"; echo "no live page line in the runner's log" >&2; exit 1; }
# The image's HEALTHCHECK, run now rather than by podman's timer (no systemd here).
quiet podman healthcheck run "$name" >/dev/null \
  || fail "the serving runner is unhealthy:" \
          "$(podman inspect "$name" --format '{{json .State.Health}}')"
podman inspect "$name" --format 'health check: {{range .State.Health.Log}}{{.Output}}{{end}}'
quiet podman stop -t 20 "$name" >/dev/null
code="$(podman inspect "$name" --format '{{.State.ExitCode}}')"
[[ "$code" == 130 ]] || { podman logs "$name" | tail -20; fail "runner exit $code, not 130"; }
step "runner image: live page passed (healthy; SIGTERM -> exit 130 with its summary)"

step "runner image: --benchmark 20 on the demo clip, the model of record from a registry"
# A registry whose current version is another model (the previous shipped one): the runner's
# default must be that version, read through the mount, not models/.
mkdir -p "$tmp/registry/versions/v0002"
cp "$root/models/teachers/ensemble-v1/face_sentiment_int8.tflite" \
  "$root/models/teachers/ensemble-v1/model_card.json" "$tmp/registry/versions/v0002/"
echo '{"version": "v0002", "stack": ["v0001", "v0002"]}' >"$tmp/registry/current.json"
chmod -R a+rX "$tmp/registry"
podman run --name "$bench" --no-healthcheck "${models[@]}" -v "$tmp/registry:/registry:ro" \
  "$runner" --source demo --benchmark 20 --warmup 2 \
  >"$tmp/bench.log" 2>&1 || { tail -20 "$tmp/bench.log"; fail "the benchmark failed"; }
podman cp "$bench:/app/reports/pi-bench" "$tmp/" \
  || fail "no /app/reports/pi-bench in the benchmark's container"
python3 - "$tmp/pi-bench" <<'PY'
import json
import sys
from pathlib import Path

folder = Path(sys.argv[1])
summary = json.loads((folder / "benchmark.json").read_text())
assert summary["frames"] == 20, summary["frames"]
rows = (folder / "benchmark_frames.csv").read_text().splitlines()
assert len(rows) == 21, len(rows)  # a header, then one row per timed frame
assert summary["model"] == "/registry/versions/v0002/face_sentiment_int8.tflite", summary["model"]
print(f"benchmark: {summary['frames']} frames, {summary['fps_end_to_end']} FPS on "
      f"{summary['model']} -> /app/reports/pi-bench/benchmark.json and benchmark_frames.csv")
PY

step "runner image: predict on a mounted folder"
mkdir "$tmp/photos"
podman run --rm --no-healthcheck --entrypoint sh "$runner" \
  -c 'cat /opt/venv/lib/python3*/site-packages/skimage/data/astronaut.png' \
  >"$tmp/photos/astronaut.png"
podman run --rm --no-healthcheck "${models[@]}" -v "$tmp/photos:/photos:ro" "$runner" \
  predict /photos \
  >"$tmp/predict.json" 2>"$tmp/predict.err" || { cat "$tmp/predict.err"; fail "predict failed"; }
python3 - "$tmp/predict.json" <<'PY'
import json
import sys

records = json.load(open(sys.argv[1]))
assert records and all(r["file"] == "/photos/astronaut.png" for r in records), records
first = records[0]
assert first["top"] in first["emotions"], first
assert abs(sum(first["emotions"].values()) - 1) < 0.01, first
print(f"predict: {len(records)} face(s) in /photos/astronaut.png, the first {first['top']} "
      f"({first['confidence']:.2f}) at {first['box']}")
PY
step "runner image passed"
[[ "${1:-}" == pi ]] && exit 0

step "workbench image: user, commit of a report written to a bind mount, face-sentiment --help"
commit="$(image_commit "$workbench")"
mkdir -m 777 "$tmp/reports"  # writable by whatever uid the container's user is on the host
podman run --rm -v "$tmp/reports:/workbench/reports" "$workbench" bash -c '
  face-sentiment --help >/dev/null && id -u &&
  python -c "from face_sentiment.reports import write_index; write_index(\"ci\", \"none\")"' \
  >"$tmp/uid"
uid="$(<"$tmp/uid")"
[[ "$uid" != 0 ]] || fail "$workbench runs as root"
owner="$(owner_uid "$tmp/reports/index.json")"
[[ "$owner" == "$uid" ]] || fail "reports/index.json belongs to uid $owner, not the image's $uid"
written="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["commit"])' \
  "$tmp/reports/index.json")"
[[ "$written" == "$commit" ]] || fail "the report says commit '$written', the image is" \
  "'$commit' (reports.git_commit must return \$FACE_SENTIMENT_COMMIT: no .git in the image)"
echo "workbench: uid $uid owns the bind-mounted reports/index.json; it says commit $written"

step "workbench image: make test-fast"
podman run --rm "$workbench" make test-fast
step "container test passed"
