"""The runner's log records made in memory: frames, photos or a labelled lab dataset through
the Pi runner's own pipeline (`live.runner.Pipeline`, `frame_record`), so monitoring reads
exactly what a Pi would have logged.

- `record_frames(frames, pipeline)`: BGR frames -> one record per frame.
- `dataset_records(dataset)`: a labelled folder dataset (`data.folder_dataset`, e.g. faces
  captured in the lab) -> one record per image, the label kept beside it. Photographs go
  through detection and alignment (the highest-scoring face is kept); face crops (at most
  `CROP_MAX_SIDE` pixels) are classified as they are, like `evaluation.cross_dataset`, with no
  detector score or eye angle. Times come from a `time` column of labels.csv (seconds since
  the epoch) when there is one, else one second per row.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from face_sentiment.paths import write_atomic

DEFAULT_T0 = 0.0


def pipeline_for(model: str = "shipped-int8", detector: str = "blazeface-full",
                 smoothing: bool = True, threads: int = 1):
    """The runner's pipeline (live.runner.build_pipeline's choices, without argparse)."""
    from face_sentiment.live.classifier import ExpressionClassifier
    from face_sentiment.live.faces import create_detector
    from face_sentiment.live.runner import Pipeline
    from face_sentiment.live.tracking import FaceTracker
    from face_sentiment.model_card import resolve_model
    return Pipeline(create_detector(detector, num_threads=threads),
                    ExpressionClassifier(resolve_model(model), num_threads=threads),
                    FaceTracker() if smoothing else None)


def record_frames(frames: Iterable[np.ndarray], pipeline, t0: float = DEFAULT_T0,
                  fps: float = 30.0, source: str = "frames") -> list[dict]:
    """One runner log record per frame (every frame detected)."""
    from face_sentiment.live.benchmark import Benchmark
    from face_sentiment.live.runner import frame_record
    bench = Benchmark()
    records = []
    for index, image in enumerate(frames):
        results = pipeline.process(image, bench)
        bench.discard_frame()
        records.append(frame_record(index, t0 + index / fps, f"{source}#{index}", results,
                                    pipeline.classes, getattr(pipeline, "model_id", None)))
    return records


def _crop_record(pipeline, image: np.ndarray, index: int, when: float, origin: str) -> dict:
    from face_sentiment.live.faces import Face
    from face_sentiment.live.observations import face_observations
    from face_sentiment.live.runner import FaceResult, frame_record
    from face_sentiment.preprocessing import to_gray_square
    crop = to_gray_square(image, pipeline.size)[np.newaxis]
    probabilities = pipeline.classifier.predict(crop)
    height, width = image.shape[:2]
    face = Face((0.0, 0.0, float(width), float(height)), float("nan"))
    observed = face_observations(crop, [face], probabilities, pipeline.classes)
    result = FaceResult(face.box, float("nan"), probabilities[0], probabilities[0], None,
                        observed[0])
    record = frame_record(index, when, origin, [result], pipeline.classes, pipeline.model_id)
    record["faces"][0]["score"] = None
    return record


def dataset_records(dataset, model: str = "shipped-int8", detector: str = "blazeface-full"
                    ) -> list[dict]:
    """Records of a labelled folder dataset; each carries its row's `label` as `true_label`."""
    import cv2
    pipeline = pipeline_for(model, detector, smoothing=False)
    table = dataset.table
    times = (table["time"].astype(float).to_numpy() if "time" in table
             else DEFAULT_T0 + np.arange(len(table), dtype=float))
    records = []
    for index, (image, path) in enumerate(zip(dataset.images, table["path"], strict=True)):
        origin = f"{dataset.name}:{path}"
        if dataset.are_crops:
            record = _crop_record(pipeline, image, index, float(times[index]), origin)
        else:
            from face_sentiment.live.benchmark import Benchmark
            from face_sentiment.live.runner import frame_record
            bgr = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
            results = sorted(pipeline.process(bgr, Benchmark()), key=lambda r: -r.score)[:1]
            record = frame_record(index, float(times[index]), origin, results,
                                  pipeline.classes, pipeline.model_id)
        record["true_label"] = str(table["label"].iloc[index])
        records.append(record)
    return records


def write_records(records: list[dict], path: str | os.PathLike) -> Path:
    """Records as a JSON-lines log (atomically)."""
    return write_atomic(Path(path), "".join(json.dumps(r) + "\n" for r in records))
