"""Retrain's training labels, read from the feature store (`face_sentiment.features`).

- `ready_store`: the store's definitions applied, and FER2013 ingested from the cache this run
  uses (once; the store's image ids are that cache's rows, so a store filled from another
  cache is an error naming both).
- `store_batch` (ingest stage): the batch enters the store as a dataset of its own: each
  image's label at its labelling time, the part it went to (`Training`, or `Holdout` for the
  people held out) and the quality of the face the model sees.
- `mix_labels` (train stage): Feast's point-in-time join as of the run's start (state.json's
  `created`) gives the split and label of every FER2013 image and the label of each image of
  the batch's train part. A label correction ingested before the run started
  (`face-sentiment features ingest --labels`) is what the challenger trains on; one ingested
  after is not, so a resumed run reads the same labels. How many labels differ from the
  cache's and labels.csv's is recorded with the stage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from face_sentiment.data.cache import Fer2013Dataset
from face_sentiment.features.sources import FER2013
from face_sentiment.pipeline.incoming import Batch

TRAINING, HOLDOUT = "Training", "Holdout"
INGEST_HINT = "`face-sentiment features ingest --fer2013` (or `make features`)"


def ready_store(dataset: Fer2013Dataset, repo: str | Path | None = None,
                log: Callable[[str], None] = print):
    """The applied store, with this cache's FER2013 rows in it (ingested here if absent)."""
    from face_sentiment.features.sources import fer2013_ingested, ingest_fer2013
    from face_sentiment.features.store import StoreError, apply

    store, _ = apply(repo)
    record = fer2013_ingested(store)
    if record is not None and record["sha256"] != dataset.data_hash:
        raise StoreError(
            f"the feature store of {store.repo_path} holds FER2013 from another cache (sha256 "
            f"{record['sha256'][:12]}, ingested {record['ingested']}); this run's cache is "
            f"{dataset.data_hash[:12]}: run {INGEST_HINT} so that image ids mean this cache's "
            "rows (label corrections are later rows and stay)")
    if record is None or record["rows"] < len(dataset.labels):
        ingest_fer2013(store, dataset)
        log(f"feature store: FER2013 ingested ({len(dataset.labels)} images) into "
            f"{store.repo_path} (once; retrain reads its labels from there)")
    return store


def store_batch(store, batch: Batch) -> dict:
    """Write the ingested batch into the store under its name; returns what was written."""
    from face_sentiment.data.folder_dataset import FaceCrops, FolderDataset
    from face_sentiment.features.sources import batch_tables, write_tables

    table = batch.table
    found = table["face_found"].to_numpy(bool)
    split = np.where(table["part"] == "train", TRAINING, HOLDOUT)
    tables = batch_tables(FolderDataset(batch.name, batch.folder, table, []), batch.name,
                          split=split, crops=FaceCrops(batch.faces[found], found, "ingest"))
    write_tables(store, tables)
    labelled = pd.to_datetime(tables["image_labels"]["event_timestamp"], utc=True)
    return {"dataset": batch.name, "images": int(len(table)),
            "labelled": [labelled.min().isoformat(), labelled.max().isoformat()]}


@dataclass(frozen=True)
class MixLabels:
    """The fine-tune's labels as the store had them at `as_of`."""

    as_of: str
    fer_rows: np.ndarray  # cache rows in FER2013 Training then, ascending
    fer_labels: np.ndarray  # their labels then (int8)
    batch_labels: np.ndarray  # labels of the batch's train part (Batch.part order), int8
    corrected: dict[str, int]  # per dataset: labels that differ from the cache / labels.csv

    @property
    def digest(self) -> str:
        arrays = (self.fer_rows, self.fer_labels, self.batch_labels)
        return hashlib.sha256(b"".join(a.tobytes() for a in arrays)).hexdigest()

    def summary(self) -> dict:
        return {"labels_as_of": self.as_of, "fer2013_training_images": int(len(self.fer_rows)),
                "batch_training_images": int(len(self.batch_labels)),
                "labels_corrected": self.corrected}


def _checked(table: pd.DataFrame, where: str, as_of: str, hint: str) -> pd.DataFrame:
    """Rows of one dataset; every one must have had a label by `as_of`."""
    missing = table[table["label_index"].isna() | (table["label_index"] < 0)]
    if len(missing):
        raise ValueError(f"{where}: {len(missing)} image(s) had no label in the feature store "
                         f"as of {as_of} (first: image_id {int(missing['image_id'].iloc[0])})"
                         f": {hint}")
    return table


def mix_labels(store, dataset: Fer2013Dataset, batch: Batch, as_of: str) -> MixLabels:
    """Labels and splits valid at `as_of` of FER2013 and of the batch's train part."""
    from face_sentiment.features.retrieval import labels_as_of

    train, _ = batch.part("train")
    keys = pd.concat([
        pd.DataFrame({"dataset": FER2013, "image_id": np.arange(len(dataset.labels))}),
        pd.DataFrame({"dataset": batch.name, "image_id": train["image_id"].astype(np.int64)}),
    ], ignore_index=True)
    table = labels_as_of(store, keys, as_of)
    fer = _checked(table[table["dataset"] == FER2013], f"FER2013 in {store.repo_path}", as_of,
                   f"run {INGEST_HINT}")
    fer = fer[fer["split"] == TRAINING]
    own = _checked(table[table["dataset"] == batch.name].reset_index(drop=True),
                   f"batch {batch.name}", as_of, "its labels.csv rows are stored at their "
                   "labelling time (a `time` column, else the file's); later ones are not seen")
    elsewhere = own[own["split"] != TRAINING]
    if len(elsewhere):
        raise ValueError(f"batch {batch.name}: image_id {int(elsewhere['image_id'].iloc[0])} is "
                         f"in split {elsewhere['split'].iloc[0]!r} in the feature store as of "
                         f"{as_of}, not {TRAINING!r}: the fine-tune trains on its train part")
    fer_rows = fer["image_id"].to_numpy(np.int64)
    fer_labels = fer["label_index"].to_numpy(np.int8)
    batch_labels = own["label_index"].to_numpy(np.int8)
    corrected = {FER2013: int((fer_labels != dataset.labels[fer_rows]).sum()),
                 batch.name: int((own["label"].to_numpy(object)
                                  != train["label"].to_numpy(object)).sum())}
    return MixLabels(as_of, fer_rows, fer_labels, batch_labels, corrected)
