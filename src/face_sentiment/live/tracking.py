"""Per-face temporal smoothing for live video: IoU tracking plus an exponential moving average.

A classifier run frame by frame flickers between neighbouring classes. Each detection is matched
to the track it overlaps most (greedy, best IoU first, above a threshold), what is left to the
nearest track within reach (centre distance in face sizes, growing with the frames since the
track was last detected: a face that moved faster than its track between detections); a
matched track's probabilities become `alpha * new + (1 - alpha) * old`, an unmatched
detection starts a track, and a track unseen for more than `max_missed` detection frames is
dropped. At most
`max_tracks` tracks are kept (the least recently seen go first), so memory stays bounded
however many faces come and go.

Between detections (the runner detects only every k-th frame when it falls behind real time),
`predict()` moves every track seen at the last detection by its velocity (box change per
frame, measured between detections), keypoints included, and `blend()` smooths the
probabilities classified on the moved boxes into the tracks.

A detector misses a face now and then (a turn, a hand, motion blur): the five people of the
shared party video came out as 3 to 7 faces a frame, and a live page that showed only this
frame's detections flickered. `held()` returns the tracks the detector missed at up to `hold`
detections in a row, at their last box, unless a face shown on this frame overlaps them (the
same person boxed differently, or hidden behind someone): the runner shows them marked as
held, with their last smoothed probabilities, so counts and cards stay put through short
misses; `admit()` keeps one face boxed twice from starting a second track. numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from face_sentiment.live.faces import Face, box_iou

# Detection frames a missed face is still shown for. On the shared party video BlazeFace loses
# one of five people for at most 4 frames in a row (the man side-on with a phone).
DEFAULT_HOLD = 5
MAX_REACH = 2.5  # face sizes: the farthest a track is matched by distance (update)


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
    raw: np.ndarray | None = None  # the last classifier output, shown by held tracks

    @property
    def score(self) -> float:
        return self.face.score if self.face is not None else 1.0


def _centre_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) distance between the centres of boxes a and b, in units of the pair's mean side
    (sqrt of the area); inf where the sizes differ by more than 1.5x (not one face)."""
    centres_a, centres_b = (a[:, :2] + a[:, 2:]) / 2, (b[:, :2] + b[:, 2:]) / 2
    side_a = np.sqrt(np.prod(np.clip(a[:, 2:] - a[:, :2], 1e-3, None), axis=1))
    side_b = np.sqrt(np.prod(np.clip(b[:, 2:] - b[:, :2], 1e-3, None), axis=1))
    distance = np.linalg.norm(centres_a[:, None] - centres_b[None], axis=2)
    ratio = side_a[:, None] / side_b[None]
    scaled = distance / ((side_a[:, None] + side_b[None]) / 2)
    return np.where((ratio <= 1.5) & (ratio >= 1 / 1.5), scaled, np.inf)


class FaceTracker:
    """Match each frame's faces to tracks and smooth their class probabilities."""

    def __init__(self, iou_threshold: float = 0.3, alpha: float = 0.4,
                 max_missed: int = 10, max_tracks: int = 64, hold: int = DEFAULT_HOLD,
                 same_face_iou: float = 0.1, max_jump: float = 1.0,
                 jump_per_frame: float = 0.1) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if not 0 <= iou_threshold < 1:
            raise ValueError(f"iou_threshold must be in [0, 1), got {iou_threshold}")
        if max_tracks < 1:
            raise ValueError(f"max_tracks must be at least 1, got {max_tracks}")
        if hold < 0:
            raise ValueError(f"hold must not be negative, got {hold}")
        # A track is dropped after max_missed misses: it cannot be held for longer.
        self.hold, self.same_face_iou = min(hold, max_missed), same_face_iou
        self.max_jump, self.jump_per_frame = max_jump, jump_per_frame
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
        weak detection with no history is not.

        One face boxed twice (the detector's weighted suppression can leave two merged boxes
        overlapping by IoU 0.2-0.4) would start a second track and count one person twice: a
        face overlapping a stronger kept one by more than the IoU threshold is dropped, a weak
        one already above `same_face_iou`."""
        tracks = np.stack([t.box for t in self.tracks]) if self.tracks else None
        kept: list[Face] = []
        for face in sorted(faces, key=lambda f: -f.score):
            box = np.asarray(face.box, np.float32)
            strong = face.score >= birth_score
            if not strong and (tracks is None or box_iou(box, tracks).max() <= self.iou_threshold):
                continue
            limit = self.iou_threshold if strong else self.same_face_iou
            if kept and box_iou(box, np.array([f.box for f in kept], np.float32)).max() > limit:
                continue
            kept.append(face)
        return [face for face in faces if any(face is k for k in kept)]

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
            tracks = np.stack([t.box for t in self.tracks])
            iou = box_iou(boxes, tracks)
            # Best overlap first; then, for what is left, the nearest centre within a jump of
            # `max_jump` face sizes, plus `jump_per_frame` for every frame since the track's
            # last detection (at most 2.5): tracked between detections (every k-th frame) or
            # held, a face that moved faster than its measured velocity overlaps its track no
            # more, and would come back as a new track beside its own, held, old one.
            pairs = sorted(np.argwhere(iou > self.iou_threshold).tolist(),
                           key=lambda p: -iou[p[0], p[1]])
            unseen = np.array([self._frame - t.detected_frame - 1 for t in self.tracks])
            reach = np.minimum(self.max_jump + self.jump_per_frame * unseen, MAX_REACH)
            jump = _centre_distance(boxes, tracks)
            pairs += sorted(np.argwhere(jump <= reach[None]).tolist(),
                            key=lambda p: jump[p[0], p[1]])
            used_detections, used_tracks = set(), set()
            for d, t in pairs:
                if d in used_detections or t in used_tracks:
                    continue
                used_detections.add(d)
                used_tracks.add(t)
                self._continue(self.tracks[t], boxes[d], probabilities[d],
                               faces[d] if faces is not None else None)
                assigned[d] = self.tracks[t]
        matched = {id(t) for t in assigned if t is not None}
        for track in self.tracks:
            if id(track) not in matched:
                track.missed += 1
                track.velocity = np.zeros(4, np.float32)
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        for d, track in enumerate(assigned):
            if track is None:
                track = Track(self._next_id, boxes[d].copy(), probabilities[d].copy(),
                              raw=probabilities[d].copy())
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

    def _continue(self, track: Track, box: np.ndarray, probabilities: np.ndarray,
                  face: Face | None) -> None:
        if track.detected_box is not None:
            frames = max(self._frame - track.detected_frame, 1)
            track.velocity = (box - track.detected_box) / frames
        track.box = box.copy()
        track.probabilities = self.alpha * probabilities + (1 - self.alpha) * track.probabilities
        track.raw = probabilities.copy()
        track.age += 1
        track.missed = 0
        self._mark_detected(track, face)

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
            track.raw = row.copy()
        return list(tracks)

    def held(self, shown: Sequence[Track]) -> list[Track]:
        """Tracks the detector missed at the last 1..`hold` detections, at their last box, less
        those overlapping (IoU over `same_face_iou`) a track in `shown` (this frame's faces) or
        a held track seen more recently; ordered by track id."""
        kept: list[Track] = []
        boxes = [t.box for t in shown]
        # Most recently seen first, then the longest-lived: of two held boxes on one face, the
        # better one stays.
        for track in sorted((t for t in self.tracks if 0 < t.missed <= self.hold),
                            key=lambda t: (t.missed, -t.age)):
            if boxes and box_iou(track.box, np.stack(boxes)).max() > self.same_face_iou:
                continue
            kept.append(track)
            boxes.append(track.box)
        return sorted(kept, key=lambda t: t.track_id)

    def predicted_face(self, track: Track) -> Face:
        """The face to align for a track moved by `predict` (box only when no detection)."""
        if track.face is not None:
            return track.face
        return Face(tuple(float(v) for v in track.box), track.score)
