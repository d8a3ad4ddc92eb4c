"""The store's offline tables (parquet, one per feature view) from the project's own data.

- `fer2013_tables(dataset)`: the canonical FER2013 cache; `image_id` is the row in the cache,
  `dataset` "fer2013". Quality features are the cache's (`data.quality`, the definition live
  faces use too), labels FER2013's, FER+ votes where the cache has them. FER2013 images have
  no capture time: they carry one fixed event timestamp, `FER2013_TIME` (the challenge data's
  release, 2013-07-01 UTC), and FER+ votes `FERPLUS_TIME` (their release, 2016-08-01 UTC), so
  a training set "as of" 2014 has no FER+ votes and one as of today has them.
- `batch_tables(dataset)`: a labelled folder batch (`data.folder_dataset`), `image_id` its row
  in labels.csv, event timestamp its labelling time (a `time` column, else the time given,
  else labels.csv's modification time); quality features of the face crop the model would see
  (`dataset_faces`: crops as they are, photographs detected and aligned).
- `log_tables(paths)`: the Pi runner's logs read by `monitoring.logs`: one `live_faces` row per
  logged face (device, track, frame time as event timestamp, crop quality, face size, detector
  score, the 7 class probabilities, model id) and one `live_frames` row per frame. The store
  wants complete records: a line with a missing field, or one that is not JSON, is an error
  naming file and line (the monitor, by contrast, skips it); only a truncated last line (a
  power loss mid-write) is skipped, with a warning.
- `label_corrections(store, path)`: a CSV of corrected labels (dataset, image_id, label
  [, time]) as new `image_labels` rows stamped at their correction time (default: now), so a
  point-in-time join as of an earlier time still returns the label valid then.
- `write_tables(store, tables)`: merge into the views' parquet files, atomically. A row
  replaces one with the same entity key and event timestamp; others are kept, so a later
  corrected label adds history instead of overwriting it.
- `ingest_fer2013(store, dataset)`: the FER2013 tables written, and the cache they came from
  recorded (`fer2013_ingested`), so a reader can tell the store's image ids are this cache's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from face_sentiment.features.store import (
    StoreError,
    data_folder,
    feature_view,
    table_path,
)
from face_sentiment.labels import FER2013_CLASSES, FERPLUS_CLASSES, FERPLUS_VOTE_COLUMNS, SPLITS
from face_sentiment.paths import atomic_target, write_atomic

FER2013_TIME = pd.Timestamp("2013-07-01", tz="UTC")  # Goodfellow et al., arXiv 1307.0414
FERPLUS_TIME = pd.Timestamp("2016-08-01", tz="UTC")  # Barsoum et al., arXiv 1608.01041
FER2013 = "fer2013"
QUALITY = ("brightness", "contrast", "sharpness", "clipped_fraction", "near_blank")
VOTE_NAMES = tuple(f"votes_{name.lower()}" for name in FERPLUS_VOTE_COLUMNS)
# Log fields the store needs in every frame and face (monitoring.logs reports their absence).
STRICT_PROBLEMS = {"not-json", "not-object", "missing-frame-field", "bad-frame-field",
                   "bad-face", "missing-face-field"}
CLASS_INDEX = {name: i for i, name in enumerate(FER2013_CLASSES)}  # label -> label_index
IMAGE_KEYS = ("dataset", "image_id")
KEYS = {"image_quality": IMAGE_KEYS, "image_labels": IMAGE_KEYS, "ferplus_votes": IMAGE_KEYS,
        "image_split": IMAGE_KEYS, "live_faces": ("device_id", "track_id"),
        "live_frames": ("device_id",)}


class LogFieldError(ValueError):
    """A runner log line the store cannot use (the message names file and line)."""


def _now() -> pd.Timestamp:
    return pd.Timestamp(datetime.now(UTC))


def _stamped(table: pd.DataFrame, when, created: pd.Timestamp) -> pd.DataFrame:
    """Add event and created timestamps, in microseconds (parquet's resolution here: a log's
    float seconds would otherwise fail to cast)."""
    if isinstance(when, pd.Timestamp):
        table["event_timestamp"] = when.round("us")
    else:
        table["event_timestamp"] = pd.to_datetime(when, utc=True).dt.round("us").to_numpy()
    table["created"] = created.round("us")
    return table


def _image_keys(name: str, count: int, rows: np.ndarray | None = None) -> pd.DataFrame:
    ids = np.arange(count, dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
    return pd.DataFrame({"dataset": name, "image_id": ids})


def fer2013_tables(dataset, rows: np.ndarray | slice | None = None) -> dict[str, pd.DataFrame]:
    """The FER2013 cache (`data.cache.load_dataset()`) as the image views' tables; `rows`
    restricts them to some cache rows (image ids stay the cache's row numbers)."""
    index = np.arange(len(dataset.labels))
    if rows is not None:
        index = index[rows]
    created = _now()
    keys = _image_keys(FER2013, 0, index)
    quality = pd.concat([keys, dataset.features.iloc[index][list(QUALITY)]
                         .reset_index(drop=True)], axis=1)
    labels = dataset.labels[index].astype(np.int64)
    tables = {
        "image_quality": _stamped(quality, FER2013_TIME, created),
        "image_labels": _stamped(keys.assign(
            label=np.asarray(FER2013_CLASSES, dtype=object)[labels], label_index=labels),
            FER2013_TIME, created),
        "image_split": _stamped(keys.assign(
            split=np.asarray(SPLITS, dtype=object)[dataset.splits[index]]), FER2013_TIME,
            created),
    }
    if dataset.ferplus_votes is not None:
        votes = pd.DataFrame(dataset.ferplus_votes[index].astype(np.int64),
                             columns=list(VOTE_NAMES))
        majority = dataset.ferplus_labels[index]
        names = np.asarray(FERPLUS_CLASSES + ("",), dtype=object)[
            np.where(majority >= 0, majority, len(FERPLUS_CLASSES))]
        tables["ferplus_votes"] = _stamped(pd.concat([keys, votes], axis=1).assign(
            ferplus_label=names), FERPLUS_TIME, created)
    return tables


def parse_times(values: pd.Series, where: str, blank: pd.Timestamp | None = None
                ) -> pd.Series:
    """A `time` column (seconds since the epoch or ISO 8601) as UTC timestamps; a blank cell
    takes `blank` when given, else it is an error naming the row (`where` row N)."""
    values = values.reset_index(drop=True)
    numeric = pd.to_numeric(values, errors="coerce")
    seconds = numeric.notna()
    parsed = pd.to_datetime(values.where(~seconds), utc=True, errors="coerce")
    parsed[seconds] = pd.to_datetime(numeric[seconds], unit="s", utc=True)
    if blank is not None:
        parsed = parsed.where(values.astype(str).str.strip() != "", blank)
    bad = parsed.index[parsed.isna()]
    if len(bad):
        raise ValueError(f"{where} row {bad[0] + 2}: 'time' {values[bad[0]]!r} is neither "
                         "seconds since the epoch nor an ISO 8601 time")
    return parsed


def _labelling_times(dataset, labelled_at) -> pd.Series:
    """Per row: labels.csv's `time` (epoch seconds or ISO 8601), else `labelled_at`, else the
    modification time of labels.csv (of the zip holding it)."""
    table = dataset.table
    if "time" in table:
        return parse_times(table["time"], f"{dataset.source}: labels.csv")
    if labelled_at is not None:
        when = pd.Timestamp(labelled_at)
        when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
    else:
        source = Path(dataset.source)
        labels_file = source / "labels.csv" if source.is_dir() else source
        when = pd.Timestamp(labels_file.stat().st_mtime, unit="s", tz="UTC")
    return pd.Series([when] * len(table))


def batch_tables(dataset, name: str | None = None, labelled_at=None,
                 split: str | Sequence[str] = "Training", detector: str = "blazeface-full",
                 crops=None) -> dict[str, pd.DataFrame]:
    """A labelled folder batch (`data.folder_dataset.load_folder_dataset`) as the image views'
    tables, under dataset name `name` (default: the batch's name). `split`: one split for every
    row, or one per row; `crops`: the batch's `FaceCrops` when already detected (else the
    faces are detected here)."""
    from face_sentiment.data.folder_dataset import dataset_faces
    from face_sentiment.data.quality import quality_features
    name = name or dataset.name
    if name == FER2013:
        raise ValueError(f"{dataset.source}: a batch cannot be named {FER2013!r} (the cache's)")
    if not isinstance(split, str) and len(split) != len(dataset.table):
        raise ValueError(f"{dataset.source}: {len(split)} splits for {len(dataset.table)} rows")
    when = _labelling_times(dataset, labelled_at)
    created = _now()
    keys = _image_keys(name, len(dataset.table))
    crops = crops if crops is not None else dataset_faces(dataset, detector)
    quality = pd.concat([keys[crops.found].reset_index(drop=True),
                         quality_features(crops.faces)], axis=1)
    labels = dataset.table["label"].reset_index(drop=True)
    index = labels.map(CLASS_INDEX).fillna(-1)
    return {
        "image_quality": _stamped(quality, when[crops.found].reset_index(drop=True), created),
        "image_labels": _stamped(keys.assign(label=labels.to_numpy(object),
                                             label_index=index.astype(np.int64).to_numpy(),
                                             path=dataset.table["path"].to_numpy(object)),
                                 when, created),
        "image_split": _stamped(keys.assign(
            split=split if isinstance(split, str) else np.asarray(split, dtype=object)),
            when, created),
    }


def _correction_rows(path: Path) -> pd.DataFrame:
    """The corrections CSV, checked row by row (errors name the file and row)."""
    if not path.is_file():
        raise FileNotFoundError(f"label corrections {path} do not exist")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        table = pd.DataFrame()
    missing = [c for c in ("dataset", "image_id", "label") if c not in table]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)} (needs dataset, "
                         "image_id, label[, time])")
    if table.empty:
        raise ValueError(f"{path} has no rows: nothing to correct")
    pairs = zip(table["image_id"], table["label"], strict=True)
    for row, (image_id, label) in enumerate(pairs, start=2):
        if not image_id.strip().isdigit():
            raise ValueError(f"{path} row {row}: image_id {image_id!r} is not a row number")
        if label not in FER2013_CLASSES:
            raise ValueError(f"{path} row {row}: label {label!r} is not one of "
                             f"{', '.join(FER2013_CLASSES)}")
    return table


def label_corrections(store, path: str | os.PathLike) -> dict[str, pd.DataFrame]:
    """Corrected labels (CSV: dataset, image_id, label[, time]) as `image_labels` rows stamped
    at their `time` (seconds since the epoch or ISO 8601; default: now). Every image must be
    in the store already (its `image_split` table)."""
    path = Path(path)
    table = _correction_rows(path)
    split_path = table_path(store, "image_split")
    known = pd.read_parquet(split_path, columns=["dataset", "image_id"]) \
        if split_path.is_file() else pd.DataFrame(columns=["dataset", "image_id"])
    known = pd.MultiIndex.from_frame(known.drop_duplicates())
    ids = table["image_id"].astype(np.int64)
    present = pd.MultiIndex.from_arrays([table["dataset"], ids]).isin(known)
    if not present.all():
        row = int(np.flatnonzero(~present)[0])
        raise ValueError(f"{path} row {row + 2}: image {table['dataset'][row]}/{ids[row]} is "
                         "not in the store (ingest its dataset first: `face-sentiment "
                         "features ingest --fer2013` or `--batch`)")
    now = _now()
    if "time" in table:
        when = parse_times(table["time"], str(path), blank=now)
    else:
        when = pd.Series([now] * len(table))
    index = table["label"].map(CLASS_INDEX)
    labels = pd.DataFrame({"dataset": table["dataset"].to_numpy(object),
                           "image_id": ids.to_numpy(), "label": table["label"].to_numpy(object),
                           "label_index": index.astype(np.int64).to_numpy()})
    return {"image_labels": _stamped(labels, when, now)}


def _strict(data) -> list[str]:
    """Raise on the log problems the store cannot accept; the warnings for the rest."""
    fatal = [p.message() for p in data.problems if p.kind in STRICT_PROBLEMS]
    if fatal:
        raise LogFieldError("log not ingested: " + "; ".join(fatal))
    return data.messages()


def log_tables(paths: list[str | os.PathLike]) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The runner's logs as `live_faces` and `live_frames` tables, and warnings (a truncated
    last line skipped)."""
    from face_sentiment.monitoring.logs import load_logs
    data = load_logs(list(paths))
    warnings = _strict(data)
    faces, frames = data.faces, data.frames
    nameless = frames[frames["device"].isna()]
    if len(nameless):
        row = nameless.iloc[0]
        raise LogFieldError(f"log not ingested: {row['file']}: line {row['line']}: missing "
                            "field 'device' in the frame record")
    classes = tuple(data.classes)
    if len(faces) and classes != FER2013_CLASSES:
        raise LogFieldError(f"log not ingested: {', '.join(data.files)}: class probabilities "
                            f"{', '.join(classes)}; the store's live_faces view holds "
                            f"{', '.join(FER2013_CLASSES)}")
    created = _now()
    face_table = pd.DataFrame({
        "device_id": faces["device"].astype(str),
        "track_id": pd.to_numeric(faces["track"], errors="coerce").fillna(-1).astype(np.int64),
        **{c: faces[c].astype(float) for c in ("brightness", "contrast", "sharpness",
                                               "clipped_fraction", "face_px", "eye_angle",
                                               "score", "top_confidence", "entropy")},
        "top": faces["top"].astype(object), "label": faces["label"].astype(object),
        **{f"p_{c}": faces[f"p_{c}"].astype(float) for c in FER2013_CLASSES},
        "model_id": faces["model"].astype(object),
        "frame": pd.to_numeric(faces["frame"], errors="coerce").fillna(-1).astype(np.int64),
        "source": faces["source"].astype(object), "face_index": faces["face"].astype(np.int64),
        "true_label": faces["true_label"].astype(object),
        "log_file": faces["file"].astype(str), "log_line": faces["line"].astype(np.int64),
    })
    face_table = _stamped(face_table, pd.to_datetime(faces["time"], unit="s", utc=True),
                          created)
    tracks = face_table.groupby(["log_file", "log_line"])["track_id"].apply(
        lambda ids: np.asarray(ids, np.int64))
    frame_keys = pd.MultiIndex.from_frame(frames[["file", "line"]].astype({"file": str}))
    empty = np.zeros(0, np.int64)
    frame_table = pd.DataFrame({
        "device_id": frames["device"].astype(str),
        "frame": pd.to_numeric(frames["frame"], errors="coerce").fillna(-1).astype(np.int64),
        "source": frames["source"].astype(object), "faces": frames["faces"].astype(np.int64),
        "track_ids": [tracks.get(key, empty) for key in frame_keys],
        "model_id": frames["model"].astype(object),
        "log_file": frames["file"].astype(str), "log_line": frames["line"].astype(np.int64),
    })
    frame_table = _stamped(frame_table, pd.to_datetime(frames["time"], unit="s", utc=True),
                           created)
    return {"live_faces": face_table, "live_frames": frame_table}, warnings


def required_columns(view) -> list[str]:
    """Columns a view's offline table must have: join keys, features, the two timestamps."""
    return [*view.join_keys, *(f.name for f in view.features), "event_timestamp", "created"]


def write_tables(store, tables: dict[str, pd.DataFrame]) -> dict[str, tuple[Path, int]]:
    """Merge each table into its view's parquet file (atomically); returns per view the file
    and its row count after the merge."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    written = {}
    for name, table in tables.items():
        view = feature_view(store, name)
        missing = [c for c in required_columns(view) if c not in table]
        if missing:
            raise StoreError(f"feature view {name!r}: the table to ingest lacks column(s) "
                             f"{', '.join(missing)}")
        path = table_path(store, name)
        keys = [*KEYS[name], "event_timestamp"]
        if path.is_file():
            table = pd.concat([pd.read_parquet(path), table], ignore_index=True)
        table = table.drop_duplicates(subset=keys, keep="last")
        table = table.sort_values(keys, kind="stable").reset_index(drop=True)
        arrow = pa.Table.from_pandas(table, preserve_index=False)
        if "track_ids" in table:  # all-empty lists would be inferred as list<null>
            column = arrow.schema.get_field_index("track_ids")
            arrow = arrow.set_column(column, "track_ids", pa.array(
                [list(map(int, ids)) for ids in table["track_ids"]], pa.list_(pa.int64())))
        with atomic_target(path) as staging:
            pq.write_table(arrow, staging, coerce_timestamps="us")
        written[name] = (path, len(table))
    return written


FER2013_RECORD = "fer2013.json"  # beside the registry: which cache the FER2013 rows came from


def ingest_fer2013(store, dataset, rows: np.ndarray | slice | None = None
                   ) -> dict[str, tuple[Path, int]]:
    """Write the FER2013 cache's image tables (`fer2013_tables`) and record the cache they
    came from (its data hash and how many rows), which `fer2013_ingested` reads back."""
    tables = fer2013_tables(dataset, rows)
    written = write_tables(store, tables)
    record = {"sha256": dataset.data_hash, "rows": len(tables["image_split"]),
              "ingested": _now().isoformat()}
    write_atomic(data_folder(store) / FER2013_RECORD, json.dumps(record, indent=2) + "\n")
    return written


def fer2013_ingested(store) -> dict | None:
    """The record `ingest_fer2013` left (data hash, rows), or None before any ingest."""
    path = data_folder(store) / FER2013_RECORD
    return json.loads(path.read_text()) if path.is_file() else None
