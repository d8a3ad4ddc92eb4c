"""Where the project keeps things: one place that knows the folder layout.

The project root is the checkout holding `pyproject.toml` (the package is installed editable);
`FACE_SENTIMENT_ROOT` overrides it, which the tests use to work in a temporary tree.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def project_root() -> Path:
    """Return the project root folder."""
    override = os.environ.get("FACE_SENTIMENT_ROOT")
    if override:
        return Path(override).resolve()
    candidate = Path(__file__).resolve().parents[2]
    if (candidate / "pyproject.toml").exists():
        return candidate
    return Path.cwd().resolve()


def data_dir(stage: str) -> Path:
    """Return `data/<stage>` (raw, interim, processed or external), created if missing."""
    if stage not in {"raw", "interim", "processed", "external"}:
        raise ValueError(f"unknown data stage {stage!r}")
    path = project_root() / "data" / stage
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    return project_root() / "models"


def reports_dir() -> Path:
    path = project_root() / "reports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    """Training runs (checkpoints, logs): large, regenerable, never committed."""
    path = project_root() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_atomic(path: str | os.PathLike, content: str | bytes) -> Path:
    """Write `content` to `path` through a temporary file in the same folder and a rename, so
    a reader never sees a half-written file and a failed write leaves nothing behind."""
    path = Path(path)
    with atomic_target(path) as staging:
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(staging, mode, **({} if mode == "wb" else {"newline": ""})) as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
    return path


def copy_atomic(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Copy a file into place atomically (temporary file beside the target, then rename)."""
    with atomic_target(Path(target)) as staging:
        shutil.copyfile(source, staging)
    return Path(target)


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, read in blocks (model files, wheels, batch images)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def staging_dir(target: Path) -> Path:
    """An empty folder beside `target` to build it in (see `replace_dir`), with an ordinary
    folder's mode (mkdtemp makes it private)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    staging.chmod(0o777 & ~_UMASK)
    return staging


def replace_dir(staging: Path, target: Path) -> Path:
    """Swap a complete folder built in `staging` (a sibling of `target`) into place: readers
    see the old folder or the new one, never a half-written one."""
    retired = target.with_name(f".{target.name}-retired")
    if retired.exists():
        shutil.rmtree(retired)
    if target.exists():
        target.rename(retired)
    staging.rename(target)
    shutil.rmtree(retired, ignore_errors=True)
    return target


@contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` for a writer (a library, a subprocess) to fill;
    it is renamed onto `path` when the block succeeds and removed when it fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    os.chmod(staging, 0o666 & ~_UMASK)  # mkstemp makes it 0600; give it a normal file's mode
    try:
        yield Path(staging)
        os.replace(staging, path)
    finally:
        Path(staging).unlink(missing_ok=True)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


class DataNotFoundError(FileNotFoundError):
    """An input the user downloads is not where the workbench looks; says where to get it."""


def locate_input(env: str, raw_names: tuple[str, ...], what: str, how_to_get: str,
                 explicit: str | os.PathLike | None = None, required: bool = True
                 ) -> Path | None:
    """Find a downloaded input: `explicit`, else `$<env>`, else the first of `raw_names` in
    data/raw. A path that was given but does not exist is always an error; a missing input is
    an error naming where to get it and where to put it, or None when not `required`."""
    for given, origin in ((explicit, "the path given"), (os.environ.get(env), f"${env}")):
        if given:
            path = Path(given).expanduser()
            if not path.exists():
                raise DataNotFoundError(
                    f"{origin} points to {path}, which does not exist. {how_to_get}")
            return path
    raw = data_dir("raw")
    for name in raw_names:
        if (raw / name).exists():
            return raw / name
    if not required:
        return None
    raise DataNotFoundError(
        f"{what} was not found: set {env}=/path/to/it or put {' or '.join(raw_names)} in {raw}. "
        f"{how_to_get}")
