"""References that live faces are compared with: FER2013's own faces, or a reference log.

`fer2013_reference(split)`: FER2013's per-image quality features from the cache (the same
`face_sentiment.quality` definition the runner applies to its aligned crops) and the deployed
model's top class, top-class probability and entropy on those images (the same
`live.observations` fields, from the same int8 TFLite model through
`live.classifier.ExpressionClassifier`). FER2013 has no detector, so `face_px`, `score` and
`eye_angle` are not in it and are not tested against it. Predictions are cached in
data/processed/monitoring/, keyed by split, model id and data hash (15 s for Training here).

`log_reference(paths)`: the faces of logs recorded when a demo was set up, the more honest
reference for one room and one camera (every monitored column is then tested).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from face_sentiment.live.observations import entropy_bits
from face_sentiment.monitoring.logs import load_logs
from face_sentiment.paths import atomic_target, data_dir

REFERENCE_COLUMNS = ("brightness", "contrast", "sharpness", "clipped_fraction", "top",
                     "top_confidence", "entropy")


@dataclass
class Reference:
    """The reference faces (a table with monitored columns) and where they came from."""

    faces: pd.DataFrame
    name: str
    description: str
    model_id: str | None = None
    problems: list[str] = field(default_factory=list)


def _classifier(model: str):
    from face_sentiment.live.classifier import ExpressionClassifier
    from face_sentiment.model_card import resolve_model
    return ExpressionClassifier(resolve_model(model), num_threads=1)


def predictions_table(classifier, images: np.ndarray, batch: int = 256) -> pd.DataFrame:
    """top, top_confidence and entropy of the classifier on (N, 48, 48) uint8 images."""
    outputs = [classifier.predict(images[i:i + batch]) for i in range(0, len(images), batch)]
    probabilities = np.concatenate(outputs) if outputs else np.zeros((0, len(classifier.classes)))
    top = probabilities.argmax(axis=1) if len(probabilities) else np.zeros(0, int)
    return pd.DataFrame({
        "top": np.asarray(classifier.classes, dtype=object)[top],
        "top_confidence": probabilities.max(axis=1) if len(probabilities) else [],
        "entropy": entropy_bits(probabilities)})


def fer2013_reference(dataset=None, split: str = "Training", model: str = "shipped-int8",
                      limit: int | None = None, seed: int = 0) -> Reference:
    """FER2013 `split` as a reference (a random `limit` of its images when given)."""
    from face_sentiment.data.cache import load_dataset
    dataset = dataset if dataset is not None else load_dataset()
    mask = dataset.split_mask(split)
    indices = np.flatnonzero(mask)
    if limit and limit < len(indices):
        indices = np.sort(np.random.default_rng(seed).choice(indices, limit, replace=False))
    classifier = _classifier(model)
    model_id = classifier.model_id
    cache = (data_dir("processed") / "monitoring" /
             f"fer2013_{split}_{model_id}_{dataset.data_hash[:12]}_{len(indices)}_{seed}.parquet")
    if cache.exists():
        predicted = pd.read_parquet(cache)
    else:
        predicted = predictions_table(classifier, dataset.images[indices])
        with atomic_target(cache) as staging:
            predicted.to_parquet(staging, index=False)
    features = dataset.features.iloc[indices].reset_index(drop=True)
    faces = pd.concat([features[["brightness", "contrast", "sharpness", "clipped_fraction"]]
                       .astype(float), predicted.reset_index(drop=True)], axis=1)
    return Reference(faces, f"fer2013 {split}",
                     f"FER2013 {split}: {len(faces)} images, quality features from the cache, "
                     f"predictions of model {model_id} ({model})", model_id)


def log_reference(paths: list[str | os.PathLike]) -> Reference:
    """The faces of reference logs (e.g. recorded when the demo was set up)."""
    data = load_logs(paths)
    names = ", ".join(Path(p).name for p in data.files)
    models = data.models
    return Reference(data.faces, f"log {names}",
                     f"reference log(s) {', '.join(data.files)}: {len(data.faces)} faces in "
                     f"{len(data.frames)} frames", models[0] if len(models) == 1 else None,
                     data.messages())


def load_reference(spec: str | list[str], dataset=None, model: str = "shipped-int8",
                   limit: int | None = None) -> Reference:
    """`fer2013` / `fer2013:<split>` or one or more reference logs."""
    specs = [spec] if isinstance(spec, str) else list(spec)
    if len(specs) == 1 and specs[0].split(":")[0].lower() == "fer2013":
        split = specs[0].split(":", 1)[1] if ":" in specs[0] else "Training"
        return fer2013_reference(dataset, split, model, limit)
    return log_reference(specs)


def describe(reference: Reference) -> dict:
    return json.loads(json.dumps({"name": reference.name, "description": reference.description,
                                  "faces": int(len(reference.faces)),
                                  "model_id": reference.model_id,
                                  "problems": reference.problems}))
