"""Reading the store: materialization, the point-in-time training set, the online read.

- `materialize`: offline tables -> the SQLite online store (the live views read online, or
  those named).
- `training_set`: `get_historical_features` for an entity table (dataset, image_id,
  event_timestamp): each row gets the feature values valid at its own timestamp (the latest
  row at or before it; nothing from after it), so a label corrected later, or FER+ votes
  published after the timestamp, do not leak into a training set "as of" an earlier time.
- `labels_as_of`: the labels and splits of some images valid at one time (the retrain's
  training labels, `pipeline.feature_store`).
- `online_devices`: each device's latest materialized frame and the latest features of every
  face tracked in it (`get_online_features`, SQLite).
"""

from __future__ import annotations

import contextlib
import io
import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from face_sentiment.features.sources import FER2013_TIME
from face_sentiment.features.store import StoreError, feature_view, table_path
from face_sentiment.paths import atomic_target

IMAGE_VIEWS = ("image_quality", "image_labels", "image_split", "ferplus_votes")
EARLIEST = FER2013_TIME - pd.Timedelta(days=1)


def _utc(when) -> datetime:
    stamp = pd.Timestamp(when)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime()


# The views something reads online (`online_devices`: each device's latest frame and faces).
# The image views (FER2013, batches) are read offline only, by the point-in-time join of
# `training_set`, so they are not copied into the online store unless asked for by name.
ONLINE_VIEWS = ("live_faces", "live_frames")


def materialize(store, start=None, end=None, views: list[str] | None = None) -> list[str]:
    """Load the offline rows with event timestamps in [start, end) (default: from before
    FER2013's release to now) of `views` (default: ONLINE_VIEWS) into the online store;
    returns the views materialized."""
    names = list(views) if views else list(ONLINE_VIEWS)
    if not names:
        raise StoreError(f"no feature view in the registry of {store.repo_path}: run "
                         "`face-sentiment features apply`")
    present = []
    for name in names:
        feature_view(store, name)
        if table_path(store, name).is_file():
            present.append(name)
    if not present:
        raise StoreError(f"nothing to materialize in {store.repo_path}: no offline table of "
                         f"{', '.join(names)} yet (run `face-sentiment features ingest` on the "
                         "runner's logs)")
    end = _utc(end) if end is not None else datetime.now(UTC)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        # Feast's colourised banner and one progress bar per view: summarised by the caller
        store.materialize(_utc(start if start is not None else EARLIEST), end, present)
    return present


def image_features(store, views: tuple[str, ...] = IMAGE_VIEWS) -> list[str]:
    """Feature references (view:feature) of the image views that have an offline table."""
    refs = []
    for name in views:
        if table_path(store, name).is_file():
            refs += [f"{name}:{field.name}" for field in feature_view(store, name).features]
    return refs


def entity_table(store, datasets: list[str], as_of=None, splits: list[str] | None = None
                 ) -> pd.DataFrame:
    """(dataset, image_id, event_timestamp) of every image of `datasets` in the split table
    (optionally only `splits`), all at `as_of` (default: now)."""
    path = table_path(store, "image_split")
    if not path.is_file():
        raise StoreError(f"feature view 'image_split' has no offline table ({path}): run "
                         "`face-sentiment features ingest --fer2013` (or --batch)")
    table = pd.read_parquet(path, columns=["dataset", "image_id", "split", "event_timestamp"])
    known = sorted(table["dataset"].unique())
    unknown = [d for d in datasets if d not in known]
    if unknown:
        raise ValueError(f"dataset(s) {', '.join(unknown)} not in the store's image_split "
                         f"table {path} (it has {', '.join(known) or 'none'})")
    table = table[table["dataset"].isin(datasets)]
    if splits:
        table = table[table["split"].isin(splits)]
    keys = table.drop_duplicates(["dataset", "image_id"])[["dataset", "image_id"]]
    when = _utc(as_of) if as_of is not None else datetime.now(UTC)
    return keys.assign(event_timestamp=pd.Timestamp(when)).reset_index(drop=True)


def training_set(store, entities: pd.DataFrame, features: list[str] | None = None
                 ) -> pd.DataFrame:
    """Point-in-time join of the image views onto `entities` (dataset, image_id,
    event_timestamp): one row per entity row, in their order, each with the feature values
    valid at its own timestamp (missing where a view had no row yet)."""
    missing = [c for c in ("dataset", "image_id", "event_timestamp") if c not in entities]
    if missing:
        raise ValueError(f"entity table lacks column(s) {', '.join(missing)} (needs dataset, "
                         "image_id, event_timestamp)")
    entities = entities.reset_index(drop=True).assign(
        event_timestamp=pd.to_datetime(entities["event_timestamp"], utc=True).to_numpy(),
        image_id=entities["image_id"].astype("int64"), _order=range(len(entities)))
    entities["event_timestamp"] = entities["event_timestamp"].dt.tz_localize("UTC") \
        if entities["event_timestamp"].dt.tz is None else entities["event_timestamp"]
    refs = features or image_features(store)
    if not refs:
        raise StoreError(f"no image view of {store.repo_path} has an offline table: run "
                         "`face-sentiment features ingest --fer2013`")
    # One retrieval per view, joined back by row: Feast 0.48's file (dask) offline store drops
    # an entity row whose view has rows for that key only after the row's timestamp (its
    # _filter_ttl keeps NaN or earlier feature rows, never the entity row itself), so a joint
    # query would lose, e.g., every FER2013 row "as of" 2014 for lack of FER+ votes.
    result = entities
    for view in dict.fromkeys(ref.split(":")[0] for ref in refs):
        part = store.get_historical_features(
            entity_df=entities, features=[r for r in refs if r.split(":")[0] == view]).to_df()
        names = [r.split(":")[1] for r in refs if r.split(":")[0] == view]
        result = result.merge(part[["_order", *names]], on="_order", how="left")
    return result.sort_values("_order").drop(columns="_order").reset_index(drop=True)


LABEL_FEATURES = ("image_labels:label", "image_labels:label_index", "image_split:split")


def labels_as_of(store, keys: pd.DataFrame, as_of) -> pd.DataFrame:
    """`keys` (dataset, image_id) with the label, label index and split each image had in the
    store at `as_of` (a correction stamped later is not seen; NaN where none was valid yet)."""
    entities = keys[["dataset", "image_id"]].assign(event_timestamp=pd.Timestamp(_utc(as_of)))
    return training_set(store, entities, list(LABEL_FEATURES))


def read_entities(path: str | os.PathLike) -> pd.DataFrame:
    """An entity table from CSV or parquet (dataset, image_id, event_timestamp)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"entity table {path} does not exist")
    table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    missing = [c for c in ("dataset", "image_id", "event_timestamp") if c not in table]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)} (needs dataset, "
                         "image_id, event_timestamp)")
    return table


def write_table(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Parquet, or CSV when the name ends in .csv (atomically)."""
    path = Path(path)
    with atomic_target(path) as staging:
        if path.suffix == ".csv":
            table.to_csv(staging, index=False)
        else:
            table.to_parquet(staging, index=False)
    return path


def _stamp(seconds: int) -> pd.Timestamp:
    return pd.Timestamp(seconds, unit="s", tz="UTC")


LIVE_FRAME_FEATURES = ("frame", "source", "faces", "track_ids", "model_id")


def online_devices(store, devices: list[str] | None = None) -> pd.DataFrame:
    """One row per face of each device's latest materialized frame (a device whose latest
    frame has no face: one row without track), from the online store."""
    frames_path = table_path(store, "live_frames")
    if devices is None:
        if not frames_path.is_file():
            raise StoreError(f"feature view 'live_frames' has no offline table ({frames_path}):"
                             " run `face-sentiment features ingest LOG.jsonl`")
        devices = sorted(pd.read_parquet(frames_path, columns=["device_id"])["device_id"]
                         .unique())
    face_view = feature_view(store, "live_faces")
    face_refs = [f"live_faces:{f.name}" for f in face_view.features]
    rows = []
    for device in devices:
        frame = store.get_online_features(
            [f"live_frames:{name}" for name in LIVE_FRAME_FEATURES],
            [{"device_id": device}]).to_dict(include_event_timestamps=True)
        if frame["model_id"][0] is None and frame["faces"][0] is None:
            raise StoreError(f"device {device!r} has no materialized features in the online "
                             f"store of {store.repo_path}: run `face-sentiment features "
                             "materialize` (after ingesting its logs)")
        base = {"device_id": device, "frame_time": _stamp(frame["frame__ts"][0]),
                **{name: frame[name][0] for name in LIVE_FRAME_FEATURES if name != "track_ids"}}
        tracks = list(frame["track_ids"][0] or [])
        if not tracks:
            rows.append(base)
            continue
        faces = store.get_online_features(
            face_refs, [{"device_id": device, "track_id": int(t)} for t in tracks]
        ).to_dict(include_event_timestamps=True)
        for i, track in enumerate(tracks):
            rows.append({**base, "track_id": int(track),
                         "face_time": _stamp(faces["brightness__ts"][i]),
                         **{f.name: faces[f.name][i] for f in face_view.features}})
    return pd.DataFrame(rows)
