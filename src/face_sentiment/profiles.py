"""Run profiles: `profiles/<name>.yaml` holds the settings of a whole `make reports` run.

`full` reproduces the shipped results; `ci` is small enough for the test suite. Each profile
has a `training` section and one section of papermill parameters per notebook.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from face_sentiment.paths import project_root


def profile_path(name: str) -> Path:
    return project_root() / "profiles" / f"{name}.yaml"


def load_profile(name: str) -> dict:
    path = profile_path(name)
    if not path.exists():
        available = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise FileNotFoundError(f"no profile {path}; available: {available}")
    return yaml.safe_load(path.read_text()) or {}
