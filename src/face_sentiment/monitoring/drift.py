"""Drift of live faces against a reference, per column and per window, with Evidently.

Columns (`MONITORED`): the quality of the aligned crop (brightness, contrast, sharpness,
clipped_fraction), the face's size, detector score and eye-line angle, and the model's output
treated as monitored columns too, which is prediction drift without labels: the top class
(`top`, categorical), its probability and the entropy. A column is tested when both sides have
at least `min_faces` values of it (FER2013 has no size, score or angle; the Haar detector no
angle).

Tests: Evidently's stattests, chosen explicitly instead of by sample size so a window of 40
faces and one of 4,000 are judged alike: the Wasserstein distance normed by the reference's
standard deviation for numeric columns, the Jensen-Shannon distance for the top class. Both
are effect sizes, not p-values: faces of one video are far from independent draws (the same
few people in consecutive frames), and a p-value would flag any large window. A column drifts
when its distance reaches its threshold; a window drifts when the share of its tested columns
that drift reaches `drift_share` (Evidently's dataset drift rule). The default thresholds are
the ones measured in notebook 10 (false alarms on windows from the same distribution,
detection of darkened, blurred, downscaled and rotated frames); see `DEFAULTS`.

Windows (`parse_window`): by time (`10min`, `30s`, `2h`, on each frame's `time`) or by count
(`200faces`, `50frames`), laid back from the end of the log, so the last window, the current
one, is complete and the first may be partial.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from face_sentiment.monitoring.settings import (  # noqa: F401 - re-exported
    CATEGORICAL,
    DEFAULTS,
    MODEL_OUTPUT,
    MONITORED,
    NUMERIC,
    DriftSettings,
    Window,
    parse_window,
)


def assign_windows(faces: pd.DataFrame, frames: pd.DataFrame, window: Window
                   ) -> tuple[pd.Series, pd.Series, pd.DataFrame]:
    """Window number of each face and each frame (0 = oldest) and a table of windows: start and
    end time, frames, faces and the lines of each file they span. Laid back from the end."""
    times = frames["time"].to_numpy(float)
    if window.kind == "seconds":
        end = times.max()
        frame_window = np.floor((end - times) / window.size).astype(int)
    elif window.kind == "frames":
        order = np.arange(len(frames))[::-1]  # frames are sorted by time
        frame_window = order // int(window.size)
    else:  # faces: the frame of the face that starts a new window begins it
        counts = frames["faces"].to_numpy(int)[::-1]
        cumulative = np.cumsum(counts) - counts  # faces after this frame
        frame_window = (cumulative // int(window.size))[::-1]
    count = int(frame_window.max()) + 1 if len(frame_window) else 0
    frame_window = count - 1 - frame_window  # oldest first
    frame_series = pd.Series(frame_window, index=frames.index, name="window")
    key = pd.MultiIndex.from_frame(frames[["file", "line"]])
    lookup = pd.Series(frame_window, index=key)
    face_series = pd.Series(
        lookup.reindex(pd.MultiIndex.from_frame(faces[["file", "line"]])).to_numpy(),
        index=faces.index, name="window") if len(faces) else pd.Series([], dtype=int)
    rows = []
    for number in range(count):
        in_window = frames[frame_window == number]
        if window.kind == "seconds":
            end_time = times.max() - (count - 1 - number) * window.size
            start_time = end_time - window.size
        else:
            start_time = float(in_window["time"].min()) if len(in_window) else math.nan
            end_time = float(in_window["time"].max()) if len(in_window) else math.nan
        spans = {str(f): [int(g["line"].min()), int(g["line"].max())]
                 for f, g in in_window.groupby("file")}
        rows.append({"window": number, "start": start_time, "end": end_time,
                     "frames": int(len(in_window)), "faces": int(in_window["faces"].sum()),
                     "lines": spans})
    return face_series, frame_series, pd.DataFrame(rows)


def describe_window(row: dict | pd.Series) -> str:
    """'window 3 (2026-12-01 12:00:00 to 12:10:00 UTC; results.jsonl lines 120-180)'."""
    start, end = row["start"], row["end"]
    when = ""
    if start == start and end == end:  # not NaN
        first = pd.Timestamp(start, unit="s").strftime("%Y-%m-%d %H:%M:%S")
        last = pd.Timestamp(end, unit="s").strftime("%H:%M:%S")
        when = f"{first} to {last} UTC"
    spans = "; ".join(f"{name} lines {a}-{b}" if a != b else f"{name} line {a}"
                      for name, (a, b) in (row["lines"] or {}).items())
    inside = "; ".join(x for x in (when, spans or "no records") if x)
    return f"window {row['window']} ({inside})"


# ------------------------------------------------------------------------------------------
# Tests


def _column_type(column: str):
    from evidently.legacy.core import ColumnType
    return ColumnType.Categorical if column in CATEGORICAL else ColumnType.Numerical


def column_drift(reference: pd.Series, current: pd.Series, column: str,
                 settings: DriftSettings = DEFAULTS) -> dict:
    """One column's Evidently stattest (settings' method and threshold), NaNs left out."""
    from evidently.legacy.calculations.stattests import get_stattest
    ref, cur = reference.dropna(), current.dropna()
    if column in CATEGORICAL:
        ref, cur = ref.astype(str), cur.astype(str)
    else:
        ref, cur = ref.astype(float), cur.astype(float)
    kind = _column_type(column)
    test = get_stattest(ref, cur, kind, settings.method(column))
    result = test(ref, cur, kind, settings.threshold(column))
    return {"column": column, "kind": "categorical" if column in CATEGORICAL else "numeric",
            "method": test.display_name, "score": float(result.drift_score),
            "threshold": float(result.actual_threshold), "drifted": bool(result.drifted),
            "n_reference": int(len(ref)), "n_current": int(len(cur))}


def testable_columns(reference: pd.DataFrame, current: pd.DataFrame,
                     settings: DriftSettings = DEFAULTS,
                     columns: tuple[str, ...] = MONITORED) -> tuple[list[str], dict[str, str]]:
    """Columns with at least `min_faces` values on both sides, and why the others are not."""
    tested, skipped = [], {}
    for column in columns:
        in_ref = column in reference and reference[column].notna().sum() >= settings.min_faces
        if not in_ref:
            skipped[column] = "not in the reference" if column not in reference or \
                reference[column].notna().sum() == 0 else "too few reference values"
            continue
        if column not in current or current[column].notna().sum() < settings.min_faces:
            skipped[column] = "too few values in the window"
            continue
        tested.append(column)
    return tested, skipped


def window_drift(reference: pd.DataFrame, current: pd.DataFrame,
                 settings: DriftSettings = DEFAULTS,
                 columns: list[str] | None = None) -> dict:
    """Every testable column's test and the window's verdict (Evidently's dataset-drift rule:
    drifted share >= drift_share)."""
    if columns is None:
        columns, skipped = testable_columns(reference, current, settings)
    else:
        skipped = {}
    results = [column_drift(reference[c], current[c], c, settings) for c in columns]
    drifted = [r["column"] for r in results if r["drifted"]]
    share = len(drifted) / len(results) if results else math.nan
    return {"columns": results, "skipped": skipped, "drifted_columns": drifted,
            "drift_share": share, "tested": len(results),
            "dataset_drift": bool(results) and share >= settings.drift_share}


def window_timeline(faces: pd.DataFrame, frames: pd.DataFrame, reference: pd.DataFrame,
                    window: Window, settings: DriftSettings = DEFAULTS,
                    classes: tuple[str, ...] = ()) -> tuple[pd.DataFrame, list[dict]]:
    """One row per window: faces, status (tested / too few faces / no faces / no records),
    drift share, verdict, each column's score and each class's share of the top predictions;
    and the per-window test details."""
    face_window, _, windows = assign_windows(faces, frames, window)
    columns, _ = testable_columns(reference, faces, settings)
    classes = tuple(classes) or tuple(sorted(faces["top"].dropna().unique()))
    rows, details = [], []
    for _, info in windows.iterrows():
        current = faces[face_window == info["window"]]
        row = {**info.to_dict(), "status": "tested", "drift_share": math.nan,
               "dataset_drift": False, "drifted_columns": ""}
        counts = current["top"].value_counts(normalize=True)
        row.update({f"share_{c}": float(counts.get(c, 0.0)) for c in classes})
        detail = {"window": int(info["window"]), "status": "tested", "result": None}
        if info["frames"] == 0:
            row["status"] = detail["status"] = "no records"
        elif len(current) == 0:
            row["status"] = detail["status"] = "no faces"
        elif len(current) < settings.min_faces:
            row["status"] = detail["status"] = f"too few faces ({len(current)} < " \
                                               f"{settings.min_faces})"
        else:
            usable = [c for c in columns if current[c].notna().sum() >= settings.min_faces]
            result = window_drift(reference, current, settings, usable)
            detail["result"] = result
            row.update(drift_share=result["drift_share"], dataset_drift=result["dataset_drift"],
                       drifted_columns=", ".join(result["drifted_columns"]))
            row.update({f"score_{r['column']}": r["score"] for r in result["columns"]})
        rows.append(row)
        details.append(detail)
    return pd.DataFrame(rows), details


def evidently_report(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str],
                     settings: DriftSettings = DEFAULTS):
    """Evidently's DataDriftPreset on `columns` with these settings (tests included): the
    snapshot, for `save_html` / `dict()`."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset
    numeric = [c for c in columns if c not in CATEGORICAL]
    categorical = [c for c in columns if c in CATEGORICAL]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)

    def dataset(frame: pd.DataFrame):
        table = frame[columns].copy()
        for c in numeric:
            table[c] = table[c].astype(float)
        for c in categorical:
            table[c] = table[c].astype(str).where(table[c].notna(), None)
        return Dataset.from_pandas(table.reset_index(drop=True), data_definition=definition)

    preset = DataDriftPreset(columns=columns, drift_share=settings.drift_share,
                             num_method=settings.num_method, cat_method=settings.cat_method,
                             num_threshold=settings.num_threshold,
                             cat_threshold=settings.cat_threshold,
                             per_column_threshold=dict(settings.per_column) or None)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        # its correlation widgets divide by zero on a constant column (clipped_fraction 0)
        warnings.simplefilter("ignore", RuntimeWarning)
        return Report([preset], include_tests=True).run(dataset(current), dataset(reference))


def evidently_columns(snapshot) -> dict[str, dict]:
    """{column: {score, threshold, method}} and the drifted-columns share from a snapshot."""
    out: dict[str, dict] = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            out[config["column"]] = {"score": float(metric["value"]),
                                     "threshold": config.get("threshold"),
                                     "method": config.get("method")}
        elif config.get("type", "").endswith("DriftedColumnsCount"):
            out["__share__"] = {"count": metric["value"]["count"],
                                "share": metric["value"]["share"]}
    return out
