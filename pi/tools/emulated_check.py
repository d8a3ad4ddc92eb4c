"""The Pi's numbers against the host's: the same model on the same faces and video frames.

`make pi-emulated` (pi/emulated/check.sh) runs this on the host and inside an emulated arm64
Raspberry Pi OS root, then compares:

    python pi/tools/emulated_check.py sample OUT.npz            # host: PrivateTest faces
    python pi/tools/emulated_check.py frames VIDEO COUNT FOLDER # host: decoded frames as PNG
    python pi/tools/emulated_check.py classify FACES.npz OUT.npz [--model M]
    python pi/tools/emulated_check.py compare-faces HOST.npz OTHER.npz [--name NAME]
    python pi/tools/emulated_check.py compare-video HOST.jsonl OTHER.jsonl [--name NAME]

`classify` needs only what the Pi has (numpy, OpenCV, LiteRT); `sample` reads FER2013 through
the workbench and runs on the host. A comparison passes when the top classes agree on at least
AGREEMENT of the faces whose top two classes the host separates by more than twice the
model's int8 tolerance (the start-up self-test's, live.self_test; closer ones may swap within
it), and no probability differs by more than that tolerance; it prints one line and exits 1
on a failure (`--information`: prints the figures only). The sampled faces and frames are
dataset images: they stay in the work folder outside the checkout.

The runner is compared on frames decoded once, on the host, and read from PNG files by both
runs: the arm64 OpenCV wheel's video decoder converts YUV to BGR with other rounding than
x86's (frames differ by up to 2 levels), which is not the runtime's numerics; the check also
reports, for information, the runs on the video decoded by each platform.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

AGREEMENT = 0.99
SAMPLE_FACES = 300
SAMPLE_SEED = 33
MATCH_IOU = 0.5
DEFAULT_MODEL = ROOT / "models" / "face_sentiment_int8.tflite"


def sample(out: Path, count: int = SAMPLE_FACES, seed: int = SAMPLE_SEED) -> None:
    """A fixed, seeded sample of FER2013 PrivateTest faces and their labels."""
    from face_sentiment.data import load_dataset
    from face_sentiment.paths import write_atomic

    faces, labels = load_dataset().select("PrivateTest")
    rows = np.sort(np.random.default_rng(seed).choice(len(faces), count, replace=False))
    staging = out.with_name(out.name + ".tmp.npz")
    np.savez_compressed(staging, faces=faces[rows], labels=labels[rows], rows=rows)
    write_atomic(out, staging.read_bytes())
    staging.unlink()


def frames(video: Path, count: int, folder: Path) -> None:
    """The video's first `count` frames as lossless PNG files, named in order."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    capture = cv2.VideoCapture(str(video))
    try:
        for index in range(count):
            ok, frame = capture.read()
            if not ok:
                raise SystemExit(f"{video}: could not decode frame {index} (of {count} asked)")
            cv2.imwrite(str(folder / f"frame_{index:05d}.png"), frame)
    finally:
        capture.release()


def classify(faces_file: Path, out: Path, model: Path) -> dict:
    """The model's probabilities on the sampled faces, with the self-test's verdict."""
    from face_sentiment.live.classifier import ExpressionClassifier

    classifier = ExpressionClassifier(model, verify=False)
    data = np.load(faces_file)
    probabilities = classifier.predict(data["faces"])
    np.savez(out, probabilities=probabilities, labels=data["labels"],
             self_test=classifier.self_test.describe(), kernels=classifier.kernels,
             tolerance=float(classifier.card["self_test"]["tolerance"]))
    accuracy = float((probabilities.argmax(1) == data["labels"]).mean())
    report = {"faces": len(probabilities), "accuracy": round(accuracy, 4),
              "kernels": classifier.kernels, "self_test": classifier.self_test.describe()}
    print(json.dumps(report))
    return report


def agreement(host: np.ndarray, other: np.ndarray, tolerance: float) -> dict:
    """Top-class agreement, on all faces and on the faces the host decided (top two classes
    more than twice the tolerance apart: two probabilities that each move by the tolerance can
    swap places below that, and then either answer is the model's), and the largest
    probability difference."""
    if host.shape != other.shape:
        raise SystemExit(f"different shapes: host {host.shape}, other {other.shape}")
    if not len(host):
        raise SystemExit("nothing to compare: no faces")
    same = host.argmax(1) == other.argmax(1)
    top_two = np.sort(host, axis=1)[:, -2:]
    decided = top_two[:, 1] - top_two[:, 0] > 2 * tolerance
    return {"same": float(same.mean()), "decided": int(decided.sum()),
            "same_decided": float(same[decided].mean()) if decided.any() else 1.0,
            "difference": float(np.abs(host - other).max())}


def verdict(name: str, found: dict, tolerance: float, extra: str,
            information: bool = False) -> int:
    ok = found["same_decided"] >= AGREEMENT and found["difference"] <= tolerance
    outcome = "information only" if information else "PASS" if ok else "FAIL"
    print(f"{name}: top class agrees on {found['same_decided']:.1%} of the {found['decided']} "
          f"faces the host decided (need {AGREEMENT:.0%}; "
          f"{found['same']:.1%} of all), largest probability difference "
          f"{found['difference']:.4f} (tolerance {tolerance:.4f}){extra}: {outcome}")
    return 0 if ok or information else 1


def compare_faces(host_file: Path, other_file: Path, name: str) -> int:
    host, other = np.load(host_file), np.load(other_file)
    tolerance = float(host["tolerance"])
    found = agreement(host["probabilities"], other["probabilities"], tolerance)
    accuracy = (other["probabilities"].argmax(1) == other["labels"]).mean()
    host_accuracy = (host["probabilities"].argmax(1) == host["labels"]).mean()
    extra = (f"; accuracy {accuracy:.1%} (host {host_accuracy:.1%}); "
             f"{other['self_test']}, {other['kernels']} kernels")
    return verdict(name, found, tolerance, extra)


def read_frames(path: Path) -> dict[int, list[dict]]:
    """Frame number -> faces, from a runner log (pi/run.py --log)."""
    frames = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise SystemExit(f"{path} line {number}: not JSON ({error.msg})") from None
        if "faces" in record:
            frames[int(record["frame"])] = record["faces"]
    if not frames:
        raise SystemExit(f"{path}: no frame records (write them with pi/run.py --log)")
    return frames


def iou(a: list[float], b: list[float]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def matched_faces(host: dict[int, list[dict]], other: dict[int, list[dict]]
                  ) -> tuple[np.ndarray, np.ndarray, int]:
    """Probabilities of the faces both runs found (same frame, boxes overlapping by
    MATCH_IOU, best pair first) and the number of faces only one of them found."""
    classes = None
    pairs, unmatched = [], 0
    for frame in sorted(set(host) | set(other)):
        left, right = host.get(frame, []), other.get(frame, [])
        candidates = sorted(((iou(a["box"], b["box"]), i, j) for i, a in enumerate(left)
                             for j, b in enumerate(right)), reverse=True)
        used_left, used_right = set(), set()
        for overlap, i, j in candidates:
            if overlap < MATCH_IOU or i in used_left or j in used_right:
                continue
            used_left.add(i)
            used_right.add(j)
            classes = classes or list(left[i]["probabilities"])
            pairs.append(([left[i]["probabilities"][c] for c in classes],
                          [right[j]["probabilities"][c] for c in classes]))
        unmatched += len(left) - len(used_left) + len(right) - len(used_right)
    host_p = np.array([p for p, _ in pairs], np.float32).reshape(-1, len(classes or []))
    other_p = np.array([p for _, p in pairs], np.float32).reshape(host_p.shape)
    return host_p, other_p, unmatched


def compare_video(host_file: Path, other_file: Path, name: str, model: Path,
                  information: bool = False) -> int:
    from face_sentiment.model_card import ModelCard

    host_p, other_p, unmatched = matched_faces(read_frames(host_file), read_frames(other_file))
    tolerance = float(ModelCard.beside(model)["self_test"]["tolerance"])
    status = verdict(name, agreement(host_p, other_p, tolerance), tolerance,
                     f"; {len(host_p)} faces in both, {unmatched} in one only", information)
    both = len(host_p) / (len(host_p) + unmatched)
    if both < AGREEMENT and not information:
        print(f"{name}: only {both:.1%} of the faces were found by both runs: FAIL")
        return 1
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("sample", help="host: seeded PrivateTest faces -> OUT.npz")
    command.add_argument("out", type=Path)
    command = commands.add_parser("frames", help="host: a video's first frames -> PNG files")
    command.add_argument("video", type=Path)
    command.add_argument("count", type=int)
    command.add_argument("folder", type=Path)
    command = commands.add_parser("classify", help="the model on sampled faces -> OUT.npz")
    command.add_argument("faces", type=Path)
    command.add_argument("out", type=Path)
    command.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    for name in ("compare-faces", "compare-video"):
        command = commands.add_parser(name, help="host run against another run")
        command.add_argument("host", type=Path)
        command.add_argument("other", type=Path)
        command.add_argument("--name", default="comparison")
        command.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    command.add_argument("--information", action="store_true",
                         help="print the figures, never fail")
    args = parser.parse_args(argv)
    if args.command == "sample":
        sample(args.out)
        return 0
    if args.command == "frames":
        frames(args.video, args.count, args.folder)
        return 0
    if args.command == "classify":
        classify(args.faces, args.out, args.model)
        return 0
    if args.command == "compare-faces":
        return compare_faces(args.host, args.other, args.name)
    return compare_video(args.host, args.other, args.name, args.model, args.information)


if __name__ == "__main__":
    sys.exit(main())
