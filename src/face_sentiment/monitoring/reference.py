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

The room's own reference (`deployment_reference`), the monitor's default: against FER2013 a
real room always drifts (its crops are darker and far blurrier), so a deployment records its
own. It lives in the monitor's output folder, `<out>/reference/<model id>.jsonl` (the
reference frames' log lines, read back like any log) with `<model id>.json` (where they came
from). It is recorded (`record_room_reference`) from

- the first `ROOM_REFERENCE_FACES` faces the deployed model logged, i.e. the first faces after
  its deploy: automatically, by the first monitor run whose logs hold that many faces of the
  current window's model before the current window; a newly deployed model gets its own;
- or a named log: `python -m face_sentiment.monitoring.reference LOG... --out DIR` (all its
  faces, or the first `--faces N`), which replaces the one saved for that model.

Until one exists, FER2013 Training is the labelled fallback, with its own thresholds
(`settings.FER2013_FALLBACK`). Delete the saved files to record anew.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from face_sentiment.live.observations import entropy_bits
from face_sentiment.monitoring.logs import LogData, LogError, load_logs
from face_sentiment.monitoring.settings import FER2013_FALLBACK, DriftSettings, parse_window
from face_sentiment.monitoring.validation import raw_lines, validated
from face_sentiment.paths import atomic_target, data_dir, write_atomic

REFERENCE_COLUMNS = ("brightness", "contrast", "sharpness", "clipped_fraction", "top",
                     "top_confidence", "entropy")


# The room's reference: the first faces after a deploy. 200 is about the shared video's first
# half (214 faces), the reference of notebook 10's false-alarm measurements (0 of 18 windows).
ROOM_REFERENCE_FACES = 200
REFERENCE_FOLDER = "reference"


@dataclass
class Reference:
    """The reference faces (a table with monitored columns) and where they came from.

    `kind`: fer2013, log, room (the deployment's own) or fallback (FER2013 standing in for a
    room reference not recorded yet); `settings`: thresholds that go with this reference when
    the caller gives none (the fallback's own)."""

    faces: pd.DataFrame
    name: str
    description: str
    model_id: str | None = None
    problems: list[str] = field(default_factory=list)
    kind: str = "log"
    settings: DriftSettings | None = None


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
                     f"predictions of model {model_id} ({model})", model_id, kind="fer2013")


def log_reference(paths: list[str | os.PathLike]) -> Reference:
    """The faces of reference logs (e.g. recorded when the demo was set up), checked like the
    monitored logs (`validation`)."""
    data = validated(load_logs(paths))
    names = ", ".join(Path(p).name for p in data.files)
    models = data.models
    return Reference(data.faces, f"log {names}",
                     f"reference log(s) {', '.join(data.files)}: {len(data.faces)} faces in "
                     f"{len(data.frames)} frames", models[0] if len(models) == 1 else None,
                     data.messages())


def is_fer2013(spec: str | list[str] | Reference | None) -> bool:
    """Whether a reference spec names FER2013 (`fer2013`, `fer2013:<split>`)."""
    specs = [spec] if isinstance(spec, (str, os.PathLike)) else spec
    if isinstance(spec, Reference) or not specs or len(specs) != 1:
        return False
    return str(specs[0]).split(":")[0].lower() == "fer2013"


def load_reference(spec: str | list[str], dataset=None, model: str = "shipped-int8",
                   limit: int | None = None) -> Reference:
    """`fer2013` / `fer2013:<split>` or one or more reference logs."""
    specs = [spec] if isinstance(spec, (str, os.PathLike)) else list(spec)
    if is_fer2013(specs):
        specs = [str(specs[0])]
        split = specs[0].split(":", 1)[1] if ":" in specs[0] else "Training"
        return fer2013_reference(dataset, split, model, limit)
    return log_reference(specs)


def with_own_thresholds(reference: Reference, why: str, fallback: bool = True) -> Reference:
    """FER2013 as a room's reference: its own thresholds (`FER2013_FALLBACK`), labelled
    (`fallback`: standing in for a room reference that is missing)."""
    reference.settings = FER2013_FALLBACK
    reference.kind = "fallback" if fallback else "fer2013"
    reference.name = (f"{reference.name} ({'fallback: ' if fallback else ''}{why}; thresholds "
                      f"{FER2013_FALLBACK.num_threshold:g}/{FER2013_FALLBACK.cat_threshold:g})")
    reference.description += (f"; FER2013 stands in for the room's own reference with its own "
                              f"thresholds (numeric {FER2013_FALLBACK.num_threshold:g}, top "
                              f"class {FER2013_FALLBACK.cat_threshold:g}): a room always "
                              "differs from FER2013 more than the defaults allow")
    return reference


# ------------------------------------------------------------------------------------------
# The room's own reference


def _file_name(model_id: str | None) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model_id or "unknown-model")


def room_reference_path(folder: str | os.PathLike, model_id: str | None) -> Path:
    """`<folder>/reference/<model id>.jsonl`: the saved reference of a model's deployment."""
    return Path(folder) / REFERENCE_FOLDER / f"{_file_name(model_id)}.jsonl"


def record_room_reference(data: LogData, folder: str | os.PathLike,
                          model_id: str | None = None, faces: int | None = None,
                          how: str = "named log") -> Path:
    """Save frames of `data` (whole frames, oldest first; the first reaching `faces` faces,
    or all) by `model_id` (default: the logs' one model) as that model's room reference in
    `folder`; returns the saved log. Written atomically, the log before its description."""
    frames = data.frames
    if model_id is None:
        models = data.models
        if len(models) > 1:
            raise LogError(f"{', '.join(data.files)}: written by models {', '.join(models)}: "
                           "a room reference is recorded per model; give one model's logs")
        model_id = models[0] if models else None
    chosen = frames[frames["model"] == model_id] if model_id is not None else frames
    chosen = chosen.sort_values(["time", "file", "line"], kind="stable")
    if faces is not None:
        before = chosen["faces"].cumsum() - chosen["faces"]
        chosen = chosen[before < faces]
    total = int(chosen["faces"].sum())
    if total == 0 or (faces is not None and total < faces):
        raise LogError(f"{', '.join(data.files)}: {total} faces by model {model_id}, "
                       f"{faces or 'some'} needed for a room reference")
    lines: list[bytes] = []
    spans = []
    for name, group in chosen.groupby("file", sort=False):
        wanted = {int(n) for n in group["line"]}
        found = dict(raw_lines(Path(name), wanted))
        lines += [found[int(n)].rstrip(b"\r\n") + b"\n" for n in group["line"]]
        spans.append({"file": str(name), "lines": [int(group["line"].min()),
                                                   int(group["line"].max())]})
    target = room_reference_path(folder, model_id)
    write_atomic(target, b"".join(lines))
    write_atomic(target.with_suffix(".json"), json.dumps({
        "model": model_id, "faces": total, "frames": int(len(chosen)), "how": how,
        "devices": sorted(chosen["device"].dropna().unique().tolist()),
        "start": float(chosen["time"].min()), "end": float(chosen["time"].max()),
        "from": spans, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        indent=2) + "\n")
    return target


def saved_room_reference(folder: str | os.PathLike, model_id: str | None) -> Reference | None:
    """The room reference saved in `folder` for `model_id`, or None."""
    path = room_reference_path(folder, model_id)
    if not path.is_file():
        return None
    reference = log_reference([path])
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(meta["start"])) \
        if "start" in meta else "unknown time"
    reference.kind = "room"
    reference.model_id = model_id
    reference.name = f"room reference ({len(reference.faces)} faces by model {model_id}, {when})"
    reference.description = (f"the room's own reference {path}: {meta.get('how', 'recorded')}"
                             f", {len(reference.faces)} faces in "
                             f"{meta.get('frames', '?')} frames from "
                             + "; ".join(f"{s['file']} lines {s['lines'][0]}-{s['lines'][1]}"
                                         for s in meta.get("from", [])))
    return reference


def current_model(data: LogData, window) -> str | None:
    """The model that wrote most frames of the current (last) window."""
    from face_sentiment.monitoring.drift import assign_windows
    _, frame_window, _ = assign_windows(data.faces, data.frames, parse_window(window))
    if not len(frame_window):
        return None
    models = data.frames.loc[frame_window == frame_window.max(), "model"].dropna()
    return str(models.mode().iloc[0]) if len(models) else None


def deployment_reference(data: LogData, window, folder: str | os.PathLike | None,
                         record: bool = True, faces: int = ROOM_REFERENCE_FACES, dataset=None,
                         model: str = "shipped-int8") -> tuple[Reference, list[str]]:
    """The monitor's default reference for logs `data`, and notes for the reader: the room
    reference saved in `folder` for the current window's model; else, with `record`, one
    recorded now from that model's first `faces` faces, when they all come before the
    current window; else FER2013 Training, the fallback with its own thresholds (also when
    there is no `folder` to keep a room reference in)."""
    from face_sentiment.monitoring.drift import assign_windows
    model_id = current_model(data, window)
    saved = saved_room_reference(folder, model_id) if folder is not None else None
    if saved is not None:
        return saved, []
    notes = []
    if folder is None:
        notes.append("no output folder, so no room reference: FER2013 is the reference")
    elif record:
        _, frame_window, _ = assign_windows(data.faces, data.frames, parse_window(window))
        frames = data.frames[data.frames["model"] == model_id] if model_id is not None \
            else data.frames
        order = frames.sort_values(["time", "file", "line"], kind="stable")
        needed = order[(order["faces"].cumsum() - order["faces"]) < faces]
        before_current = frame_window.loc[needed.index] < frame_window.max()
        if int(needed["faces"].sum()) >= faces and bool(before_current.all()):
            path = record_room_reference(
                data, folder, model_id, faces,
                how=f"the first {faces} faces model {model_id} logged (after its deploy)")
            notes.append(f"recorded the room's reference: the first {faces} faces model "
                         f"{model_id} logged -> {path} (the default from now on; delete it to "
                         "record anew)")
            return saved_room_reference(folder, model_id), notes
        usable = int(frames.loc[frame_window.loc[frames.index] < frame_window.max(),
                                "faces"].sum())
        notes.append(f"no room reference for model {model_id} yet: it is recorded from the "
                     f"first {faces} faces that model logs before the current window (these "
                     f"logs hold {usable}), or from a named log (python -m "
                     "face_sentiment.monitoring.reference LOG --out DIR)")
    else:
        notes.append(f"no room reference for model {model_id} in {Path(folder) / REFERENCE_FOLDER}")
    fallback = with_own_thresholds(load_reference("fer2013", dataset, model),
                                   f"no room reference for model {model_id}")
    return fallback, notes


def describe(reference: Reference) -> dict:
    return json.loads(json.dumps({"name": reference.name, "description": reference.description,
                                  "kind": reference.kind, "faces": int(len(reference.faces)),
                                  "model_id": reference.model_id,
                                  "problems": reference.problems}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m face_sentiment.monitoring.reference",
        description="Save runner log(s) as the room's drift reference: the default of "
                    "`face-sentiment monitor --out DIR` for the logs' model.")
    parser.add_argument("logs", nargs="+", help="the runner's JSON-lines log(s), one model's")
    parser.add_argument("--out", help="the monitor's output folder (default: reports/monitoring)")
    parser.add_argument("--faces", type=int, help="only the first N faces (default: all)")
    args = parser.parse_args(argv)
    from face_sentiment.paths import reports_dir
    out = Path(args.out) if args.out else reports_dir() / "monitoring"
    try:
        data = validated(load_logs(args.logs))
        path = record_room_reference(data, out, faces=args.faces,
                                     how=f"named log(s) {', '.join(data.files)}")
    except (LogError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    meta = json.loads(path.with_suffix(".json").read_text())
    print(f"room reference for model {meta['model']}: {meta['faces']} faces in "
          f"{meta['frames']} frames -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
