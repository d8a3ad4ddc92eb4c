"""Measuring the drift thresholds (notebook 10): false alarms and detection rates.

False alarms: windows drawn from the same distribution as the reference must not be flagged:
(a) FER2013 PublicTest windows against FER2013 Training; (b) the second half of a clip
against its first half (the shared video; the synthetic demo clip), both recorded by the Pi
runner itself into its log. Detection: the second half again, with every frame darkened,
blurred, downscaled or rotated (`shifts`), against the same first half. Every condition is
recorded once and each window's per-column scores computed once (Evidently's stattests, no
threshold); `rates` then applies any thresholds to the scores, so a threshold grid costs
nothing more. A clip gives few frames, so its windows overlap (a window of `size` frames every
`stride` frames): neighbouring windows share frames and are not independent trials; the number
of distinct frames is reported beside each rate.
"""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from face_sentiment.monitoring import drift
from face_sentiment.monitoring.logs import LogData, load_logs
from face_sentiment.monitoring.shifts import shift_frames, write_video

SCORE_ALL = drift.DriftSettings(num_threshold=math.inf, cat_threshold=math.inf,
                                min_faces=10)


def run_runner(video: str | Path, log: str | Path, model: str = "shipped-int8",
               detector: str = "blazeface-full", extra: tuple[str, ...] = ()) -> LogData:
    """The Pi runner (`pi/run.py`'s main) on a video with a fresh log; the log, read back."""
    from face_sentiment.live import runner
    from face_sentiment.model_card import resolve_model
    log = Path(log)
    log.unlink(missing_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):  # the runner's summary table
        code = runner.main(["--source", str(video), "--model", str(resolve_model(model)),
                            "--detector", detector, "--log", str(log), "--threads", "1",
                            "--quiet", *extra])
    if code != 0:
        raise RuntimeError(f"the runner failed on {video} (exit {code})")
    return load_logs(log)


def record_conditions(frames: list[np.ndarray], folder: str | Path, name: str,
                      levels: dict[str, list[float]], fps: float = 30.0,
                      model: str = "shipped-int8", split: str = "halves"
                      ) -> dict[tuple[str, float], LogData]:
    """Lossless videos of the reference part ('reference'), the other part ('none') and the
    other part shifted at each level, each run through the runner: {(shift, level): log}.
    `split`: 'halves' (first half the reference, second half the rest) or 'interleaved' (even
    frames the reference, odd frames the rest: for a clip whose halves differ by design)."""
    folder = Path(folder)
    if split == "halves":
        half = len(frames) // 2
        reference, rest = frames[:half], frames[half:]
    elif split == "interleaved":
        reference, rest = frames[0::2], frames[1::2]
    else:
        raise ValueError(f"split {split!r}: use 'halves' or 'interleaved'")
    conditions = {("reference", 0.0): reference, ("none", 0.0): rest}
    for shift, values in levels.items():
        for level in values:
            conditions[(shift, float(level))] = shift_frames(rest, shift, level)
    logs = {}
    for (shift, level), chosen in conditions.items():
        stem = f"{name}_{shift}_{level:g}"
        video = write_video(chosen, folder / f"{stem}.avi", fps)
        logs[(shift, level)] = run_runner(video, folder / f"{stem}.jsonl", model)
        video.unlink()  # large and regenerable: the log is what is kept
    return logs


def sliding_windows(data: LogData, size: int, stride: int) -> list[pd.DataFrame]:
    """Faces of windows of `size` consecutive logged frames, one every `stride` frames."""
    frames = data.frames.reset_index(drop=True)
    keys = list(zip(data.faces["file"], data.faces["line"], strict=True))
    windows = []
    for start in range(0, max(len(frames) - size, 0) + 1, stride):
        part = frames.iloc[start:start + size]
        wanted = set(zip(part["file"], part["line"], strict=True))
        windows.append(data.faces[[k in wanted for k in keys]])
    return windows


def window_scores(reference: pd.DataFrame, windows: list[pd.DataFrame], **labels
                  ) -> pd.DataFrame:
    """One row per (window, column): the column's drift score (no threshold applied)."""
    rows = []
    for number, current in enumerate(windows):
        result = drift.window_drift(reference, current, SCORE_ALL)
        for column in result["columns"]:
            rows.append({**labels, "window": number, "faces": len(current),
                         "column": column["column"], "score": column["score"]})
    return pd.DataFrame(rows)


def fer2013_scores(dataset, reference: pd.DataFrame, split: str = "PublicTest",
                   window: int = 200, model: str = "shipped-int8", seed: int = 0
                   ) -> pd.DataFrame:
    """Scores of disjoint windows of `window` random images of `split` against `reference`."""
    from face_sentiment.monitoring.reference import fer2013_reference
    faces = fer2013_reference(dataset, split, model).faces
    order = np.random.default_rng(seed).permutation(len(faces))
    windows = [faces.iloc[order[i:i + window]] for i in range(0, len(faces) - window + 1,
                                                              window)]
    return window_scores(reference, windows, source="FER2013", condition=f"{split} vs "
                         "Training", shift="none", level=0.0)


def verdicts(scores: pd.DataFrame, settings: drift.DriftSettings) -> pd.DataFrame:
    """Per window: drifted columns and the verdict under `settings` (scores >= thresholds)."""
    thresholds = scores["column"].map(settings.threshold)
    flagged = scores.assign(drifted=scores["score"] >= thresholds)
    keys = [c for c in ("source", "condition", "shift", "level", "window") if c in scores]
    table = flagged.groupby(keys, dropna=False).agg(
        tested=("column", "size"), drifted=("drifted", "sum"),
        columns=("column", lambda c: ", ".join(c[flagged.loc[c.index, "drifted"]])))
    table["share"] = table["drifted"] / table["tested"]
    table["dataset_drift"] = table["share"] >= settings.drift_share
    return table.reset_index()


def _wilson_columns(table: pd.DataFrame, hits: str, total: str, prefix: str) -> pd.DataFrame:
    """`<prefix>_ci_low/high`: Wilson 95% intervals of hits/total per row. Overlapping windows
    are not independent trials, so these intervals are narrower than the truth."""
    from face_sentiment.stats import wilson_interval

    bounds = [wilson_interval(int(h), int(n)) for h, n in
              zip(table[hits], table[total], strict=True)]
    table[f"{prefix}_ci_low"] = [b[0] for b in bounds]
    table[f"{prefix}_ci_high"] = [b[1] for b in bounds]
    return table


def rates(scores: pd.DataFrame, settings: drift.DriftSettings) -> pd.DataFrame:
    """Share of windows flagged per (source, shift, level), with its Wilson interval: the
    false-alarm rate for unshifted conditions, the detection rate for shifted ones."""
    table = verdicts(scores, settings)
    table = (table.groupby(["source", "shift", "level"], dropna=False)
             .agg(windows=("window", "size"), flagged=("dataset_drift", "sum"),
                  rate=("dataset_drift", "mean"),
                  columns=("columns", lambda c: ", ".join(sorted(
                      {x for v in c for x in v.split(", ") if x}))))
             .reset_index())
    table = _wilson_columns(table, "flagged", "windows", "rate")
    columns = table.pop("columns")
    return table.assign(columns=columns)


def threshold_grid(scores: pd.DataFrame, num_thresholds, cat_thresholds=(0.2,),
                   drift_shares=(0.1,), base: drift.DriftSettings = drift.DEFAULTS
                   ) -> pd.DataFrame:
    """`rates` for every combination: the trade-off between false alarms and detection."""
    rows = []
    for num in num_thresholds:
        for cat in cat_thresholds:
            for share in drift_shares:
                settings = base.with_values(num_threshold=num, cat_threshold=cat,
                                            drift_share=share)
                table = rates(scores, settings).assign(num_threshold=num, cat_threshold=cat,
                                                       drift_share=share)
                rows.append(table)
    return pd.concat(rows, ignore_index=True)


def summary_rates(grid: pd.DataFrame) -> pd.DataFrame:
    """Per setting: the worst false-alarm rate over the unshifted conditions and the mean and
    lowest detection rate over the shifted ones; the worst and the lowest with the Wilson
    interval of their condition's windows."""
    keys = ["num_threshold", "cat_threshold", "drift_share"]

    def extreme(part: pd.DataFrame, largest: bool, name: str) -> pd.DataFrame:
        rows = part.loc[part.groupby(keys)["rate"].idxmax() if largest else
                        part.groupby(keys)["rate"].idxmin()]
        return rows.set_index(keys)[["rate", "rate_ci_low", "rate_ci_high"]].rename(
            columns=lambda c: c.replace("rate", name))

    same = extreme(grid[grid["shift"] == "none"], True, "false_alarm_max")
    shifted = grid[grid["shift"] != "none"]
    mean = shifted.groupby(keys)["rate"].mean().rename("detection_mean")
    return pd.concat([same, mean, extreme(shifted, False, "detection_min")],
                     axis=1).reset_index()


def clip_scores(logs: dict[tuple[str, float], LogData], source: str, size: int, stride: int
                ) -> pd.DataFrame:
    """Sliding-window scores of every condition of a clip against its reference part."""
    reference = logs[("reference", 0.0)].faces
    parts = [window_scores(reference, sliding_windows(data, size, stride), source=source,
                           condition=f"{shift} {level:g}", shift=shift, level=level)
             for (shift, level), data in logs.items() if shift != "reference"]
    return pd.concat(parts, ignore_index=True)


def measure(folder: str | Path, levels: dict[str, list[float]], video: str | Path | None,
            demo_frames: int, dataset, fer_reference: pd.DataFrame,
            video_window: tuple[int, int] = (10, 2), demo_window: tuple[int, int] = (20, 5),
            fer_window: int = 200, model: str = "shipped-int8", seed: int = 0
            ) -> tuple[pd.DataFrame, dict[str, dict]]:
    """Every score notebook 10 needs: the shared video's halves and shifted second halves, the
    demo clip's interleaved frames and shifted odd frames (both through the runner), and
    FER2013 PublicTest windows against Training. Returns (scores, logs by source)."""
    from face_sentiment.live.demo_clip import demo_frames as make_demo
    from face_sentiment.live.frame_sources import read_video_frames
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    logs: dict[str, dict] = {}
    parts = []
    if video is not None and Path(video).is_file():
        frames = read_video_frames(video)
        logs["video"] = record_conditions(frames, folder, "video", levels, model=model)
        parts.append(clip_scores(logs["video"], "video", *video_window))
    demo = make_demo(demo_frames + 10)[10:]  # without the clip's opening empty frames
    logs["demo"] = record_conditions(demo, folder, "demo", levels, model=model,
                                     split="interleaved")
    parts.append(clip_scores(logs["demo"], "demo", *demo_window))
    parts.append(fer2013_scores(dataset, fer_reference, "PublicTest", fer_window, model, seed))
    return pd.concat(parts, ignore_index=True), logs


def distinct_frames(logs: dict[str, dict]) -> pd.DataFrame:
    """Frames and faces each condition's windows were drawn from."""
    return pd.DataFrame([{"source": source, "shift": shift, "level": level,
                          "frames": len(data.frames), "faces": len(data.faces)}
                         for source, conditions in logs.items()
                         for (shift, level), data in conditions.items()])


# --------------------------------------------------------------------------------------------
# Tables for a reader (notebook 10)

QUALITY_COLUMNS = ("brightness", "contrast", "sharpness", "face_px")


def settings_table(settings: drift.DriftSettings) -> pd.DataFrame:
    """Drift settings as a small table (one row per setting; per-column overrides, if any,
    one row each)."""
    values = settings.to_dict()
    overrides = values.pop("per_column") or {}
    rows = [{"setting": key.replace("_", " "), "value": value} for key, value in values.items()]
    rows += [{"setting": f"threshold of {column}", "value": value}
             for column, value in overrides.items()]
    return pd.DataFrame(rows).set_index("setting")


def logged_face(data: LogData, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """One face as the runner logged it: the fields the drift tests read (default: the
    monitored columns), one row each, for a report."""
    from face_sentiment.monitoring.settings import MONITORED

    face = data.faces.iloc[0]
    fields = [c for c in (columns or MONITORED) if c in face.index]
    return pd.DataFrame({"value": [face[c] for c in fields]},
                        index=pd.Index(fields, name="logged field"))


def quality_comparison(current: pd.DataFrame, reference: pd.DataFrame,
                       columns: tuple[str, ...] = QUALITY_COLUMNS) -> pd.DataFrame:
    """Median of each image-quality column in the current faces and in the reference, and
    their ratio (current / reference): e.g. a sharpness ratio of 0.11 means the current crops'
    variance of the Laplacian is a ninth of the reference's (blurrier)."""
    rows = []
    for column in columns:
        if column in current and column in reference and reference[column].notna().any():
            now, then = float(current[column].median()), float(reference[column].median())
            rows.append({"column": column, "current_median": now, "reference_median": then,
                         "ratio": now / then if then else np.nan})
    return pd.DataFrame(rows).set_index("column")


def outcome_table(outcomes: dict) -> pd.DataFrame:
    """`monitor` results by title, one row each: the verdict and exit code, the current window's
    faces and drifted columns (with scores), and how many tested windows drifted."""
    rows = []
    for title, result in outcomes.items():
        current = result.current.get("result") or {}
        drifted = [f"{c['column']} {c['score']:.2f}" for c in current.get("columns", [])
                   if c.get("drifted")]
        tested = result.timeline[result.timeline["status"] == "tested"]
        rows.append({"check": title, "verdict": result.verdict, "exit": result.exit_code,
                     "faces": int(result.current["info"].get("faces", 0)),
                     "drifted columns (score)": ", ".join(drifted) or "none",
                     "windows drifted": f"{int(tested['dataset_drift'].sum())} of {len(tested)}"})
    return pd.DataFrame(rows).set_index("check")


def highest_same_scores(scores: pd.DataFrame, settings: drift.DriftSettings) -> pd.DataFrame:
    """Per source, the highest score of any unshifted window, its column and that column's
    threshold: how much room the thresholds leave."""
    same = scores[scores["shift"] == "none"]
    rows = same.loc[same.groupby("source", sort=False)["score"].idxmax()]
    return pd.DataFrame({"column": rows["column"].to_numpy(),
                         "highest_score": rows["score"].to_numpy(),
                         "threshold": [settings.threshold(c) for c in rows["column"]]},
                        index=pd.Index(rows["source"].to_numpy(), name="source"))
