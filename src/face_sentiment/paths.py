"""Where the project keeps things: one place that knows the folder layout.

The project root is the checkout holding `pyproject.toml` (the package is installed editable);
`FACE_SENTIMENT_ROOT` overrides it, which the tests use to work in a temporary tree.
"""

from __future__ import annotations

import os
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
