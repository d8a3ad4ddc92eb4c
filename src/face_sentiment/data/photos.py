"""Labelled photographs beside FER2013: person-disjoint folds and faces framed as at run time.

FER2013's faces are small web images; a lab's camera and photo folders are not. Training with
real photographs (the LFW-expressions crops, a lab's own folder) is only honest when every
figure on them comes from people the model never saw: `person_folds` puts each person in one
fold (people ordered by a seeded hash of their identity, then dealt out in turn, so folds differ
by at most one person even for the 15 Taiwan actors, and the split is the same on any machine
and in any row order), a training run learns from every fold but `photo_holdout_fold`, and
evaluation reads that fold alone.
The faces are `dataset_faces` crops, the framing `predict` and the Pi runner give the same
image at run time (a crop searched with a margin, else taken whole).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from face_sentiment.data.folder_dataset import (
    DatasetError,
    FaceCrops,
    FolderDataset,
    dataset_faces,
    load_known,
)
from face_sentiment.paths import atomic_target, data_dir

# Part of the face cache's key: bump it when face finding or alignment changes what a crop holds.
FACES_VERSION = 2

# The identity column of each known photo set: rows of one person stay in one fold.
PERSON_COLUMNS = {"lfw_expressions": "person", "taiwan": "performer_id"}


def person_folds(persons: pd.Series | np.ndarray | list, folds: int, seed: int = 0
                 ) -> np.ndarray:
    """Fold index (0..folds-1) of each row, the same for every row of one person."""
    if folds < 2:
        raise ValueError(f"person folds: need at least 2 folds, got {folds}")
    names = pd.Series(persons).astype(str)
    if (names.str.strip() == "").any():
        row = int(np.flatnonzero((names.str.strip() == "").to_numpy())[0])
        raise DatasetError(f"row {row + 2} of labels.csv has no person: every photo needs "
                           "one to be split by person")

    def key(person: str) -> bytes:
        return hashlib.sha256(f"{seed}:{person}".encode()).digest()

    ordered = sorted(names.unique(), key=key)
    lookup = {person: rank % folds for rank, person in enumerate(ordered)}
    return names.map(lookup).to_numpy(np.int64)


def split_folds(table: pd.DataFrame, name: str, classes: tuple[str, ...], folds: int,
                seed: int) -> np.ndarray:
    """The person fold of each row of a photo set's labels table, the one split that training,
    held-out scoring and cross-validation all read: the people of the rows labelled with one
    of `classes` dealt into `folds` (`person_folds`), from the labels alone (never from which
    faces a detector found, which may change); -1 for rows of another label (CK+'s contempt),
    which are neither trained on nor scored."""
    column = PERSON_COLUMNS[name]
    if column not in table.columns:
        raise DatasetError(f"{name}: labels.csv has no {column!r} column to split by person")
    known = table["label"].isin(classes).to_numpy()
    result = np.full(len(table), -1, np.int64)
    result[known] = person_folds(table.loc[known, column], folds, seed)
    return result


@dataclass
class PhotoFaces:
    """One photo set's usable faces (label among `classes`), their labels and folds."""

    name: str
    table: pd.DataFrame  # the rows kept, with `fold`
    faces: np.ndarray  # (N, size, size) uint8
    labels: np.ndarray  # (N,) index into classes

    def fold(self, fold: int, keep: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Faces and labels of `fold` (keep=True) or of every other fold (keep=False)."""
        rows = (self.table["fold"].to_numpy() == fold) == keep
        return self.faces[rows], self.labels[rows]


def photo_faces(name: str, classes: tuple[str, ...], folds: int, seed: int = 0,
                size: int = 48, detector: str = "blazeface-full") -> PhotoFaces:
    """A known photo set's faces with a label in `classes`, framed as at run time, and the
    person fold of each (labels the model cannot predict, e.g. contempt, are left out)."""
    if name not in PERSON_COLUMNS:
        raise ValueError(f"unknown photo set {name!r}; use one of {', '.join(PERSON_COLUMNS)}")
    dataset = load_known(name)
    fold = split_folds(dataset.table, name, classes, folds, seed)
    crops = cached_faces(dataset, detector, size)
    table = dataset.table.assign(fold=fold)[crops.found].reset_index(drop=True)
    known = (table["fold"] >= 0).to_numpy()
    table = table[known].reset_index(drop=True)
    labels = np.array([classes.index(label) for label in table["label"]], np.int64)
    return PhotoFaces(name, table, crops.faces[known], labels)


def cached_faces(dataset: FolderDataset, detector: str, size: int) -> FaceCrops:
    """`dataset_faces` of a labelled folder (or of some of its rows), kept in
    data/interim/photos/ under a key of the folder's content, the rows, the detector, the size
    and FACES_VERSION (finding the faces of LFW-expressions takes minutes, and every training
    run, fold and evaluation needs them)."""
    from face_sentiment.data.fer2013 import sha256_of

    rows = hashlib.sha256("\n".join(dataset.table["path"]).encode()).hexdigest()
    key = hashlib.sha256(f"{sha256_of(dataset.source)}:{rows}:{detector}:{size}:{FACES_VERSION}"
                         .encode()).hexdigest()[:16]
    path = data_dir("interim") / "photos" / f"{dataset.name}-{key}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as stored:
            return FaceCrops(stored["faces"], stored["found"], str(stored["method"]),
                             stored["sources"].astype(object))
    crops = dataset_faces(dataset, detector, size)
    with atomic_target(path) as staging, open(staging, "wb") as handle:
        np.savez(handle, faces=crops.faces, found=crops.found, method=np.array(crops.method),
                 sources=crops.sources.astype(str))
    return crops
