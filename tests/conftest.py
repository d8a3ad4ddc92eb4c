"""Shared fixtures: a throw-away project tree and tiny synthetic FER2013 / FER+ sources.

Nothing here reads real data. Every test runs with FACE_SENTIMENT_ROOT pointing at a temporary
project tree and with FER2013_PATH / FERPLUS_PATH unset, so the real data/ folder is never
touched. Source files are written outside that tree (tmp_path/src) unless a test puts them in
its data/raw on purpose. `real_root` is the exception: it points the project at the real
checkout, to read (never write) its profiles. The real data's paths, the optional components
and the tiny stand-in models are in helpers.py.
"""

import ast
import gzip
import itertools
import re
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from helpers import HAS_TF, ROOT, tiny_model_files
from synthetic import (
    CSV_HEADER,
    FERPLUS_DROPPED_ROW,
    FERPLUS_VOTES,
    folder_entries_for,
    make_sample,
)

from face_sentiment.labels import FERPLUS_VOTE_COLUMNS, SPLITS

# --- collection: a module that -m deselects whole is not imported ----------------------------

def _module_marks(path: Path) -> set[str]:
    """The marks a test module's `pytestmark` gives every test in it, read from its source
    (importing it is what this saves)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(target, "id", None) == "pytestmark"
                                                for target in node.targets):
            return {mark.attr for mark in ast.walk(node.value) if isinstance(mark, ast.Attribute)
                    and getattr(mark.value, "attr", None) == "mark"}
    return set()


def _never_selected(marks: set[str], markexpr: str) -> bool:
    """Whether `markexpr` (-m) deselects every test that carries `marks`, whatever other marks
    a test adds: tried with each combination of the other names the expression uses."""
    others = sorted(set(re.findall(r"[A-Za-z_]\w*", markexpr)) - {"and", "or", "not"} - marks)
    if not marks or not markexpr or len(others) > 10:
        return False
    try:
        from _pytest.mark.expression import Expression  # the parser -m itself uses
        expression = Expression.compile(markexpr)
    except Exception:  # another pytest's internals or a bad expression: collect as usual
        return False
    for chosen in itertools.product((False, True), repeat=len(others)):
        present = marks | {name for name, on in zip(others, chosen, strict=True) if on}
        if expression.evaluate(_matcher(present)):
            return False
    return True


def _matcher(present: set[str]):
    """-m's matcher for a test with these marks (keyword arguments of a mark are not read)."""
    return lambda name, /, **kwargs: name in present


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Skip a test module whose module-level marks already deselect all of it: `make test-fast`
    (-m "not ... tensorflow") then does not import TensorFlow, seconds on a busy machine, only
    to deselect a module of TensorFlow tests. None: pytest decides as usual."""
    if (collection_path.suffix == ".py" and collection_path.name.startswith("test_")
            and _never_selected(_module_marks(collection_path),
                                config.getoption("markexpr", "") or "")):
        return True
    return None

@pytest.fixture(autouse=True)
def project_root(tmp_path, monkeypatch):
    """A temporary project tree that every path helper resolves to."""
    root = tmp_path / "project"
    (root / "data" / "raw").mkdir(parents=True)
    monkeypatch.setenv("FACE_SENTIMENT_ROOT", str(root))
    monkeypatch.delenv("FER2013_PATH", raising=False)
    monkeypatch.delenv("FERPLUS_PATH", raising=False)
    # The container images set the commit they were built from (reports.git_commit); tests of
    # git_commit make their own checkouts.
    monkeypatch.delenv("FACE_SENTIMENT_COMMIT", raising=False)
    # The model of record is the temporary tree's registry (none) unless a test makes one.
    monkeypatch.delenv("FACE_SENTIMENT_REGISTRY", raising=False)
    # No energy metering unless a test asks for it (codecarbon takes seconds to start).
    monkeypatch.setenv("FACE_SENTIMENT_ENERGY", "off")
    return root


@pytest.fixture
def raw_dir(project_root):
    return project_root / "data" / "raw"


@pytest.fixture
def src_dir(tmp_path):
    path = tmp_path / "src"
    path.mkdir()
    return path


@pytest.fixture
def sample():
    return make_sample()


# --- CSV form --------------------------------------------------------------------------------

@pytest.fixture
def csv_rows(sample):
    """The sample as editable [emotion, pixels, Usage] string rows."""
    return [
        [str(label), " ".join(map(str, image.ravel())), SPLITS[split]]
        for image, label, split in zip(sample.images, sample.labels, sample.splits, strict=True)
    ]


@pytest.fixture
def write_csv(src_dir):
    """Write rows (lists of strings) under a header; returns the file's path."""
    def write(rows, name="fer2013.csv", header=CSV_HEADER, folder=src_dir):
        path = folder / name
        lines = [",".join(header)] + [",".join(row) for row in rows]
        path.write_text("\n".join(lines) + "\n")
        return path
    return write


@pytest.fixture
def fer2013_csv(write_csv, csv_rows):
    return write_csv(csv_rows)


@pytest.fixture
def fer2013_csv_gz(fer2013_csv):
    path = fer2013_csv.with_name("fer2013.csv.gz")
    path.write_bytes(gzip.compress(fer2013_csv.read_bytes()))
    return path


# --- FER+ ------------------------------------------------------------------------------------

@pytest.fixture
def ferplus_table(sample):
    """fer2013new.csv for the sample as a DataFrame (edit it, then write_ferplus it)."""
    table = pd.DataFrame(FERPLUS_VOTES.copy(), columns=list(FERPLUS_VOTE_COLUMNS))
    names = [f"fer{row:07d}.png" for row in range(len(table))]
    names[FERPLUS_DROPPED_ROW] = ""
    table.insert(0, "Image name", names)
    table.insert(0, "Usage", [SPLITS[s] for s in sample.splits])
    return table


@pytest.fixture
def write_ferplus(src_dir):
    def write(table, name="fer2013new.csv", folder=src_dir):
        path = folder / name
        table.to_csv(path, index=False)
        return path
    return write


@pytest.fixture
def ferplus_csv(write_ferplus, ferplus_table):
    return write_ferplus(ferplus_table)


# --- image-folder form -----------------------------------------------------------------------

@pytest.fixture
def folder_entries(sample):
    """PNG entries (lossless, so pixels can be compared exactly)."""
    return folder_entries_for(sample, ".png")


@pytest.fixture
def write_image_folder(src_dir):
    """Write entries as a directory (form='dir') or a zip (form='zip'); returns its path."""
    def write(entries, form="dir", name="fer2013"):
        if form == "zip":
            path = src_dir / f"{name}.zip"
            with zipfile.ZipFile(path, "w") as archive:
                for entry, data in entries.items():
                    archive.writestr(entry, data)
            return path
        path = src_dir / name
        for entry, data in entries.items():
            (path / entry).parent.mkdir(parents=True, exist_ok=True)
            (path / entry).write_bytes(data)
        return path
    return write


@pytest.fixture
def image_folder_dir(write_image_folder, folder_entries):
    return write_image_folder(folder_entries, "dir")


@pytest.fixture
def image_folder_zip(write_image_folder, folder_entries):
    return write_image_folder(folder_entries, "zip")


# --- the real checkout -----------------------------------------------------------------------

@pytest.fixture
def real_root(monkeypatch):
    """The real checkout as the project root, for reading its profiles (read only)."""
    monkeypatch.setenv("FACE_SENTIMENT_ROOT", str(ROOT))
    return ROOT


# --- tiny stand-in models (helpers.tiny_model_files) -----------------------------------------

@pytest.fixture(scope="session")
def int8_model(tmp_path_factory):
    """dev_model's tiny int8 TFLite model, with its model card beside it (the first build on a
    machine, or after its code changed, takes about 30 s; later sessions copy the cache)."""
    if not HAS_TF:
        pytest.skip("TensorFlow not installed: cannot build the test model")
    return tiny_model_files(tmp_path_factory.mktemp("int8") / "models")


@pytest.fixture(scope="session")
def float_model(tmp_path_factory):
    """The float32 variant of int8_model."""
    if not HAS_TF:
        pytest.skip("TensorFlow not installed: cannot build the test model")
    return tiny_model_files(tmp_path_factory.mktemp("float") / "models", "--float")
