"""Per-face temporal smoothing for live video: IoU tracking plus an exponential moving average.

A classifier run frame by frame flickers between neighbouring classes. Each detection is matched
to the track it overlaps most (greedy, best IoU first, above a threshold); a matched track's
probabilities become `alpha * new + (1 - alpha) * old`, an unmatched detection starts a track,
and a track unseen for more than `max_missed` detection frames is dropped. At most
`max_tracks` tracks are kept (the least recently seen go first), so memory stays bounded
however many faces come and go.

Between detections (the runner detects only every k-th frame when it falls behind real time),
`predict()` moves every track seen at the last detection by its velocity (box change per
frame, measured between detections), keypoints included, and `blend()` smooths the
probabilities classified on the moved boxes into the tracks. numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from face_sentiment.live.faces import Face, box_iou


@dataclass
class Track:
    """One tracked face."""

    track_id: int
    box: np.ndarray
    probabilities: np.ndarray
    age: int = 1
    missed: int = 0
    face: Face | None = None  # the last detection, moved along between detections
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))
    detected_box: np.ndarray | None = None
    detected_frame: int = 0

    @property
    def score(self) -> float:
        return self.face.score if self.face is not None else 1.0


class FaceTracker:
    """Match each frame's faces to tracks and smooth their class probabilities."""

    def __init__(self, iou_threshold: float = 0.3, alpha: float = 0.4,
                 max_missed: int = 10, max_tracks: int = 64) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if not 0 <= iou_threshold < 1:
            raise ValueError(f"iou_threshold must be in [0, 1), got {iou_threshold}")
        if max_tracks < 1:
            raise ValueError(f"max_tracks must be at least 1, got {max_tracks}")
        self.iou_threshold, self.alpha, self.max_missed = iou_threshold, alpha, max_missed
        self.max_tracks = max_tracks
        self.tracks: list[Track] = []
        self._next_id = 1
        self._frame = 0

    def reset(self) -> None:
        self.tracks.clear()

    def admit(self, faces: Sequence[Face], birth_score: float) -> list[Face]:
        """Hysteresis on the detector's score: a face scoring `birth_score` or more may start a
        track; a weaker one is kept only where it continues a track (overlaps one's box). A
        face turned side-on or half hidden scores lower than when it entered, and is kept; a
        weak detection with no history is not."""
        if not self.tracks:
            return [face for face in faces if face.score >= birth_score]
        boxes = np.stack([t.box for t in self.tracks])
        return [face for face in faces if face.score >= birth_score
                or box_iou(np.asarray(face.box, np.float32), boxes).max() > self.iou_threshold]

    def update(self, boxes: np.ndarray, probabilities: np.ndarray,
               faces: Sequence[Face] | None = None) -> list[Track]:
        """Tracks for this frame's detections, in the order of `boxes` (N, 4); `faces` (the
        detections themselves, same order) are kept for `predict`."""
        self._frame += 1
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
                if track.detected_box is not None:
                    frames = max(self._frame - track.detected_frame, 1)
                    track.velocity = (boxes[d] - track.detected_box) / frames
                track.box = boxes[d].copy()
                track.probabilities = (self.alpha * probabilities[d]
                                       + (1 - self.alpha) * track.probabilities)
                track.age += 1
                track.missed = 0
                self._mark_detected(track, faces[d] if faces is not None else None)
                assigned[d] = track
        matched = {id(t) for t in assigned if t is not None}
        for track in self.tracks:
            if id(track) not in matched:
                track.missed += 1
                track.velocity = np.zeros(4, np.float32)
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        for d, track in enumerate(assigned):
            if track is None:
                track = Track(self._next_id, boxes[d].copy(), probabilities[d].copy())
                self._mark_detected(track, faces[d] if faces is not None else None)
                self._next_id += 1
                self.tracks.append(track)
                assigned[d] = track
        if len(self.tracks) > self.max_tracks:
            # Keep this frame's tracks first, then the most recently seen.
            current = {id(t) for t in assigned}
            keep = sorted(self.tracks, key=lambda t: (id(t) not in current, t.missed, -t.age))
            kept = {id(t) for t in keep[:self.max_tracks]}
            self.tracks = [t for t in self.tracks if id(t) in kept]
        return assigned  # type: ignore[return-value]

    def _mark_detected(self, track: Track, face: Face | None) -> None:
        track.detected_box = track.box.copy()
        track.detected_frame = self._frame
        track.face = face

    def predict(self) -> list[Track]:
        """Advance one frame without detection: each track seen at the last detection moves
        by its velocity (its face's keypoints too); returns those tracks."""
        self._frame += 1
        moved = []
        for track in self.tracks:
            if track.missed:
                continue
            track.box = track.box + track.velocity
            if track.face is not None:
                dx = float(track.velocity[0] + track.velocity[2]) / 2
                dy = float(track.velocity[1] + track.velocity[3]) / 2
                track.face = replace(
                    track.face, box=tuple(float(v) for v in track.box),
                    keypoints=tuple((x + dx, y + dy) for x, y in track.face.keypoints))
            moved.append(track)
        return moved

    def blend(self, tracks: Sequence[Track], probabilities: np.ndarray) -> list[Track]:
        """Smooth new `probabilities` (one row per track) into `tracks` (from `predict`)."""
        if not tracks:
            return []
        probabilities = np.asarray(probabilities, np.float32).reshape(len(tracks), -1)
        for track, row in zip(tracks, probabilities, strict=True):
            track.probabilities = self.alpha * row + (1 - self.alpha) * track.probabilities
        return list(tracks)

    def predicted_face(self, track: Track) -> Face:
        """The face to align for a track moved by `predict` (box only when no detection)."""
        if track.face is not None:
            return track.face
        return Face(tuple(float(v) for v in track.box), track.score)
