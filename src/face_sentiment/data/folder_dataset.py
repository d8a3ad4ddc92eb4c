"""Labelled folder datasets: a directory or a zip of images with a `labels.csv`.

`labels.csv` has at least `path,label` (path relative to the folder); every other column is a
per-image attribute (subject, gender, age group...) that evaluation and the bias audit can slice
by. Known datasets (CK+, the Taiwan faces set) are found by name from an environment variable or
`data/raw/`, never from a fixed path; a missing one is an error saying where to get it. Reading
is validated: a missing column, an unknown file or an undecodable image names the file and row.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from face_sentiment.paths import locate_input

LABELS_FILE = "labels.csv"
REQUIRED_COLUMNS = ("path", "label")
# Largest side (pixels) of an image that is taken to be a face crop rather than a photograph.
CROP_MAX_SIDE = 96


@dataclass(frozen=True)
class KnownDataset:
    """A dataset the workbench knows by name: where to look and where to get it."""

    env: str
    raw_names: tuple[str, ...]
    source: str


KNOWN_DATASETS = {
    "ckplus": KnownDataset(
        "CKPLUS_PATH", ("ckplus48.zip", "ckplus48"),
        "CK+ (Extended Cohn-Kanade): request it at https://www.jeffcohn.net/Resources/ and "
        "export 48x48 face crops as <class>/<subject>_<sequence>_<frame>.png with labels.csv"),
    "lfw_expressions": KnownDataset(
        "LFW_EXPRESSIONS_PATH", ("lfw_expressions_dev.zip", "lfw_expressions"),
        "LFW expressions (face crops from news photographs with expression labels, the "
        "muxspace/facial_expressions collection): download it and arrange it as "
        "<class>/<file>.jpg with labels.csv (path,label,person)"),
    "taiwan": KnownDataset(
        "TAIWAN_FACES_PATH", ("taiwan_faces_dev.zip", "taiwan_faces"),
        "Taiwan faces (TFEID / Taiwan Corpora of Chinese Emotions): request it from its "
        "authors (Chen, Cho & Tseng 2013) and arrange it as <class>/<file>.jpg with labels.csv"),
}


class DatasetError(ValueError):
    """A labelled folder dataset is missing or malformed (the message names file and row)."""


def locate(name: str) -> Path:
    """Path of a known dataset ('ckplus', 'taiwan'): $<ENV>, else data/raw/<name>."""
    known = KNOWN_DATASETS[name]
    return locate_input(known.env, known.raw_names, f"{name} dataset", known.source)


def is_available(name: str) -> bool:
    try:
        locate(name)
    except FileNotFoundError:
        return False
    return True


class _Folder:
    """Read files from a directory or a zip by relative path."""

    def __init__(self, path: Path):
        self.path = path
        self.archive = zipfile.ZipFile(path) if path.suffix == ".zip" else None
        if self.archive is None and not path.is_dir():
            raise DatasetError(f"{path}: expected a directory or a .zip file")
        self.prefix = self._find_prefix()

    def _find_prefix(self) -> str:
        if self.archive is None:
            return ""
        names = [n for n in self.archive.namelist() if n.rsplit("/", 1)[-1] == LABELS_FILE]
        if not names:
            raise DatasetError(f"{self.path}: no {LABELS_FILE} in the archive")
        return min(names, key=len)[: -len(LABELS_FILE)]

    def exists(self, relative: str) -> bool:
        if self.archive is None:
            return (self.path / relative).is_file()
        try:
            self.archive.getinfo(self.prefix + relative)
        except KeyError:
            return False
        return True

    def read(self, relative: str) -> bytes:
        if self.archive is None:
            return (self.path / relative).read_bytes()
        return self.archive.read(self.prefix + relative)


@dataclass
class FolderDataset:
    """A labelled folder dataset: its table (path, label, attributes) and decoded images."""

    name: str
    source: Path
    table: pd.DataFrame
    images: list[np.ndarray] = field(repr=False)  # BGR or gray uint8, as stored

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(sorted(self.table["label"].unique()))

    @property
    def attributes(self) -> list[str]:
        return [c for c in self.table.columns if c not in REQUIRED_COLUMNS]

    @property
    def are_crops(self) -> bool:
        return all(max(image.shape[:2]) <= CROP_MAX_SIDE for image in self.images)

    def subset(self, rows: np.ndarray) -> FolderDataset:
        """The same dataset limited to `rows` (a boolean mask or row positions, in order)."""
        positions = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows)
        return FolderDataset(self.name, self.source,
                             self.table.iloc[positions].reset_index(drop=True),
                             [self.images[position] for position in positions])


def read_labels(folder: _Folder) -> pd.DataFrame:
    """labels.csv as strings, checked: required columns, no empty cells, every file present."""
    where = f"{folder.path}:{LABELS_FILE}"
    if not folder.exists(LABELS_FILE):
        raise DatasetError(f"{folder.path}: {LABELS_FILE} is missing (columns path,label,...)")
    table = pd.read_csv(io.BytesIO(folder.read(LABELS_FILE)), dtype=str, keep_default_na=False)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise DatasetError(f"{where}: missing column(s) {', '.join(missing)}; "
                           f"found {', '.join(table.columns)}")
    for column in REQUIRED_COLUMNS:
        empty = table.index[table[column].str.strip() == ""]
        if len(empty):
            raise DatasetError(f"{where} row {empty[0] + 2}: empty {column!r}")
    table["label"] = table["label"].str.strip().str.lower()
    for row, path in table["path"].items():
        if not folder.exists(path):
            raise DatasetError(f"{where} row {row + 2}: image {path!r} does not exist")
    return table


def _decode(folder: _Folder, path: str, row: int) -> np.ndarray:
    data = np.frombuffer(folder.read(path), np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DatasetError(f"{folder.path}:{LABELS_FILE} row {row + 2}: {path!r} is not a "
                           "readable image")
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(int(image.max()), 1))
    return image


def load_folder_dataset(path: str | os.PathLike, name: str | None = None) -> FolderDataset:
    """Read a labelled folder dataset (directory or zip with labels.csv)."""
    source = Path(path).expanduser()
    if not source.exists():
        raise FileNotFoundError(f"dataset {source} does not exist")
    folder = _Folder(source)
    table = read_labels(folder)
    images = [_decode(folder, p, row) for row, p in table["path"].items()]
    return FolderDataset(name or source.stem, source, table, images)


def load_known(name: str) -> FolderDataset:
    return load_folder_dataset(locate(name), name)


def load_named(reference: str) -> FolderDataset:
    """A known dataset by name (`ckplus`, `taiwan`, `lfw_expressions`), else a folder or zip."""
    return load_known(reference) if reference in KNOWN_DATASETS else \
        load_folder_dataset(reference)


# --------------------------------------------------------------------------------------------
# Faces


def missing_message(name: str) -> str:
    """Why a known dataset is not evaluated (for notebooks): the locate() error text."""
    try:
        locate(name)
    except FileNotFoundError as error:
        return str(error)
    return ""


@dataclass
class FaceCrops:
    """48x48 model-ready crops of a dataset; `found` marks images where a face was found."""

    faces: np.ndarray  # (M, 48, 48) uint8, M = found.sum()
    found: np.ndarray  # (N,) bool
    method: str
    # (N,) per image: "detector", "whole-image" (a crop taken whole) or "" (no face).
    sources: np.ndarray | None = None


def dataset_faces(dataset: FolderDataset, detector: str = "blazeface-full",
                  size: int = 48, crops: bool | None = None) -> FaceCrops:
    """The best face of each image, aligned to FER2013's framing (`live.faces.find_faces`).

    `crops=None` (default): a dataset of model-sized crops (`are_crops`, e.g. CK+ 48x48) is
    taken whole; any other image gets the detector's best face, and one that `looks_like_crop`
    with none found is searched with a margin, then taken whole. `crops=True`: every image is
    one face crop (margin search, else whole). `crops=False`: the detector alone (its recall).
    """
    from face_sentiment.live.faces import (
        align_face,
        create_detector,
        find_faces,
        whole_image_face,
    )

    backend = None if crops is None and dataset.are_crops else create_detector(detector)
    faces, sources = [], []
    for image in dataset.images:
        bgr = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if backend is None:
            found = [whole_image_face(bgr)]
        elif crops is False:
            found = backend.detect(bgr)
        else:
            found = find_faces(bgr, backend, crops=bool(crops))
        sources.append(found[0].box_source if found else "")
        if found:
            faces.append(align_face(bgr, found[0], size))
    sources = np.array(sources, dtype=object)
    method = ("crops taken whole" if backend is None else
              f"detected+aligned ({detector}"
              + {None: ", crops taken whole where none found)", True: ", as crops)",
                 False: ", detector only)"}[crops])
    stacked = np.stack(faces) if faces else np.zeros((0, size, size), np.uint8)
    return FaceCrops(stacked, sources != "", method, sources)
