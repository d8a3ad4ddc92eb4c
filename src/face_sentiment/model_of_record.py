"""The model of record: the one answer to "which model is shipped?" for every consumer.

The model registry (`deploy/registry/`, or `$FACE_SENTIMENT_REGISTRY`; written by
`face_sentiment.pipeline.registry`) is the record once it has a current version: `predict`, the
runner's default, the notebooks, `ab-test shipped-int8`, the monitor's reference predictions and
the runner container all read that version's folder, so a promotion or a rollback changes what
every one of them uses. Before the registry is seeded, the committed `models/` (the registry's
first version) is the record; an installed wheel without a checkout falls back to the copy it
carries.

Only the registry's `current.json` pointer is read here (numpy- and TensorFlow-free, so the Pi
runner can import it); the registry module writes it atomically, so a reader sees the old or
the new version, never half of either.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from face_sentiment.paths import models_dir, project_root

REGISTRY_ENV = "FACE_SENTIMENT_REGISTRY"
DEFAULT_REGISTRY = Path("deploy") / "registry"
CURRENT_FILE = "current.json"
VERSIONS_DIR = "versions"


class RecordError(ValueError):
    """The registry's pointer is unreadable or names a version that is not there."""


def registry_folder() -> Path:
    """deploy/registry under the project root ($FACE_SENTIMENT_REGISTRY overrides it)."""
    override = os.environ.get(REGISTRY_ENV)
    return Path(override).expanduser() if override else project_root() / DEFAULT_REGISTRY


def read_pointer(registry: Path) -> dict | None:
    """The registry's current.json ({"version", "stack", ...}), None when it has none yet."""
    path = registry / CURRENT_FILE
    if not path.exists():
        return None
    try:
        pointer = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise RecordError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(pointer, dict) or not pointer.get("stack") or not pointer.get("version"):
        raise RecordError(f"{path}: expected {{'version': ..., 'stack': [...]}}")
    return pointer


def registry_current(registry: Path | None = None) -> Path | None:
    """The current version's folder of `registry` (default: registry_folder()), or None when
    the registry has no current version."""
    registry = registry or registry_folder()
    pointer = read_pointer(registry)
    if pointer is None:
        return None
    folder = registry / VERSIONS_DIR / pointer["version"]
    if not folder.is_dir():
        raise RecordError(f"{registry / CURRENT_FILE} names version {pointer['version']}, "
                          f"but {folder} does not exist")
    return folder


def current_folder() -> Path:
    """The folder of the model of record: the registry's current version, else models/."""
    return registry_current() or models_dir()
