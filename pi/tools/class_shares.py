"""What the live page's chart and face count show, read from the runner's log.

Usage: `python pi/tools/class_shares.py RESULTS.jsonl [--json out.json]`, on a log written by
`pi/run.py --log` (e.g. the shared party video looped: `--source VIDEO --loop --benchmark 900
--log RESULTS.jsonl`). Prints the share of each class among the faces' labels (the smoothed
label the page colours its timeline by), and faces per frame: mean, min, max, and the share of
frames whose count differs from the previous frame's.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
from face_sentiment.paths import write_atomic  # noqa: E402


def summarise(lines: list[str], source: str) -> dict:
    """Class shares and faces per frame of a runner log's frame records."""
    counts, labels = [], Counter()
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
        labels.update(face["label"] for face in record["faces"])
    if not counts:
        raise SystemExit(f"{source}: no frame records (write one with pi/run.py --log)")
    total = sum(labels.values())
    changes = sum(a != b for a, b in zip(counts, counts[1:], strict=False))
    return {"frames": len(counts), "faces": total,
            "faces_per_frame": {"mean": round(total / len(counts), 2), "min": min(counts),
                                "max": max(counts),
                                "changed_share": round(changes / max(len(counts) - 1, 1), 3)},
            "class_shares": {label: round(n / total, 3) for label, n in labels.most_common()}}


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
          f"{100 * per_frame['changed_share']:.1f}% of frames)")
    print("class shares: " + ", ".join(f"{label} {100 * share:.1f}%"
                                       for label, share in summary["class_shares"].items()))
    if args.json:
        write_atomic(args.json, json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
