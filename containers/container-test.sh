#!/usr/bin/env bash
# The container test (`make container-test`, which .ci/run calls after `make test`): run the
# images containers/podman.sh built (`podman.sh test` builds them first):
#
#   1. face-sentiment-pi on the demo clip with --serve 0.0.0.0:8080 --token, published on a
#      free 127.0.0.1 port: the page, one MJPEG frame, 401 without the token, SIGTERM -> 130;
#   2. face-sentiment-workbench: `face-sentiment --help` and `make test-fast` inside.
#
# `container-test.sh pi` runs the first part only. Prints the time of each step. Needs podman
# (containers/podman.sh deps) and python3.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"
IMAGE_PREFIX="${IMAGE_PREFIX:-face-sentiment}"
started=$SECONDS
step() { printf '[container-test +%ds] %s\n' "$((SECONDS - started))" "$*" >&2; }

token="$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
name="fs-live-test-$$"
cleanup() { podman rm -f "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT

step "runner image: demo clip, live page on 127.0.0.1:$port"
podman run -d --name "$name" -p "127.0.0.1:$port:8080" "$IMAGE_PREFIX-pi" \
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
podman stop -t 20 "$name" >/dev/null
code="$(podman inspect "$name" --format '{{.State.ExitCode}}')"
[[ "$code" == 130 ]] || { podman logs "$name" | tail -20; echo "runner exit $code, not 130" >&2; exit 1; }
step "runner image passed (SIGTERM -> exit 130 with its summary)"
[[ "${1:-}" == pi ]] && exit 0

step "workbench image: face-sentiment --help"
podman run --rm "$IMAGE_PREFIX-workbench" face-sentiment --help >/dev/null
step "workbench image: make test-fast"
podman run --rm "$IMAGE_PREFIX-workbench" make test-fast
step "container test passed"
