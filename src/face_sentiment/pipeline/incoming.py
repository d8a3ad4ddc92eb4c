"""Incoming labelled batches: find them, fingerprint them, and split them by person.

A batch is a folder `data/raw/incoming/<batch>/` in the labelled folder format the workbench
reads everywhere (`face_sentiment.data.folder_dataset`: images plus `labels.csv` with at least
`path,label`). Write `labels.csv` last: its presence is what the file sensor and
`pending_batches` take as "the batch is complete". The batch's holdout is a set of whole
people (the `person` column, or one of PERSON_COLUMNS) so that no person is in both parts: a
model that has seen someone's face must not be scored on it. Without a person column the split
is by image, stratified by label, and the record says so. People the champion already trained
on (its photo sets' training folds, matched by image file; earlier batches' train people, from
its card's lineage) are kept in the train part: the holdout is people neither model has seen,
so the promotion rule's lab criterion measures what it says.

`ingest` detects and aligns the faces once (`evaluation.cross_dataset.dataset_faces`, the Pi
runner's detector and alignment; face crops are used as they are) and stores them with the
split, so the later stages read `faces.npz` instead of decoding and detecting again.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from face_sentiment.data.folder_dataset import (
    LABELS_FILE,
    FolderDataset,
    dataset_faces,
    load_folder_dataset,
)
from face_sentiment.paths import atomic_target, file_sha256, write_atomic

PERSON_COLUMNS = ("person", "person_id", "performer_id", "performer", "subject", "subject_id",
                  "participant")
SPLIT_FILE = "split.csv"
FACES_FILE = "faces.npz"


def is_batch(folder: Path) -> bool:
    return (folder / LABELS_FILE).is_file()


def batch_folders(incoming: str | Path) -> list[Path]:
    """`incoming` itself when it is a batch, else its sub-folders that are (sorted by name)."""
    incoming = Path(incoming)
    if not incoming.is_dir():
        raise FileNotFoundError(f"incoming folder {incoming} does not exist")
    if is_batch(incoming):
        return [incoming]
    return sorted(p for p in incoming.iterdir() if p.is_dir() and is_batch(p)
                  and not p.name.startswith("."))


def batch_sha256(folder: Path) -> str:
    """sha256 over labels.csv and every file it names (in its order): a changed label or image
    is a new batch, and a rerun of the same batch resumes."""
    digest = hashlib.sha256()
    labels = (folder / LABELS_FILE).read_bytes()
    digest.update(labels)
    table = pd.read_csv(io.BytesIO(labels), dtype=str, keep_default_na=False)
    for name in table.get("path", []):
        file = folder / name
        if file.is_file():
            digest.update(name.encode())
            digest.update(bytes.fromhex(file_sha256(file)))
    return digest.hexdigest()


def person_column(table: pd.DataFrame, requested: str | None = None) -> str | None:
    """The column naming the person in each image: `requested`, else the first of
    PERSON_COLUMNS present; None when there is none."""
    if requested:
        if requested not in table.columns:
            raise ValueError(f"{LABELS_FILE} has no column {requested!r} (columns: "
                             f"{', '.join(table.columns)})")
        return requested
    return next((c for c in PERSON_COLUMNS if c in table.columns), None)


def split_by_person(table: pd.DataFrame, column: str | None, holdout_fraction: float,
                    seed: int = 0, seen: np.ndarray | None = None) -> np.ndarray:
    """True for the holdout rows: a seeded draw of round(fraction x people) whole people (at
    least one, never all), or, without a person column, of images within each label. `seen`
    (a row mask): rows a model already trained on; their people (their images, without a
    person column) are never drawn, so the holdout may be smaller than asked, or empty."""
    if not 0 < holdout_fraction < 1:
        raise ValueError(f"holdout fraction must be between 0 and 1, not {holdout_fraction}")
    rng = np.random.default_rng(seed)
    seen = np.zeros(len(table), bool) if seen is None else np.asarray(seen, bool)
    if column is not None:
        names = table[column].astype(str)
        people = np.array(sorted(names.unique()))
        if len(people) >= 2:
            known = set(names[seen])
            unseen = np.array([p for p in people if p not in known])
            count = min(max(1, round(holdout_fraction * len(people))), len(people) - 1,
                        len(unseen))
            chosen = set(rng.permutation(unseen)[:count])
            return names.isin(chosen).to_numpy()
    holdout = np.zeros(len(table), bool)
    for _, rows in table.groupby("label").indices.items():
        count = min(int(round(holdout_fraction * len(rows))), int((~seen[rows]).sum()))
        holdout[rng.permutation(rows[~seen[rows]])[:count]] = True
    return holdout


@dataclass
class Batch:
    """An ingested batch: its table (one row per image, with `image_id` (its labels.csv row),
    `part` train/holdout, `person`, `face_found`, `image_height`, `image_width`) and the
    aligned faces (zeros where none)."""

    name: str
    folder: Path
    sha256: str
    table: pd.DataFrame
    faces: np.ndarray  # (N, S, S) uint8, aligned with table
    person_column: str | None

    def part(self, name: str) -> tuple[pd.DataFrame, np.ndarray]:
        """Rows of one part ('train' or 'holdout') with a face found, and their faces."""
        keep = ((self.table["part"] == name) & self.table["face_found"]).to_numpy()
        return self.table[keep].reset_index(drop=True), self.faces[keep]

    def dataset(self, part: str) -> FolderDataset:
        """One part as a FolderDataset of its face crops (for cross_dataset.score)."""
        table, faces = self.part(part)
        return FolderDataset(f"{self.name} {part}", self.folder, table, list(faces))


def check_rows(folder: Path) -> None:
    """A clear error for a batch whose labels.csv lists no image (only a header, or empty)."""
    path = folder / LABELS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"batch {folder}: {path} does not exist (a batch is images "
                                "plus labels.csv with path,label[,person])")
    try:
        rows = len(pd.read_csv(path, dtype=str, keep_default_na=False))
    except pd.errors.EmptyDataError:
        rows = 0
    if rows == 0:
        raise EmptyBatchError(f"{path} has no rows (a header at most): the batch lists no "
                              "image to ingest; add one row per image (path,label[,person])")


class EmptyBatchError(ValueError):
    """A batch's labels.csv lists no image."""


def seen_rows(folder: Path, table: pd.DataFrame, column: str | None,
              seen_files: set[str] = frozenset(), seen_people: set[str] = frozenset()
              ) -> np.ndarray:
    """Rows a model already trained on: the image file's sha256 is in `seen_files`, or (with
    a person column) the person is in `seen_people`; with a person column a person with any
    seen image is seen as a whole."""
    seen = np.array([file_sha256(folder / path) in seen_files for path in table["path"]], bool)
    if column is None:
        return seen
    names = table[column].astype(str)
    people = set(names[seen]) | (set(seen_people) & set(names))
    return names.isin(people).to_numpy()


def ingest(folder: Path, out: Path, holdout_fraction: float = 0.3, seed: int = 0,
           person: str | None = None, detector: str = "blazeface-full",
           size: int = 48, seen_files: set[str] = frozenset(),
           seen_people: set[str] = frozenset()) -> Batch:
    """Read, fingerprint, split and detect a batch; write split.csv and faces.npz to `out`.
    `seen_files` (sha256 of image files) and `seen_people` (person ids): what the champion
    trained on, kept out of the holdout (`split_by_person`)."""
    check_rows(folder)
    dataset = load_folder_dataset(folder, folder.name)
    column = person_column(dataset.table, person)
    table = dataset.table.copy()
    table["image_id"] = np.arange(len(table))  # its row in labels.csv: the store's image id
    table["person"] = table[column].astype(str) if column else ""
    table["seen"] = seen_rows(folder, table, column, seen_files, seen_people)
    table["part"] = np.where(split_by_person(table, column, holdout_fraction, seed,
                                             table["seen"].to_numpy()), "holdout", "train")
    table["image_height"] = [int(image.shape[0]) for image in dataset.images]
    table["image_width"] = [int(image.shape[1]) for image in dataset.images]
    crops = dataset_faces(dataset, detector, size)
    faces = np.zeros((len(table), size, size), np.uint8)
    faces[crops.found] = crops.faces
    table["face_found"] = crops.found
    out.mkdir(parents=True, exist_ok=True)
    with atomic_target(out / FACES_FILE) as staging:
        with open(staging, "wb") as stream:
            np.savez_compressed(stream, faces=faces)
    with atomic_target(out / SPLIT_FILE) as staging:
        table.to_csv(staging, index=False)
    batch = Batch(folder.name, folder, batch_sha256(folder), table, faces, column)
    write_atomic(out / "ingest.json", json.dumps(describe(batch, crops.method), indent=2) + "\n")
    return batch


def load_ingested(folder: Path, out: Path) -> Batch:
    """The batch `ingest` wrote to `out`."""
    table = pd.read_csv(out / SPLIT_FILE, dtype={"person": str, "path": str, "label": str},
                        keep_default_na=False)
    for flag in ("face_found", "seen"):
        if flag in table:
            table[flag] = table[flag].astype(str).str.lower() == "true"
    with np.load(out / FACES_FILE) as arrays:
        faces = arrays["faces"]
    info = json.loads((out / "ingest.json").read_text())
    return Batch(folder.name, folder, info["sha256"], table, faces, info["person_column"])


def describe(batch: Batch, method: str) -> dict:
    """What ingest found: counts per part, people, labels, faces found."""
    table = batch.table
    return {
        "batch": batch.name, "folder": str(batch.folder), "sha256": batch.sha256,
        "images": int(len(table)), "faces_found": int(table["face_found"].sum()),
        "face_method": method, "person_column": batch.person_column,
        "split": "by person" if batch.person_column else "by image (no person column)",
        "parts": {part: {"images": int((table["part"] == part).sum()),
                         "people": sorted(table.loc[table["part"] == part, "person"].unique()
                                          .tolist()) if batch.person_column else [],
                         "labels": table.loc[table["part"] == part, "label"].value_counts()
                         .sort_index().to_dict()}
                  for part in ("train", "holdout")},
        # people (images, by image) the champion trained on: kept in the train part
        "seen_by_champion": sorted(table.loc[table["seen"], "person"].unique().tolist())
        if batch.person_column else int(table["seen"].sum()),
    }


def _open_source(source: Path) -> tuple[bytes, Callable[[str], bytes], Callable[[], None]]:
    """A labelled folder dataset (directory or zip): its labels.csv bytes, a reader of the
    files it names, and a close function."""
    import zipfile

    if source.suffix != ".zip":
        return ((source / LABELS_FILE).read_bytes(), lambda path: (source / path).read_bytes(),
                lambda: None)
    archive = zipfile.ZipFile(source)
    name = min((n for n in archive.namelist() if n.endswith(LABELS_FILE)), key=len)
    prefix = name[:-len(LABELS_FILE)]
    return archive.read(name), lambda path: archive.read(prefix + path), archive.close


def photo_training_files(training: dict) -> tuple[set[str], list[str]]:
    """sha256 of each image file that a model with these training settings (a card's
    `training`) learnt from in its labelled photo sets (`photo_sets`: every person fold but
    `photo_holdout_fold`, the split `data.photos.split_folds` gives training), and a note for
    each set that is not on this machine (its people cannot be checked)."""
    from face_sentiment.data.folder_dataset import is_available, locate
    from face_sentiment.data.photos import split_folds
    from face_sentiment.labels import class_names

    files: set[str] = set()
    notes = []
    for name in training.get("photo_sets") or ():
        if not is_available(name):
            notes.append(f"photo set {name!r} is not on this machine: the batch's people "
                         "could not be checked against it")
            continue
        labels, read, close = _open_source(locate(name))
        try:
            table = pd.read_csv(io.BytesIO(labels), dtype=str, keep_default_na=False)
            table["label"] = table["label"].str.strip().str.lower()
            folds = split_folds(table, name, class_names(training.get("label_set", "fer2013")),
                                int(training.get("photo_folds", 3)),
                                int(training.get("seed", 0)))
            trained = (folds >= 0) & (folds != int(training.get("photo_holdout_fold", 0)))
            files |= {hashlib.sha256(read(path)).hexdigest()
                      for path in table.loc[trained, "path"]}
        finally:
            close()
    return files, notes


def sample_batch(source: str | Path, out: Path, people: list[str] | None = None,
                 count: int = 2, person: str | None = None) -> Path:
    """A batch folder made of some people of a labelled folder dataset (dir or zip): the named
    `people`, else the first `count` in sorted order; labels.csv written last (for demos and
    CI: the Taiwan dev set is never copied into the repository, only into `out`)."""
    source = Path(source)
    labels, read, close = _open_source(source)
    try:
        table = pd.read_csv(io.BytesIO(labels), dtype=str, keep_default_na=False)
        column = person_column(table, person)
        if column is None:
            raise ValueError(f"{source}: no person column ({', '.join(PERSON_COLUMNS)}) to "
                             "pick people by")
        chosen = people or sorted(table[column].unique())[:count]
        table = table[table[column].isin(chosen)]
        if table.empty:
            raise ValueError(f"{source}: none of {chosen} in column {column!r}")
        out.mkdir(parents=True, exist_ok=True)
        for path in table["path"]:
            (out / path).parent.mkdir(parents=True, exist_ok=True)
            (out / path).write_bytes(read(path))
    finally:
        close()
    with atomic_target(out / LABELS_FILE) as staging:
        table.to_csv(staging, index=False)
    return out


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="make an incoming batch from some people of "
                                                 "a labelled folder dataset (dir or zip)")
    parser.add_argument("source")
    parser.add_argument("out")
    parser.add_argument("--people", nargs="+", help="person ids (default: the first --count)")
    parser.add_argument("--count", type=int, default=2)
    arguments = parser.parse_args()
    print(sample_batch(arguments.source, Path(arguments.out), arguments.people, arguments.count))
