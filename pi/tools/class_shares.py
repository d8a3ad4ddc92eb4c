"""What the live page's chart and face count show, read from the runner's log.

Usage: `python pi/tools/class_shares.py RESULTS.jsonl [--json out.json]`, on a log written by
`pi/run.py --log` (e.g. the shared party video looped: `--source VIDEO --loop --benchmark 900
--log RESULTS.jsonl`). Prints the share of each class among the faces' labels (the smoothed
label the page colours its timeline by), and faces per frame: mean, min, max, the share of
frames whose count differs from the previous frame's and the largest change from one frame to
the next, and the share of faces shown held (missed by the detector, kept at their last box);
and the log's size: bytes per record, by faces in it, and how long 64 MiB (`--log-max-mb`'s
default) lasts at 30 FPS.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
from face_sentiment.paths import write_atomic  # noqa: E402


def summarise(lines: list[str], source: str) -> dict:
    """Class shares and faces per frame of a runner log's frame records."""
    counts, labels, held = [], Counter(), 0
    sizes: defaultdict[int, list[int]] = defaultdict(list)  # faces -> bytes of each record
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise SystemExit(f"{source} line {number}: not JSON ({error.msg})") from None
        if "faces" not in record:
            continue  # not a frame record (a header or a heartbeat)
        counts.append(len(record["faces"]))
        sizes[len(record["faces"])].append(len(line.rstrip("\n").encode()) + 1)
        labels.update(face["label"] for face in record["faces"])
        held += sum(face.get("held") is True for face in record["faces"])
    if not counts:
        raise SystemExit(f"{source}: no frame records (write one with pi/run.py --log)")
    total = sum(labels.values())
    steps = [abs(b - a) for a, b in zip(counts, counts[1:], strict=False)]
    return {"frames": len(counts), "faces": total,
            "faces_per_frame": {"mean": round(total / len(counts), 2), "min": min(counts),
                                "max": max(counts),
                                "changed_share": round(sum(map(bool, steps))
                                                       / max(len(counts) - 1, 1), 3),
                                "max_change": max(steps, default=0)},
            "held_share": round(held / total, 3) if total else 0.0,
            "record_bytes": _record_bytes(sizes),
            "class_shares": {label: round(n / total, 3) for label, n in labels.most_common()}}


def _record_bytes(sizes: dict[int, list[int]]) -> dict:
    every = [size for group in sizes.values() for size in group]
    mean = sum(every) / len(every)
    return {"mean": round(mean), "by_faces": {str(faces): round(sum(group) / len(group))
                                              for faces, group in sorted(sizes.items())},
            "minutes_in_64mib_at_30fps": round(64 * 2**20 / mean / 30 / 60, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", help="a pi/run.py --log file (JSON lines)")
    parser.add_argument("--json", help="also write the summary here")
    args = parser.parse_args()
    path = Path(args.log)
    if not path.is_file():
        raise SystemExit(f"{path}: no such log")
    summary = summarise(path.read_text().splitlines(), str(path))
    per_frame = summary["faces_per_frame"]
    print(f"{summary['frames']} frames, {summary['faces']} faces: {per_frame['mean']} per frame "
          f"(min {per_frame['min']}, max {per_frame['max']}; count changed on "
          f"{100 * per_frame['changed_share']:.1f}% of frames, by at most "
          f"{per_frame['max_change']}; {100 * summary['held_share']:.1f}% of faces held)")
    print("class shares: " + ", ".join(f"{label} {100 * share:.1f}%"
                                       for label, share in summary["class_shares"].items()))
    size = summary["record_bytes"]
    print(f"log: {size['mean']} bytes a record (by faces in it: "
          + ", ".join(f"{faces}: {n}" for faces, n in size["by_faces"].items())
          + f"); 64 MiB holds {size['minutes_in_64mib_at_30fps']} min at 30 FPS")
    if args.json:
        write_atomic(args.json, json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
