"""Attach Microsoft's FER+ relabelling (`fer2013new.csv`, MIT) to FER2013.

FER+ has one row per row of `fer2013.csv`, in the same order, with ten annotators' votes over
eight emotions plus `unknown` and `NF` (not a face). Rows are joined by position: the
`Image name` column drifts from the row index and repeats four names.

Majority rule (documented in the README): the label is the column with the most votes; the row
is valid when that column is an emotion and no other column ties with it. Rows FER+ dropped
(empty `Image name`) or whose top vote is `unknown`/`NF` are flagged invalid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from face_sentiment.data.fer2013 import DataError
from face_sentiment.labels import (
    FER2013_CLASSES,
    FERPLUS_CLASSES,
    FERPLUS_VOTE_COLUMNS,
    FERPLUS_VOTE_TO_CLASS,
    SPLITS,
)
from face_sentiment.paths import locate_input

if TYPE_CHECKING:
    from face_sentiment.data.cache import Fer2013Dataset

FERPLUS_ENV = "FERPLUS_PATH"
FERPLUS_HELP = (
    "FER+ labels: download fer2013new.csv from https://github.com/microsoft/FERPlus and put it at "
    f"data/raw/fer2013new.csv, or set {FERPLUS_ENV}."
)


@dataclass(frozen=True)
class FerPlusLabels:
    votes: np.ndarray  # (N, 10) int16 in FERPLUS_VOTE_COLUMNS order
    labels: np.ndarray  # (N,) int8 index into FERPLUS_CLASSES, -1 where invalid
    dropped: np.ndarray  # (N,) bool: FER+ exported no image for this row


def locate_ferplus(path: str | os.PathLike | None = None) -> Path | None:
    """Return the FER+ file if one is configured or present in data/raw, else None."""
    return locate_input(FERPLUS_ENV, ("fer2013new.csv",), "FER+ labels", FERPLUS_HELP,
                        explicit=path, required=False)


def read_ferplus(path: Path, fer2013_splits: np.ndarray, source_format: str) -> FerPlusLabels:
    """Read and validate fer2013new.csv against FER2013's rows (CSV form only)."""
    if source_format != "csv":
        raise DataError(
            f"{path}: FER+ aligns with fer2013.csv row by row; the image-folder release has no "
            "row order to join on. Use fer2013.csv to attach FER+ labels."
        )
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    expected = ["Usage", "Image name", *FERPLUS_VOTE_COLUMNS]
    if list(table.columns) != expected:
        raise DataError(f"{path}: expected columns {expected}, found {list(table.columns)}")
    if len(table) != len(fer2013_splits):
        raise DataError(
            f"{path}: has {len(table)} rows but FER2013 has {len(fer2013_splits)}; FER+ must have "
            "one row per fer2013.csv row"
        )
    usage = table["Usage"].map({name: i for i, name in enumerate(SPLITS)})
    mismatch = np.flatnonzero(usage.to_numpy(dtype=float, na_value=-1) != fer2013_splits)
    if mismatch.size:
        row = int(mismatch[0])
        raise DataError(
            f"{path} line {row + 2}: Usage {table['Usage'].iloc[row]!r} differs from FER2013's "
            f"{SPLITS[fer2013_splits[row]]!r}; the files are not aligned"
        )
    votes = table[list(FERPLUS_VOTE_COLUMNS)].apply(pd.to_numeric, errors="coerce")
    # Ten annotators per image: a vote count is a whole number between 0 and a few dozen.
    bad = (votes.isna() | (votes < 0) | (votes % 1 != 0) | (votes > 1000)).any(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{path} line {row + 2}: votes must be whole numbers from 0 to 1000")
    votes = votes.to_numpy(dtype=np.int16)
    dropped = (table["Image name"].str.strip() == "").to_numpy()
    labels = majority_labels(votes)
    labels[dropped] = -1
    return FerPlusLabels(votes=votes, labels=labels, dropped=dropped)


def majority_labels(votes: np.ndarray) -> np.ndarray:
    """FERPLUS_CLASSES index of each row's top vote; -1 for ties, unknown, NF or no votes."""
    top = votes.argmax(axis=1)
    top_count = votes.max(axis=1)
    tied = (votes == top_count[:, None]).sum(axis=1) > 1
    mapped = np.asarray(FERPLUS_VOTE_TO_CLASS)[top]
    mapped[tied | (top_count == 0)] = -1
    return mapped.astype(np.int8)


def reference_majority_labels(votes: np.ndarray) -> np.ndarray:
    """FERPLUS_CLASSES index under FER+'s reference test rule; -1 where the row has none.

    Microsoft's reference code drops single votes as noise, then labels a row with its top
    column only when that column holds more than half of the remaining votes (unknown and NF
    included), and leaves out rows labelled unknown/NF. Stricter than `majority_labels`; used
    to compare with published FER+ figures.
    """
    kept = np.where(votes > 1, votes, 0)
    mapped = np.asarray(FERPLUS_VOTE_TO_CLASS)[kept.argmax(axis=1)]
    mapped[kept.max(axis=1) <= kept.sum(axis=1) / 2] = -1
    return mapped.astype(np.int8)


def vote_distribution(votes: np.ndarray, drop_single_votes: bool = False) -> np.ndarray:
    """Per-row probability over FERPLUS_CLASSES from the emotion votes (unknown/NF excluded).

    `drop_single_votes` treats an emotion that got only one vote as annotator noise, as FER+'s
    reference training code does; a row left with no votes keeps its raw distribution.
    """
    emotion_votes = np.zeros((len(votes), len(FERPLUS_CLASSES)), dtype=np.float32)
    for column, target in enumerate(FERPLUS_VOTE_TO_CLASS):
        if target >= 0:
            emotion_votes[:, target] += votes[:, column]
    if drop_single_votes:
        cleaned = np.where(emotion_votes > 1, emotion_votes, 0)
        keeps_votes = cleaned.sum(axis=1, keepdims=True) > 0
        emotion_votes = np.where(keeps_votes, cleaned, emotion_votes)
    totals = emotion_votes.sum(axis=1, keepdims=True)
    return np.divide(emotion_votes, totals, out=np.zeros_like(emotion_votes), where=totals > 0)


def ferplus_test(dataset: Fer2013Dataset) -> tuple[np.ndarray, np.ndarray]:
    """PrivateTest rows whose FER+ majority is one of FER2013's seven classes."""
    images, labels = dataset.select("PrivateTest", "ferplus")
    keep = labels < len(FER2013_CLASSES)
    return images[keep], labels[keep]


def ferplus_reference_test(dataset: Fer2013Dataset) -> tuple[np.ndarray, np.ndarray]:
    """PrivateTest rows labelled under FER+'s reference rule (ferplus.reference_majority_labels),
    all eight classes: the protocol published FER+ accuracies use."""
    strict = reference_majority_labels(dataset.ferplus_votes)
    # A strict majority is always the plain majority too; this only drops rows FER+ dropped.
    labels = np.where(dataset.labels_for("ferplus") >= 0, strict, -1)
    keep = dataset.split_mask("PrivateTest") & (labels >= 0)
    return dataset.images[keep], labels[keep].astype(np.int64)
