"""`face-sentiment ship`: copy a run's int8 model to the profile's ship_to folder (default
models/) and write its model card. Where a model registry already holds the model of record
(face_sentiment.model_of_record), a model shipped to models/ is registered and made current,
so that `shipped` keeps meaning what was just shipped."""

from __future__ import annotations

import argparse
from pathlib import Path

from face_sentiment.cli.common import add_run_arguments, profile_of, run_of

__all__ = ["add_arguments", "run"]

add_arguments = add_run_arguments


def run(args: argparse.Namespace) -> int:
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.evaluation.release import ship
    from face_sentiment.paths import models_dir
    from face_sentiment.profiles import ship_folder
    from face_sentiment.reports import git_commit
    target = ship_folder(profile_of(args))
    print(f"wrote {ship(load_dataset(), run_of(args), git_commit(), target, args.profile)}")
    if Path(target).resolve() == models_dir().resolve():
        record_shipped(target)
    return 0


def record_shipped(folder: Path) -> None:
    """Register and promote `folder` in a registry that already has a current version; before
    the registry is seeded, models/ itself is the model of record and nothing is needed."""
    from face_sentiment.pipeline.registry import Registry

    registry = Registry()
    if registry.pointer() is None:
        return
    version = registry.promote(registry.add(folder), reason="shipped by `face-sentiment ship`")
    print(f"model of record: {version.name} of {registry.folder} (current)")
