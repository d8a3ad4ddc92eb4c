"""Face-detection recall against hand-annotated video keyframes.

The annotation format (`pi/tools/face_video_01_faces.json`): a box per person on keyframes,
linearly interpolated in between, plus the people marked as occluded. A detection counts as
finding a face when their IoU is at least 0.3 (greedy one-to-one matching, best IoU first);
loose on purpose, because detectors draw boxes differently (Haar's include more forehead).
numpy only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from face_sentiment.live.faces import box_iou


@dataclass(frozen=True)
class VideoTruth:
    """Hand-annotated faces of a video: boxes (frames, people, 4) and an occlusion mask."""

    boxes: np.ndarray
    people: tuple[str, ...]
    occluded: np.ndarray  # (people,) bool

    @classmethod
    def load(cls, path: str | Path) -> VideoTruth:
        spec = json.loads(Path(path).read_text())
        keys = sorted(int(k) for k in spec["keyframes"])
        keyboxes = np.array([spec["keyframes"][str(k)] for k in keys], np.float32)
        frames = np.arange(int(spec["frames"]))
        boxes = np.stack([
            np.stack([np.interp(frames, keys, keyboxes[:, p, c]) for c in range(4)], axis=1)
            for p in range(keyboxes.shape[1])], axis=1)
        people = tuple(spec["people"])
        occluded = np.array([p in spec.get("occluded", []) for p in people])
        return cls(boxes.astype(np.float32), people, occluded)


def match(truth: np.ndarray, detected: np.ndarray, iou_threshold: float = 0.3) -> np.ndarray:
    """For each truth box, the index of the detection matched to it, or -1."""
    truth = np.asarray(truth, np.float32).reshape(-1, 4)
    detected = np.asarray(detected, np.float32).reshape(-1, 4)
    result = np.full(len(truth), -1)
    if len(truth) == 0 or len(detected) == 0:
        return result
    iou = box_iou(truth, detected)
    used = set()
    for t, d in sorted(np.argwhere(iou >= iou_threshold).tolist(), key=lambda p: -iou[p[0], p[1]]):
        if result[t] < 0 and d not in used:
            result[t] = d
            used.add(d)
    return result


def recall_report(truth: VideoTruth, detections: list[np.ndarray],
                  iou_threshold: float = 0.3) -> dict:
    """Recall over all faces and over unoccluded ones, false positives per frame."""
    found, false_positives = [], []
    for frame, boxes in enumerate(detections):
        matched = match(truth.boxes[frame], boxes, iou_threshold)
        found.append(matched >= 0)
        false_positives.append(len(np.asarray(boxes).reshape(-1, 4)) - int((matched >= 0).sum()))
    found = np.array(found)
    clear = ~truth.occluded
    return {
        "frames": len(detections),
        "faces_per_frame_truth": int(len(truth.people)),
        "recall_all": round(float(found.mean()), 3),
        "recall_unoccluded": round(float(found[:, clear].mean()), 3),
        "recall_by_person": {p: round(float(found[:, i].mean()), 3)
                             for i, p in enumerate(truth.people)},
        "frames_all_unoccluded_found": int(found[:, clear].all(axis=1).sum()),
        "false_positives_per_frame": round(float(np.mean(false_positives)), 3),
        "found_per_frame": found.sum(axis=1).tolist(),
    }
