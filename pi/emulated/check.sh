#!/usr/bin/env bash
# `make pi-emulated`: the Pi runner's numbers on the Pi's own CPU models and OS, emulated.
# In an arm64 Debian bookworm root (pi/emulated/arm64-root.sh) under qemu-user + proot, with
# qemu's CPU pinned to the Pi 4's Cortex-A72 and the Pi 5's Cortex-A76, it runs
#   1. the shipped int8 model on a fixed sample of FER2013 PrivateTest faces, and
#   2. the runner on the shared video's first PI_EMULATED_FRAMES frames (detection on every
#      frame, no smoothing, so that each frame's faces are comparable one by one), decoded once
#      on the host and read from PNG files by both: the arm64 OpenCV wheel decodes video with
#      other YUV->BGR rounding than x86's (up to 2 levels), which says nothing of the runtime;
#      the runs on the video as each platform decodes it are reported for information,
# and compares both with the same runs on the host (pi/tools/emulated_check.py): top classes
# must agree on >= 99% of the faces and probabilities stay within the model's int8 tolerance.
# qemu's default CPU, `max`, has features no Pi has, and there LiteRT's XNNPACK path computes
# the model wrongly (15.7% accuracy on these faces): that is why the CPU is pinned, and the
# faces are also run under `max` to show the start-up self-test falling back to the built-in
# kernels and staying right. Emulated speed means nothing (under 1 frame a second).
set -euo pipefail
cd "$(dirname "$0")/../.."
py=.venv/bin/python
frames="${PI_EMULATED_FRAMES:-30}"
video="${FACE_VIDEO_PATH:-}"
model="${PI_MODEL:-models/face_sentiment_int8.tflite}"
if [[ -z "$video" || ! -f "$video" ]]; then
  echo "error: FACE_VIDEO_PATH must name a video file (the shared face_video_01.mp4)" >&2
  exit 2
fi
root="$(pi/emulated/arm64-root.sh)"
work="$(mktemp -d "${TMPDIR:-/tmp}/pi-emulated.XXXXXX")"  # dataset faces: never in the checkout
trap 'rm -rf "$work"' EXIT INT TERM
checkout="$PWD"
video="$(realpath "$video")"
runner=(pi/run.py --model "$model" --max-frames "$frames" --detect-every 1 --no-smoothing
        --threads 1 --quiet)

# /proc/cpuinfo as the Pi's kernel writes it (the host's x86 one makes LiteRT warn that it
# cannot read the CPU): implementer Arm, part 0xd08 (Cortex-A72) or 0xd0b (Cortex-A76).
cpuinfo() {  # cpuinfo CPU -> a file
  local part features file="$work/cpuinfo-$1"
  case "$1" in
    cortex-a72) part=0xd08; features="fp asimd evtstrm crc32 cpuid" ;;
    *) part=0xd0b; features="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp \
cpuid asimdrdm lrcpc dcpop asimddp" ;;
  esac
  for n in 0 1 2 3; do
    printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\n' \
      "$n" "$features"
    printf 'CPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: %s\nCPU revision\t: 1\n\n' "$part"
  done > "$file"
  echo "$file"
}

on_arm() {  # on_arm CPU COMMAND...: in the arm64 root, the checkout and the work folder bound
  local cpu="$1"; shift
  env -i PATH=/opt/venv/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 QEMU_CPU="$cpu" \
    FACE_SENTIMENT_QUIET=1 \
    proot -q "$(command -v qemu-aarch64-static)" -r "$root" -b /dev -b /proc -b /sys \
    -b "$(cpuinfo "$cpu"):/proc/cpuinfo" -b "$checkout" -b "$work" -b "$(dirname "$video")" \
    -w "$checkout" "$@"
}

echo "host: sampling faces and running the model and the runner" >&2
FACE_SENTIMENT_QUIET=1 $py pi/tools/emulated_check.py sample "$work/faces.npz"
FACE_SENTIMENT_QUIET=1 $py pi/tools/emulated_check.py classify "$work/faces.npz" \
  "$work/host.npz" --model "$model"
$py pi/tools/emulated_check.py frames "$video" "$frames" "$work/frames"
FACE_SENTIMENT_QUIET=1 $py "${runner[@]}" --source "$work/frames" --log "$work/host.jsonl" \
  >/dev/null
FACE_SENTIMENT_QUIET=1 $py "${runner[@]}" --source "$video" --log "$work/host-video.jsonl" \
  >/dev/null

status=0
for cpu in cortex-a72 cortex-a76; do
  echo "arm64 $cpu: the model on the faces, the runner on $frames frames" >&2
  on_arm "$cpu" /opt/venv/bin/python pi/tools/emulated_check.py classify "$work/faces.npz" \
    "$work/$cpu.npz" --model "$model"
  on_arm "$cpu" /opt/venv/bin/python "${runner[@]}" --source "$work/frames" \
    --log "$work/$cpu.jsonl" >/dev/null
  $py pi/tools/emulated_check.py compare-faces "$work/host.npz" "$work/$cpu.npz" \
    --name "faces, arm64 $cpu" || status=1
  $py pi/tools/emulated_check.py compare-video "$work/host.jsonl" "$work/$cpu.jsonl" \
    --name "video frames, arm64 $cpu" --model "$model" || status=1
done
echo "arm64 cortex-a72: the runner on the video as arm64's OpenCV decodes it" >&2
on_arm cortex-a72 /opt/venv/bin/python "${runner[@]}" --source "$video" \
  --log "$work/arm-video.jsonl" >/dev/null
$py pi/tools/emulated_check.py compare-video "$work/host-video.jsonl" "$work/arm-video.jsonl" \
  --name "video decoded by each platform, arm64 cortex-a72" --model "$model" --information
echo "arm64 max (qemu's default CPU): the model on the faces" >&2
on_arm max /opt/venv/bin/python pi/tools/emulated_check.py classify "$work/faces.npz" \
  "$work/max.npz" --model "$model"
$py pi/tools/emulated_check.py compare-faces "$work/host.npz" "$work/max.npz" \
  --name "faces, arm64 max" || status=1
exit $status
