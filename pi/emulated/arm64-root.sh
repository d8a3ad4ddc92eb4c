#!/usr/bin/env bash
# Build (once) an arm64 Debian bookworm root, the base of Raspberry Pi OS 64-bit, with the Pi
# runner's Python requirements in a venv, from Debian's and PyPI's packages only: no registry
# of images and no binfmt_misc. Everything arm64 runs under qemu's user-mode emulation through
# proot. The root is cached outside the checkout (PI_EMULATED_ROOT) and rebuilt only when
# missing; the venv is redone when pi/requirements*.txt change. A half-built root is never left
# behind: it is built in a staging folder, removed on any exit or signal, and renamed at the end.
#
#   pi/emulated/arm64-root.sh            -> prints the root's path
# Needs: debootstrap, proot, qemu-user-static (Debian packages; `make pi-emulated` installs them).
set -euo pipefail
cd "$(dirname "$0")/../.."
root="${PI_EMULATED_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/face-sentiment/pi-arm64-bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
qemu="$(command -v qemu-aarch64-static)"

# proot with the emulator; QEMU_CPU (set by the caller) picks the CPU model qemu emulates.
in_root() {  # in_root ROOT COMMAND...
  local dir="$1"; shift
  env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 DEBOOTSTRAP_DIR=/debootstrap \
    QEMU_CPU="${QEMU_CPU:-cortex-a72}" proot -q "$qemu" -0 -r "$dir" -w / -b /dev -b /proc -b /sys "$@"
}

if [[ ! -x "$root/usr/bin/python3" ]]; then
  staging="$root.staging.$$"
  trap 'rm -rf "$staging"' EXIT INT TERM
  mkdir -p "$(dirname "$root")"
  echo "arm64 root: debootstrap bookworm into $root (about 5 minutes)" >&2
  debootstrap --arch=arm64 --foreign --variant=minbase \
    --include=python3,python3-venv,ca-certificates bookworm "$staging" "$mirror" >/dev/null
  in_root "$staging" /debootstrap/debootstrap --second-stage >/dev/null
  rm -rf "$root"
  mv "$staging" "$root"
  trap - EXIT INT TERM
fi

# The venv, stamped with the requirement files it was made from.
stamp="$(cat pi/requirements.txt pi/requirements-nodeps.txt | sha256sum | cut -c1-16)"
if [[ "$(cat "$root/opt/venv/.requirements" 2>/dev/null)" != "$stamp" ]]; then
  echo "arm64 root: venv with pi/requirements*.txt (about 2 minutes)" >&2
  # The host's CA bundle, so that pip reaches PyPI through the same proxy the host uses.
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  cp pi/requirements.txt pi/requirements-nodeps.txt "$root/tmp/"
  rm -rf "$root/opt/venv"
  in_root "$root" /usr/bin/python3 -m venv /opt/venv
  pip=(/opt/venv/bin/pip install --quiet --disable-pip-version-check
       --cert /etc/ssl/certs/ca-certificates.crt)
  in_root "$root" "${pip[@]}" -r /tmp/requirements.txt >&2
  in_root "$root" "${pip[@]}" --no-deps -r /tmp/requirements-nodeps.txt >&2
  echo "$stamp" > "$root/opt/venv/.requirements"
fi
echo "$root"
