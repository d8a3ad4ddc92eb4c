"""Find and read FER2013 in the two forms users download.

* Kaggle's original `fer2013.csv` (optionally gzipped): columns `emotion,pixels,Usage`.
* Kaggle's image-folder release, as a `.zip` or a directory:
  `train/<class>/Training_<id>.jpg` and `test/<class>/{PublicTest,PrivateTest}_<id>.jpg`.

Every reader validates as it goes and raises `DataError` naming the file, the row or entry and
what is wrong, so a corrupted download is caught before anything is cached.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from face_sentiment.labels import FER2013_CLASSES, SPLITS
from face_sentiment.paths import locate_input

IMAGE_SIZE = 48
PIXELS_PER_IMAGE = IMAGE_SIZE * IMAGE_SIZE
FER2013_ENV = "FER2013_PATH"
CSV_COLUMNS = ("emotion", "pixels", "Usage")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
RAW_NAMES = ("fer2013.csv", "fer2013.csv.gz", "fer2013.zip", "fer2013")

DOWNLOAD_HELP = f"""\
Get FER2013 in either form:
  * fer2013.csv (Kaggle 'Challenges in Representation Learning: Facial Expression Recognition
    Challenge', https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge/data),
    and put it at data/raw/fer2013.csv (or fer2013.csv.gz);
  * the image-folder release (https://www.kaggle.com/datasets/msambare/fer2013), and put the
    zip at data/raw/fer2013.zip or unpack it to data/raw/fer2013/ (holding train/ and test/).
Or point the environment variable {FER2013_ENV} at the file or folder wherever it is."""


class DataError(ValueError):
    """A data file is missing or malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class RawFer2013:
    """FER2013 as read from its source, before caching."""

    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int8, FER2013 class index
    splits: np.ndarray  # (N,) int8, index into SPLITS
    source_ids: np.ndarray  # (N,) str: "row-<n>" for the CSV, the file stem for images
    source_format: str  # "csv" or "image-folder"


def locate_fer2013(path: str | os.PathLike | None = None) -> Path:
    """Return the FER2013 source: `path`, else `$FER2013_PATH`, else a known name in data/raw."""
    return locate_input(FER2013_ENV, RAW_NAMES, "FER2013", DOWNLOAD_HELP, explicit=path)


def source_format(path: Path) -> str:
    """Tell the CSV form from the image-folder form by name."""
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith(".zip") or path.is_dir():
        if path.is_dir() and not (path / "train").is_dir():
            for inner in ("fer2013.csv", "fer2013.csv.gz"):
                if (path / inner).exists():
                    return "csv"
        return "image-folder"
    raise DataError(f"{path}: not a FER2013 source (expected .csv, .csv.gz, .zip or a folder)")


def read_fer2013(path: Path) -> RawFer2013:
    """Read and validate FER2013 from either form."""
    if source_format(path) == "csv":
        if path.is_dir():
            path = next(p for p in (path / "fer2013.csv", path / "fer2013.csv.gz") if p.exists())
        raw = read_fer2013_csv(path)
    else:
        raw = read_fer2013_image_folder(path)
    _check_splits_present(raw, path)
    return raw


def sha256_of(path: Path) -> str:
    """Content hash of a file, or of every file in a folder (relative names included)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


# --- CSV form --------------------------------------------------------------------------------

def read_fer2013_csv(path: Path) -> RawFer2013:
    """Read Kaggle's fer2013.csv (or .csv.gz), checking every row."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
            EOFError) as error:
        raise DataError(f"{path}: cannot be read as CSV: {error}") from error
    _check_columns(table, path)
    labels = _parse_codes(table["emotion"], [str(i) for i in range(7)], "emotion", path)
    splits = _parse_codes(table["Usage"], list(SPLITS), "Usage", path)
    pixels = _parse_pixels(table["pixels"], path)
    return RawFer2013(
        images=pixels.reshape(-1, IMAGE_SIZE, IMAGE_SIZE),
        labels=labels,
        splits=splits,
        source_ids=np.array([f"row-{i}" for i in range(len(table))]),
        source_format="csv",
    )


def _where(path: Path, row: int) -> str:
    # Row numbers are 0-based data rows; the file line adds the header.
    return f"{path} line {row + 2} (data row {row})"


def _check_columns(table: pd.DataFrame, path: Path) -> None:
    missing = [c for c in CSV_COLUMNS if c not in table.columns]
    extra = [c for c in table.columns if c not in CSV_COLUMNS]
    if missing or extra:
        raise DataError(
            f"{path}: expected columns {','.join(CSV_COLUMNS)}; "
            f"missing {missing or 'none'}, unexpected {extra or 'none'}"
        )
    if table.empty:
        raise DataError(f"{path}: has a header but no rows")


def _parse_codes(column: pd.Series, allowed: list[str], name: str, path: Path) -> np.ndarray:
    codes = pd.Categorical(column.str.strip(), categories=allowed).codes
    bad = np.flatnonzero(codes < 0)
    if bad.size:
        row = int(bad[0])
        raise DataError(
            f"{_where(path, row)}: {name} is {column.iloc[row]!r}, expected one of {allowed}"
            f" ({bad.size} such rows)"
        )
    return codes.astype(np.int8)


_INTEGER = re.compile(r"-?\d+")
# Bytes a well-formed pixel column may hold: digits, '-', space, tab, newline (row separator).
_PIXEL_BYTES = np.zeros(256, dtype=bool)
_PIXEL_BYTES[[ord(c) for c in "0123456789- \t\n"]] = True


def _parse_pixels(column: pd.Series, path: Path) -> np.ndarray:
    """Parse every pixel string at C speed; on any doubt find and name the first bad row."""
    values = None
    text = "\n".join(column)
    # loadtxt would quietly truncate "12.5" to 12: only hand it digits, signs and spaces.
    encoded = np.frombuffer(text.encode("latin-1", errors="replace"), dtype=np.uint8)
    if _PIXEL_BYTES[encoded].all():
        try:
            values = np.loadtxt(io.StringIO(text), dtype=np.int64, ndmin=2)
        except (ValueError, OverflowError):
            values = None
    if values is None or values.shape != (len(column), PIXELS_PER_IMAGE) \
            or values.min() < 0 or values.max() > 255:
        for row, text in enumerate(column):
            _check_pixel_string(text, path, row)
        raise DataError(f"{path}: pixel strings could not be parsed")  # pragma: no cover
    return values.astype(np.uint8)


def _check_pixel_string(text: str, path: Path, row: int) -> None:
    tokens = text.split()
    if len(tokens) != PIXELS_PER_IMAGE:
        raise DataError(
            f"{_where(path, row)}: pixels has {len(tokens)} values, expected {PIXELS_PER_IMAGE}"
        )
    for position, token in enumerate(tokens):
        if not _INTEGER.fullmatch(token):
            raise DataError(f"{_where(path, row)}: pixel {position} is {token!r}, not an integer")
        if not 0 <= int(token) <= 255:
            raise DataError(f"{_where(path, row)}: pixel value {token} is outside 0..255")


# --- image-folder form -----------------------------------------------------------------------

_STEM = re.compile(r"^(Training|PublicTest|PrivateTest)_(\d+)$")


def read_fer2013_image_folder(path: Path) -> RawFer2013:
    """Read the image-folder release from a zip or a directory, checking every image."""
    records = []
    seen: dict[str, str] = {}  # stem -> entry, to catch one image filed under two classes
    for entry, read_bytes in _iter_image_entries(path):
        parts = entry.split("/")
        if len(parts) < 3 or parts[-3] not in ("train", "test"):
            raise DataError(f"{path}: entry {entry} is not under train/<class>/ or test/<class>/")
        class_name, stem = parts[-2], Path(parts[-1]).stem
        if class_name not in FER2013_CLASSES:
            raise DataError(
                f"{path}: entry {entry}: class folder {class_name!r} is not one of "
                f"{list(FER2013_CLASSES)}"
            )
        match = _STEM.match(stem)
        if not match:
            raise DataError(
                f"{path}: entry {entry}: file name must be <Usage>_<id> with Usage one of "
                f"{list(SPLITS)}"
            )
        try:
            encoded = read_bytes()
        except (zipfile.BadZipFile, zlib.error, OSError) as error:
            raise DataError(f"{path}: entry {entry}: cannot be read: {error}") from error
        image = cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise DataError(f"{path}: entry {entry}: not a readable image")
        if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataError(
                f"{path}: entry {entry}: image is {image.shape[1]}x{image.shape[0]}, "
                f"expected {IMAGE_SIZE}x{IMAGE_SIZE}"
            )
        folder = "train" if match.group(1) == "Training" else "test"
        if parts[-3] != folder:
            raise DataError(f"{path}: entry {entry}: {match.group(1)} images belong under "
                            f"{folder}/<class>/, not {parts[-3]}/")
        if stem in seen:
            raise DataError(f"{path}: entry {entry}: {stem} also appears as {seen[stem]}; "
                            "each image must have exactly one class folder")
        seen[stem] = entry
        split = SPLITS.index(match.group(1))
        records.append((split, int(match.group(2)), stem, FER2013_CLASSES.index(class_name), image))
    if not records:
        raise DataError(f"{path}: no images found under train/<class>/ or test/<class>/")
    records.sort(key=lambda r: (r[0], r[1]))
    return RawFer2013(
        images=np.stack([r[4] for r in records]),
        labels=np.array([r[3] for r in records], dtype=np.int8),
        splits=np.array([r[0] for r in records], dtype=np.int8),
        source_ids=np.array([r[2] for r in records]),
        source_format="image-folder",
    )


def _iter_image_entries(path: Path) -> Iterator[tuple[str, callable]]:
    """Yield (relative name, bytes reader) for each image file in a zip or a folder."""
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            if file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES:
                yield file.relative_to(path).as_posix(), file.read_bytes
        return
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise DataError(f"{path}: not a readable zip file: {error}") from error
    with archive:
        for name in sorted(archive.namelist()):
            if name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith("__MACOSX"):
                yield name, (lambda n=name: archive.read(n))


def _check_splits_present(raw: RawFer2013, path: Path) -> None:
    counts = np.bincount(raw.splits, minlength=len(SPLITS))
    empty = [SPLITS[i] for i, n in enumerate(counts) if n == 0]
    if empty:
        raise DataError(f"{path}: split(s) {empty} have no rows; FER2013 needs all of {SPLITS}")
