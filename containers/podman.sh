#!/usr/bin/env bash
# Build and run this project's images with Podman from Debian's packages only (no registry).
#
#   containers/podman.sh deps      apt-get install podman, runc, debootstrap (if missing)
#   containers/podman.sh base      debian:bookworm-slim made with debootstrap (skipped if present)
#   containers/podman.sh build     base, then the runner (pi/Dockerfile) and workbench images
#   containers/podman.sh build-pi  base, then the runner image only
#   containers/podman.sh test      build both, then the container test (make container-test)
#   containers/podman.sh podman …  podman with this project's settings (CONTAINERS_CONF)
#
# No container registry is needed: the base image is debootstrapped from deb.debian.org
# (about 70 s) and imported as debian:bookworm-slim, which both Dockerfiles start FROM.
# Podman reads containers/containers.conf (runc, ulimits) through CONTAINERS_CONF; the system's
# /etc/containers is left alone. When the host trusts extra CA certificates (an intercepting
# proxy: pip then fails with CERTIFICATE_VERIFY_FAILED inside the build), set HOST_CA_BUNDLE to
# a PEM file (default: /etc/ssl/certs/ca-certificates.crt when it exists): it is copied to
# containers/certs/host-ca.crt (git-ignored), which the Dockerfiles add to the image's trust
# store for pip/uv.
#
# Both images record the commit they were built from (.git is not in the build context): the
# build argument FACE_SENTIMENT_COMMIT, `git rev-parse --short HEAD` plus "-dirty" when tracked
# files differ (reports.git_commit's rule), becomes the image's $FACE_SENTIMENT_COMMIT and its
# org.opencontainers.image.revision label. The runner image is built in Docker's format: OCI
# images cannot carry its HEALTHCHECK.
#
# Variables: IMAGE_PREFIX (face-sentiment), BASE_IMAGE (debian:bookworm-slim), ARCH (the
# host's dpkg architecture; arm64 on an x86 host needs qemu-user-static), DEBIAN_MIRROR,
# FACE_SENTIMENT_COMMIT (default: from git as above; "unknown" outside a git checkout).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"
IMAGE_PREFIX="${IMAGE_PREFIX:-face-sentiment}"
BASE_IMAGE="${BASE_IMAGE:-debian:bookworm-slim}"
ARCH="${ARCH:-$(dpkg --print-architecture 2>/dev/null || echo amd64)}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
HOST_CA_BUNDLE="${HOST_CA_BUNDLE:-${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}}"

rootfs=""  # debootstrap's folder while base() runs; removed on any exit
trap '[[ -z "$rootfs" ]] || rm -rf "$rootfs"' EXIT

log() { printf '[podman.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

deps() {
  local missing=()
  for tool in podman runc debootstrap; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]} from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap uidmap \
      slirp4netns >/dev/null
  fi
}

base() {
  deps
  if podman image exists "$BASE_IMAGE"; then
    log "$BASE_IMAGE exists"
    return
  fi
  rootfs="$(mktemp -d "${TMPDIR:-/tmp}/bookworm-rootfs.XXXXXX")"
  log "debootstrap --variant=minbase bookworm ($ARCH) -> $BASE_IMAGE"
  debootstrap --variant=minbase --arch="$ARCH" bookworm "$rootfs" "$DEBIAN_MIRROR" >/dev/null
  # What the official slim image does: no docs/man pages, no apt caches.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  tar -C "$rootfs" -c . | podman import --arch "$ARCH" \
    --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
  rootfs=""
  log "imported $BASE_IMAGE"
}

certs() {
  mkdir -p "$here/certs"
  if [[ -f "$HOST_CA_BUNDLE" ]]; then
    cp "$HOST_CA_BUNDLE" "$here/certs/host-ca.crt"
  else
    rm -f "$here/certs/host-ca.crt"
  fi
}

commit() {
  local head changes
  if head="$(git -C "$root" rev-parse --short HEAD 2>/dev/null)" \
      && changes="$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)"; then
    echo "$head${changes:+-dirty}"
  else
    echo unknown
  fi
}

build_pi() {
  base
  certs
  log "building $IMAGE_PREFIX-pi (pi/Dockerfile), commit $FACE_SENTIMENT_COMMIT"
  podman build --arch "$ARCH" --format docker \
    --build-arg "FACE_SENTIMENT_COMMIT=$FACE_SENTIMENT_COMMIT" \
    -f pi/Dockerfile -t "$IMAGE_PREFIX-pi" "$root"
}

build_workbench() {
  base
  certs
  log "building $IMAGE_PREFIX-workbench (Dockerfile), commit $FACE_SENTIMENT_COMMIT"
  podman build --arch "$ARCH" --build-arg "FACE_SENTIMENT_COMMIT=$FACE_SENTIMENT_COMMIT" \
    -f Dockerfile -t "$IMAGE_PREFIX-workbench" "$root"
}

cd "$root"
export FACE_SENTIMENT_COMMIT="${FACE_SENTIMENT_COMMIT:-$(commit)}"
case "${1:-}" in
  deps) deps ;;
  base) base ;;
  build-pi) build_pi ;;
  build-workbench) build_workbench ;;
  build) build_pi; build_workbench ;;
  test) build_pi; build_workbench; exec "$here/container-test.sh" ;;
  podman) shift; exec podman "$@" ;;
  *) sed -n '2,28p' "$0"; exit 2 ;;
esac
