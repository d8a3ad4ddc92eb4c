"""The monitor's windows from the store: logged faces read back from the offline store.

A selector picks live faces: comma-separated `key=value` among `device` (device id),
`model` (model id), `start` / `end` (ISO 8601 or seconds since the epoch; end excluded) and
`last` (a window as the monitor writes it: `10min`, `200faces`, `50frames`, counted back from
the newest selected frame); empty selects everything. `store_window(store, selector)` returns a
`monitoring.logs.LogData` with the columns the monitor reads from logs (file and line are the
original log's). `window_records` turns it back into runner records, which `monitor_inputs`
writes as JSON-lines beside the monitor's report so `face-sentiment monitor --reference
store:SELECTOR` / `--from-store SELECTOR` run the monitor unchanged (monitoring imports nothing
from here).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from face_sentiment.features.store import StoreError, feature_view, table_path
from face_sentiment.labels import FER2013_CLASSES
from face_sentiment.monitoring.logs import FACE_COLUMNS, LogData

SELECTOR_KEYS = ("device", "model", "start", "end", "last")
STORE_PREFIX = "store"
NUMERIC = ("brightness", "contrast", "sharpness", "clipped_fraction", "face_px", "eye_angle",
           "score", "top_confidence", "entropy")


def parse_selector(text: str | None) -> dict[str, str]:
    """'device=pi-1,last=10min' -> {'device': 'pi-1', 'last': '10min'} (checked)."""
    selector: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in SELECTOR_KEYS or not value:
            raise ValueError(f"bad store selector {part!r} in {text!r}: expected key=value with "
                             f"key one of {', '.join(SELECTOR_KEYS)}")
        selector[key] = value
    return selector


def _time(value: str, key: str) -> datetime:
    try:
        stamp = pd.Timestamp(float(value), unit="s", tz="UTC")
    except ValueError:
        try:
            stamp = pd.Timestamp(value)
        except ValueError:
            raise ValueError(f"store selector {key}={value!r}: not an ISO 8601 time or seconds "
                             "since the epoch") from None
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.round("us").to_pydatetime()  # the store's resolution


def _pull(store, name: str, keys: list[str], start: datetime, end: datetime) -> pd.DataFrame:
    """Every offline row of view `name` in [start, end), through Feast's offline store."""
    from feast.infra.offline_stores.offline_utils import get_offline_store_from_config
    view = feature_view(store, name)
    path = table_path(store, name)
    if not path.is_file():
        raise StoreError(f"feature view {name!r} has no offline table ({path}): run "
                         "`face-sentiment features ingest LOG.jsonl`")
    import pyarrow.parquet as pq
    columns = [c for c in pq.read_schema(path).names
               if c not in (*keys, "event_timestamp", "created")]
    offline = get_offline_store_from_config(store.config.offline_store)
    job = offline.pull_all_from_table_or_query(
        store.config, view.batch_source, keys, columns, "event_timestamp", start, end)
    return job.to_df()


def store_window(store, selector: str | dict | None = None) -> LogData:
    """The selected live faces and frames as the monitor reads them from logs."""
    from face_sentiment.monitoring.settings import parse_window
    chosen = parse_selector(selector) if not isinstance(selector, dict) else selector
    start = _time(chosen["start"], "start") if "start" in chosen else datetime(
        1970, 1, 1, tzinfo=UTC)
    end = _time(chosen["end"], "end") if "end" in chosen else datetime(
        2200, 1, 1, tzinfo=UTC)
    frames = _pull(store, "live_frames", ["device_id", "log_file", "log_line"], start, end)
    faces = _pull(store, "live_faces", ["device_id", "log_file", "log_line", "face_index"],
                  start, end)
    for key, column in (("device", "device_id"), ("model", "model_id")):
        if key in chosen:
            frames = frames[frames[column] == chosen[key]]
            faces = faces[faces[column] == chosen[key]]
    frames = frames.sort_values(["event_timestamp", "log_file", "log_line"], kind="stable")
    if "last" in chosen and len(frames):
        window = parse_window(chosen["last"])
        if window.kind == "seconds":
            newest = frames["event_timestamp"].max()
            frames = frames[frames["event_timestamp"] > newest - pd.Timedelta(
                seconds=window.size)]
        elif window.kind == "frames":
            frames = frames.iloc[-int(window.size):]
        else:
            counts = frames["faces"].to_numpy()[::-1].cumsum()[::-1]  # faces from here on
            frames = frames[counts - frames["faces"].to_numpy() < int(window.size)]
    if len(frames) == 0:
        raise StoreError(f"no logged frame in the store of {store.repo_path} matches "
                         f"{selector!r}")
    kept = pd.MultiIndex.from_frame(frames[["log_file", "log_line"]])
    faces = faces[pd.MultiIndex.from_frame(faces[["log_file", "log_line"]]).isin(kept)]
    face_table = pd.DataFrame({
        "file": faces["log_file"], "line": faces["log_line"], "frame": faces["frame"],
        "time": _seconds(faces["event_timestamp"]), "source": faces["source"],
        "device": faces["device_id"], "model": faces["model_id"], "face": faces["face_index"],
        "track": faces["track_id"], "label": faces["label"], "true_label": faces["true_label"],
        **{c: faces[c].astype(float) for c in NUMERIC}, "top": faces["top"],
        **{f"p_{c}": faces[f"p_{c}"].astype(float) for c in FER2013_CLASSES}})
    face_table = face_table.sort_values(["time", "file", "line", "face"], kind="stable")
    frame_table = pd.DataFrame({
        "file": frames["log_file"], "line": frames["log_line"], "frame": frames["frame"],
        "time": _seconds(frames["event_timestamp"]), "source": frames["source"],
        "device": frames["device_id"], "model": frames["model_id"], "faces": frames["faces"]})
    return LogData(face_table[[*FACE_COLUMNS, *(f"p_{c}" for c in FER2013_CLASSES)]]
                   .reset_index(drop=True), frame_table.reset_index(drop=True), [],
                   sorted(frame_table["file"].unique()), FER2013_CLASSES)


def _seconds(stamps: pd.Series) -> pd.Series:
    return pd.to_datetime(stamps, utc=True).astype("int64") / 1e9


def _value(value):
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def window_records(data: LogData) -> list[dict]:
    """Runner log records (`live.runner.frame_record`'s fields) of a store window; each keeps
    the log file and line it was ingested from (`log`, `log_line`)."""
    faces = {key: group for key, group in data.faces.groupby(["file", "line"], sort=False)}
    records = []
    for frame in data.frames.itertuples(index=False):
        group = faces.get((frame.file, frame.line))
        entries, truth = [], None
        for face in (group.itertuples(index=False) if group is not None else ()):
            entry = {"track": _value(face.track), "score": _value(face.score),
                     "label": _value(face.label),
                     "probabilities": {c: _value(getattr(face, f"p_{c}")) for c in
                                       FER2013_CLASSES},
                     **{c: _value(getattr(face, c)) for c in NUMERIC if c != "score"},
                     "top": _value(face.top)}
            entries.append(entry)
            truth = truth or _value(face.true_label)
        record = {"frame": _value(frame.frame), "time": float(frame.time),
                  "source": _value(frame.source), "device": _value(frame.device),
                  "model": _value(frame.model), "faces": entries, "log": str(frame.file),
                  "log_line": int(frame.line)}
        if truth is not None:
            record["true_label"] = truth
        records.append(record)
    return records


def monitor_inputs(args, repo=None) -> object:
    """`face-sentiment monitor` arguments with store windows replaced by JSON-lines files of
    them in the report folder: `--reference store[:SELECTOR]` and `--from-store [SELECTOR]`."""
    from face_sentiment.features.store import open_store
    from face_sentiment.monitoring.record import write_records
    from face_sentiment.paths import reports_dir
    references = list(args.reference or [])
    from_store = getattr(args, "from_store", None)
    wanted = [r for r in references if r.split(":", 1)[0] == STORE_PREFIX]
    if not wanted and from_store is None:
        return args
    if len(wanted) > 1 or (wanted and len(references) > 1):
        raise ValueError("--reference store[:SELECTOR] stands alone (one selector)")
    store = open_store(repo or getattr(args, "feature_repo", None))
    out = Path(args.out) if args.out else reports_dir() / "monitoring"
    if wanted:
        selector = wanted[0].split(":", 1)[1] if ":" in wanted[0] else ""
        path = write_records(window_records(store_window(store, selector)),
                             out / "store_reference.jsonl")
        args.reference = [str(path)]
    if from_store is not None:
        path = write_records(window_records(store_window(store, from_store)),
                             out / "store_current.jsonl")
        args.logs = [*args.logs, str(path)]
    return args
