"""Run profiles: `profiles/<name>.yaml` holds the settings of a whole `make reports` run.

`full` reproduces the shipped results; `ci` is small enough for the test suite; `ferplus`
trains the FER+ variant. Each profile has a `training` section, one section of papermill
parameters per notebook and, optionally, `ship_to`: the folder `make ship` writes the model to
(default `models/`).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from face_sentiment.paths import models_dir, project_root


def profile_path(name: str) -> Path:
    return project_root() / "profiles" / f"{name}.yaml"


def load_profile(name: str) -> dict:
    path = profile_path(name)
    if not path.exists():
        available = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise FileNotFoundError(f"no profile {path}; available: {available}")
    return yaml.safe_load(path.read_text()) or {}


def ship_folder(profile: dict) -> Path:
    """Where `make ship` puts a profile's model: its `ship_to` (relative to the project), else
    models/."""
    folder = profile.get("ship_to")
    return project_root() / folder if folder else models_dir()
