"""Performance per window when labels exist: accuracy, macro-F1 and per-class recall, with
95% intervals.

Labels come from a labelled folder dataset captured in the lab (`record.dataset_faces`) or from
a CSV joined to logged frames (`join_labels`: columns `frame,label`, optionally `face` (the
face's index in the frame; without it the label applies to every face of the frame: one
person in view) and `log` (a log file name, when several logs are given)). Accuracy's interval
is `stats.accuracy_interval`'s bootstrap, resampling tracks (one person
followed across frames) when the faces carry track ids, since frames of one person are not
independent; macro-F1's is the percentile bootstrap over the same units; per-class recall's is
Wilson's score interval.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from face_sentiment.stats import (
    accuracy_interval,
    bootstrap,
    macro_f1,
    wilson_interval,
)


class LabelError(ValueError):
    """A labels file is unusable (the message names the file and the row)."""


def join_labels(faces: pd.DataFrame, path: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """`faces` with a `true_label` column from a labels CSV; notes on what did not join."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"labels file {path} does not exist")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in ("frame", "label"):
        if column not in table:
            raise LabelError(f"{path}: missing column {column!r} (columns: frame,label"
                             "[,face][,log])")
    notes = []
    rows = []
    for number, row in table.iterrows():
        try:
            frame = int(row["frame"])
            face = int(row["face"]) if "face" in table and row["face"] != "" else None
        except ValueError:
            raise LabelError(f"{path} row {number + 2}: frame/face must be integers, got "
                             f"{row['frame']!r}") from None
        label = row["label"].strip().lower()
        if not label:
            raise LabelError(f"{path} row {number + 2}: empty label")
        rows.append({"frame": frame, "face": face, "true_label": label,
                     "log": row.get("log") or None})
    labels = pd.DataFrame(rows)
    out = faces.copy()
    out["true_label"] = None
    frame_numbers = pd.to_numeric(out["frame"], errors="coerce")
    file_names = out["file"].map(lambda f: Path(str(f)).name)
    unmatched = 0
    for _, label in labels.iterrows():
        mask = frame_numbers == label["frame"]
        if label["log"]:
            mask &= file_names == Path(label["log"]).name
        if label["face"] is not None:
            mask &= out["face"] == label["face"]
        if not mask.any():
            unmatched += 1
        out.loc[mask, "true_label"] = label["true_label"]
    if unmatched:
        notes.append(f"{path}: {unmatched} of {len(labels)} labels match no logged face "
                     "(frame not logged, or no face found in it)")
    return out, notes


def window_performance(faces: pd.DataFrame, window_of: pd.Series, classes: tuple[str, ...],
                       resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per window with labelled faces: n, accuracy (+ CI), macro-F1 (+ CI) and per-class
    recall (+ Wilson CI) of the raw top class against `true_label`."""
    labelled = faces[faces["true_label"].notna()]
    rows = []
    rng = np.random.default_rng(seed)
    for number in sorted(window_of[labelled.index].dropna().unique()):
        part = labelled[window_of[labelled.index] == number]
        true = part["true_label"].astype(str).to_numpy()
        predicted = part["top"].astype(str).to_numpy()
        correct = true == predicted
        tracks = part["track"]
        clusters = tracks.to_numpy() if tracks.notna().all() and tracks.nunique() > 1 else None
        accuracy, low, high = accuracy_interval(correct, resamples=resamples, seed=seed,
                                                clusters=clusters)
        present = [c for c in classes if np.any(true == c)] or sorted(set(true))
        f1, f1_low, f1_high = bootstrap(partial(macro_f1, classes=present), true, predicted,
                                        clusters=clusters, resamples=resamples, seed=rng)
        row = {"window": int(number), "n": int(len(part)), "accuracy": accuracy,
               "accuracy_low": low, "accuracy_high": high, "macro_f1": f1,
               "macro_f1_low": float(f1_low), "macro_f1_high": float(f1_high)}
        for cls in present:
            support = int(np.sum(true == cls))
            hits = int(np.sum((true == cls) & correct))
            recall_low, recall_high = wilson_interval(hits, support)
            row.update({f"recall_{cls}": hits / support, f"recall_{cls}_low": recall_low,
                        f"recall_{cls}_high": recall_high, f"n_{cls}": support})
        rows.append(row)
    return pd.DataFrame(rows)
