"""The canonical FER2013 cache in `data/interim/fer2013/`: build it once, load it everywhere.

The raw download is never modified. `build_cache` reads and validates it (and FER+ when
present), computes the per-image quality features and duplicate groups, and writes
`arrays.npz`, `features.parquet` and `manifest.json` into a temporary folder that is renamed
into place only when complete. The manifest's key (source hashes + cache version) decides
whether a later run can reuse the cache.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from face_sentiment.data.fer2013 import locate_fer2013, read_fer2013, sha256_of
from face_sentiment.data.ferplus import locate_ferplus, read_ferplus, vote_distribution
from face_sentiment.data.quality import duplicate_groups, duplicate_summary, quality_features
from face_sentiment.labels import FER2013_CLASSES, FERPLUS_CLASSES, SPLITS, class_names
from face_sentiment.paths import data_dir, replace_dir, staging_dir

CACHE_VERSION = 2
CACHE_NAME = "fer2013"


@dataclass
class Fer2013Dataset:
    """FER2013 in canonical form; arrays are aligned by row."""

    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int8 FER2013 label
    splits: np.ndarray  # (N,) int8 index into SPLITS
    source_ids: np.ndarray  # (N,) str
    features: pd.DataFrame  # quality features + duplicate_group, one row per image
    manifest: dict
    ferplus_votes: np.ndarray | None = None  # (N, 10) int16
    ferplus_labels: np.ndarray | None = None  # (N,) int8, -1 invalid

    def split_mask(self, split: str) -> np.ndarray:
        return self.splits == SPLITS.index(split)

    def labels_for(self, label_set: str) -> np.ndarray:
        """Labels under 'fer2013' or 'ferplus' (-1 where FER+ has no valid majority)."""
        class_names(label_set)
        if label_set == "fer2013":
            return self.labels
        if self.ferplus_labels is None:
            raise ValueError("FER+ labels were requested but no FER+ file was attached "
                             "(set FERPLUS_PATH or put fer2013new.csv in data/raw/)")
        return self.ferplus_labels

    def ferplus_distribution(self, drop_single_votes: bool = False) -> np.ndarray:
        if self.ferplus_votes is None:
            raise ValueError("no FER+ file was attached")
        return vote_distribution(self.ferplus_votes, drop_single_votes)

    def select(self, split: str, label_set: str = "fer2013") -> tuple[np.ndarray, np.ndarray]:
        """Images and labels of one split, rows without a valid label dropped."""
        mask = self._labelled(split, label_set)
        return self.images[mask], self.labels_for(label_set)[mask].astype(np.int64)

    def rows(self, split: str, label_set: str = "fer2013") -> np.ndarray:
        """Cache rows `select(split, label_set)` returns, in the same order."""
        return np.flatnonzero(self._labelled(split, label_set))

    def select_vote_targets(self, split: str) -> np.ndarray:
        """FER+ vote distributions for the rows `select(split, 'ferplus')` returns, in order."""
        mask = self._labelled(split, "ferplus")
        return self.ferplus_distribution(drop_single_votes=True)[mask]

    def training_vote_mix(self, label_set: str = "fer2013") -> tuple[np.ndarray, np.ndarray]:
        """FER+ votes over FER2013's seven classes (contempt dropped, renormalised) for the
        rows `select("Training", label_set)` returns, and a mask of the rows that have such
        votes. Training only, by construction: test rows' votes never reach a training target.
        """
        mask = self._labelled("Training", label_set)
        seven = self.ferplus_distribution(drop_single_votes=True)[mask][:, :len(FER2013_CLASSES)]
        totals = seven.sum(axis=1, keepdims=True)
        voted = totals[:, 0] > 0
        return np.divide(seven, totals, out=np.zeros_like(seven), where=totals > 0), voted

    def _labelled(self, split: str, label_set: str) -> np.ndarray:
        return self.split_mask(split) & (self.labels_for(label_set) >= 0)

    @property
    def data_hash(self) -> str:
        return self.manifest["source_sha256"]


def cache_dir() -> Path:
    return data_dir("interim") / CACHE_NAME


def cache_key(source_sha: str, ferplus_sha: str | None) -> str:
    return f"v{CACHE_VERSION}:{source_sha}:{ferplus_sha or 'no-ferplus'}"


def build_cache(source: str | os.PathLike | None = None, ferplus: str | os.PathLike | None = None,
                force: bool = False, verbose: bool = True) -> Path:
    """Build the cache unless one for the same source exists; return its folder."""
    started = time.perf_counter()
    source_path = locate_fer2013(source)
    ferplus_path = locate_ferplus(ferplus)
    key = cache_key(sha256_of(source_path), ferplus_path and sha256_of(ferplus_path))
    target = cache_dir()
    manifest_file = target / "manifest.json"
    if not force and manifest_file.exists():
        if json.loads(manifest_file.read_text()).get("cache_key") == key:
            _say(verbose, f"cache up to date: {target} (checked in {_since(started)})")
            return target
    raw = read_fer2013(source_path)
    read_done = time.perf_counter()
    ferplus_labels = ferplus_path and read_ferplus(ferplus_path, raw.splits, raw.source_format)
    features = quality_features(raw.images)
    features["duplicate_group"] = duplicate_groups(raw.images)
    manifest = _manifest(key, source_path, ferplus_path, raw, features)
    arrays = {"images": raw.images, "labels": raw.labels, "splits": raw.splits,
              "source_ids": raw.source_ids}
    if ferplus_labels:
        arrays.update(ferplus_votes=ferplus_labels.votes, ferplus_labels=ferplus_labels.labels,
                      ferplus_dropped=ferplus_labels.dropped)
    _write_atomically(target, arrays, features, manifest)
    _say(verbose, f"cache built: {target} ({len(raw.labels)} images; read+validate "
                  f"{read_done - started:.1f} s, total {_since(started)})")
    return target


def load_dataset(source: str | os.PathLike | None = None, ferplus: str | os.PathLike | None = None,
                 verbose: bool = False) -> Fer2013Dataset:
    """Load the cached dataset, building or refreshing the cache first if needed."""
    folder = build_cache(source, ferplus, verbose=verbose)
    with np.load(folder / "arrays.npz", allow_pickle=False) as arrays:
        loaded = {name: arrays[name] for name in arrays.files}
    return Fer2013Dataset(
        images=loaded["images"], labels=loaded["labels"], splits=loaded["splits"],
        source_ids=loaded["source_ids"],
        features=pd.read_parquet(folder / "features.parquet"),
        manifest=json.loads((folder / "manifest.json").read_text()),
        ferplus_votes=loaded.get("ferplus_votes"), ferplus_labels=loaded.get("ferplus_labels"),
    )


def _manifest(key: str, source_path: Path, ferplus_path: Path | None, raw, features) -> dict:
    counts = pd.crosstab(pd.Categorical.from_codes(raw.splits, SPLITS),
                         pd.Categorical.from_codes(raw.labels, FER2013_CLASSES), dropna=False)
    return {
        "cache_key": key,
        "cache_version": CACHE_VERSION,
        "source": str(source_path),
        "source_format": raw.source_format,
        "source_sha256": key.split(":")[1],
        "ferplus": str(ferplus_path) if ferplus_path else None,
        "ferplus_sha256": key.split(":")[2] if ferplus_path else None,
        "ferplus_classes": list(FERPLUS_CLASSES) if ferplus_path else None,
        "classes": list(FER2013_CLASSES),
        "counts": {split: {c: int(n) for c, n in row.items()} for split, row in counts.iterrows()},
        "total": int(len(raw.labels)),
        "near_blank": int(features["near_blank"].sum()),
        "duplicates": duplicate_summary(features["duplicate_group"].to_numpy(), raw.splits, SPLITS),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _write_atomically(target: Path, arrays: dict, features: pd.DataFrame, manifest: dict) -> None:
    """Write into a sibling temp folder, then swap it in: readers never see half a cache."""
    staging = staging_dir(target)
    try:
        np.savez(staging / "arrays.npz", **arrays)
        features.to_parquet(staging / "features.parquet", index=False)
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2))
        replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _since(started: float) -> str:
    return f"{time.perf_counter() - started:.1f} s"


def _say(verbose: bool, message: str) -> None:
    if verbose:
        print(message, flush=True)
