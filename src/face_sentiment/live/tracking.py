"""Per-face temporal smoothing for live video: IoU tracking plus an exponential moving average.

A classifier run frame by frame flickers between neighbouring classes. Each detection is matched
to the track it overlaps most (greedy, best IoU first, above a threshold); a matched track's
probabilities become `alpha * new + (1 - alpha) * old`, an unmatched detection starts a track,
and a track unseen for more than `max_missed` frames is dropped. numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from face_sentiment.live.faces import box_iou


@dataclass
class Track:
    """One tracked face."""

    track_id: int
    box: np.ndarray
    probabilities: np.ndarray
    age: int = 1
    missed: int = 0


class FaceTracker:
    """Match each frame's faces to tracks and smooth their class probabilities."""

    def __init__(self, iou_threshold: float = 0.3, alpha: float = 0.4,
                 max_missed: int = 10) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if not 0 <= iou_threshold < 1:
            raise ValueError(f"iou_threshold must be in [0, 1), got {iou_threshold}")
        self.iou_threshold, self.alpha, self.max_missed = iou_threshold, alpha, max_missed
        self.tracks: list[Track] = []
        self._next_id = 1

    def reset(self) -> None:
        self.tracks.clear()

    def update(self, boxes: np.ndarray, probabilities: np.ndarray) -> list[Track]:
        """Tracks for this frame's detections, in the order of `boxes` (N, 4)."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        probabilities = np.asarray(probabilities, np.float32)
        if probabilities.ndim == 1:
            probabilities = probabilities[np.newaxis]
        if len(probabilities) != len(boxes):
            raise ValueError(f"{len(boxes)} boxes but {len(probabilities)} probability rows")
        assigned: list[Track | None] = [None] * len(boxes)
        if self.tracks and len(boxes):
            iou = box_iou(boxes, np.stack([t.box for t in self.tracks]))
            pairs = np.argwhere(iou > self.iou_threshold)
            used_detections, used_tracks = set(), set()
            for d, t in sorted(pairs.tolist(), key=lambda p: -iou[p[0], p[1]]):
                if d in used_detections or t in used_tracks:
                    continue
                used_detections.add(d)
                used_tracks.add(t)
                track = self.tracks[t]
                track.box = boxes[d].copy()
                track.probabilities = (self.alpha * probabilities[d]
                                       + (1 - self.alpha) * track.probabilities)
                track.age += 1
                track.missed = 0
                assigned[d] = track
        matched = {id(t) for t in assigned if t is not None}
        for track in self.tracks:
            if id(track) not in matched:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        for d, track in enumerate(assigned):
            if track is None:
                track = Track(self._next_id, boxes[d].copy(), probabilities[d].copy())
                self._next_id += 1
                self.tracks.append(track)
                assigned[d] = track
        return assigned  # type: ignore[return-value]
