"""Reading `data/processed/<dataset>/` (written by `data.transform`, `make processed`).

`load_processed` parses the TFRecords with the transformed feature spec into one table (and
the preprocessed images); a corrupt record names its file. Training reads its inputs from here
with `training.data: processed` (`model_inputs`), and FER2013's evaluation and bias-audit slices
are the transform's Training-quantile buckets (`with_quality_buckets`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from face_sentiment.data.transform import BUCKET_NAMES, BUCKETED, MANIFEST, processed_dir
from face_sentiment.labels import SPLITS


class ProcessedDataError(ValueError):
    """Processed data is missing, stale or corrupt (the message names the folder or file)."""


@dataclass
class ProcessedData:
    folder: Path
    manifest: dict
    table: pd.DataFrame  # one row per face, sorted by split then source row; no image
    images: np.ndarray | None  # (N, S, S, 1) float32, aligned with table

    def rows_of(self, split: str, rows: np.ndarray) -> np.ndarray:
        """Positions in `table` of these source rows of `split` (all must be present)."""
        part = self.table.index[self.table["split"] == split]
        lookup = pd.Series(part, index=self.table.loc[part, "row"].to_numpy())
        missing = np.setdiff1d(rows, lookup.index.to_numpy())
        if len(missing):
            raise ProcessedDataError(f"{self.folder}: {len(missing)} {split} rows are not in "
                                     f"the processed data (e.g. row {missing[0]}); rerun "
                                     "`make processed`")
        return lookup.loc[rows].to_numpy()


def manifest_of(folder: str | os.PathLike) -> dict:
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise ProcessedDataError(f"{folder}: no processed data ({MANIFEST} missing): run "
                                 "`make processed` (face-sentiment transform)")
    return json.loads(path.read_text())


def load_processed(folder: str | os.PathLike | None = None, with_images: bool = True
                   ) -> ProcessedData:
    """All splits of a processed dataset (default data/processed/fer2013)."""
    import tensorflow_transform as tft

    folder = Path(folder) if folder else processed_dir("fer2013")
    manifest = manifest_of(folder)
    spec = tft.TFTransformOutput(str(folder)).transformed_feature_spec()
    if not with_images:
        spec.pop("image")
    parts, images = [], []
    for split in manifest["counts"]:
        for path in sorted(folder.glob(f"{split}-*.tfrecord.gz")):
            columns = _parse(path, spec)
            count = len(columns["row"])
            if with_images:
                size = manifest["preprocessing"]["size"]
                images.append(columns.pop("image").reshape(count, size, size, 1))
            votes = columns.pop("ferplus_votes", None)
            frame = pd.DataFrame({name: _decoded(values) for name, values in columns.items()})
            if votes is not None:
                frame["ferplus_votes"] = list(votes)
            parts.append(frame)
    if not parts:
        raise ProcessedDataError(f"{folder}: no TFRecord files: rerun `make processed`")
    table = pd.concat(parts, ignore_index=True)
    counts = table["split"].value_counts().to_dict()
    if counts != manifest["counts"]:
        raise ProcessedDataError(f"{folder}: the TFRecords hold {counts} faces, the manifest "
                                 f"{manifest['counts']}: rerun `make processed`")
    order = np.lexsort((table["row"].to_numpy(),
                        table["split"].map(_split_rank).to_numpy()))
    table = table.iloc[order].reset_index(drop=True)
    stacked = np.concatenate(images)[order] if with_images else None
    return ProcessedData(folder, manifest, table, stacked)


def _parse(path: Path, spec: dict) -> dict[str, np.ndarray]:
    import tensorflow as tf

    records = tf.data.TFRecordDataset(str(path), compression_type="GZIP").batch(2048)
    batches = []
    try:
        for serialized in records:
            batches.append({k: v.numpy() for k, v in tf.io.parse_example(serialized, spec)
                            .items()})
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
        first = str(getattr(error, "message", error)).splitlines()[0]
        read = sum(len(batch["row"]) for batch in batches)
        raise ProcessedDataError(f"{path}: corrupt TFRecord after {read} records ({first}); "
                                 "rerun `make processed`") from None
    if not batches:
        return {name: np.zeros((0,)) for name in spec}
    return {name: np.concatenate([batch[name] for batch in batches]) for name in spec}


def _decoded(values: np.ndarray) -> np.ndarray:
    return np.array([v.decode() for v in values]) if values.dtype == object else values


def _split_rank(split: str) -> int:
    return SPLITS.index(split) if split in SPLITS else len(SPLITS)


@lru_cache(maxsize=2)
def _current(folder: str, data_hash: str, preprocessing: str, with_images: bool
             ) -> ProcessedData:
    processed = load_processed(folder, with_images)
    manifest = processed.manifest
    if manifest["data_sha256"] != data_hash or \
            json.dumps(manifest["preprocessing"], sort_keys=True) != preprocessing:
        raise ProcessedDataError(
            f"{folder} was processed from other data or preprocessing (data "
            f"{manifest['data_sha256'][:12]}, {manifest['preprocessing']['method']}): rerun "
            "`make processed`")
    return processed


def current_processed(dataset, spec=None, with_images: bool = True,
                      folder: str | os.PathLike | None = None) -> ProcessedData:
    """The processed FER2013 made from this cache (and, if given, this preprocessing)."""
    folder = str(folder or processed_dir("fer2013"))
    preprocessing = manifest_of(folder)["preprocessing"] if spec is None else spec.to_dict()
    return _current(folder, dataset.data_hash, json.dumps(preprocessing, sort_keys=True),
                    with_images)


def model_inputs(dataset, split: str, rows: np.ndarray, spec) -> np.ndarray:
    """The preprocessed (N, S, S, 1) faces of these cache rows of `split`, from the
    transform's output (what `preprocess_faces(dataset.images[rows], spec)` computes)."""
    processed = current_processed(dataset, spec)
    return processed.images[processed.rows_of(split, np.asarray(rows))]


def with_quality_buckets(dataset, rows: np.ndarray, split: str) -> pd.DataFrame:
    """The cache's quality features of these rows of `split`, with the transform's
    `<feature>_bucket` columns (Training-quantile buckets) when processed data for this cache
    exists; without it the slices fall back to each set's own tertiles (metrics.quality_bins).
    """
    features = dataset.features.iloc[np.asarray(rows)].reset_index(drop=True)
    try:
        processed = current_processed(dataset, with_images=False)
    except ProcessedDataError:
        return features
    positions = processed.rows_of(split, np.asarray(rows))
    for name in BUCKETED:
        features[f"{name}_bucket"] = processed.table[f"{name}_bucket"].to_numpy()[positions]
    return features


def bucket_names(ids: np.ndarray) -> np.ndarray:
    return np.asarray(BUCKET_NAMES)[np.asarray(ids, int)]


def analyzer_summary(processed: ProcessedData) -> pd.DataFrame:
    """Per split: mean and std of each z-scored quality feature and the share of faces in each
    bucket. The analyzers were fitted on Training, so Training reads 0 / 1 / thirds and the
    test splits show how far they sit from it."""
    table = processed.table
    rows = {}
    for split, part in table.groupby("split", sort=False):
        row = {}
        for name in BUCKETED:
            row[(name, "z mean")] = part[f"{name}_z"].mean()
            row[(name, "z std")] = part[f"{name}_z"].std(ddof=0)
            shares = part[f"{name}_bucket"].value_counts(normalize=True)
            for bucket, label in enumerate(BUCKET_NAMES):
                row[(name, label)] = shares.get(bucket, 0.0)
        rows[split] = row
    return pd.DataFrame(rows).T.round(3)
