"""`face-sentiment train`: train a model with a profile's settings (`distill` runs this too)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from face_sentiment.cli.common import add_profile_arguments, profile_of

if TYPE_CHECKING:
    from face_sentiment.model.config import TrainingConfig

# Flags that override the profile's training settings: distill's, and --run-name.
FLAG_SETTINGS = ("run_name", "teachers", "teacher_tta", "distill_temperature", "distill_alpha")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_profile_arguments(parser)
    parser.add_argument("--run-name")
    parser.add_argument("--photo-holdout-fold", type=int, metavar="K",
                        help="a profile with photo_sets: hold out person fold K instead (the "
                             "other folds of a cross-validation); the run is named "
                             "<run_name>-fold<K> unless --run-name is given")


def training_config(args: argparse.Namespace) -> TrainingConfig:
    """The run's settings: the profile's (with --set), then the command's flags (TensorFlow-
    free, so a bad setting fails before TensorFlow loads). They are what config.json records."""
    from face_sentiment.model.config import TrainingConfig
    overrides = {name: getattr(args, name, None) for name in FLAG_SETTINGS}
    settings = profile_of(args)["training"]
    fold = getattr(args, "photo_holdout_fold", None)
    if fold is not None:
        if not settings.get("photo_sets"):
            raise SystemExit(f"error: profile {args.profile} trains on no photo sets, so it "
                             "has no person fold to hold out")
        overrides["photo_holdout_fold"] = fold
        overrides["run_name"] = args.run_name or f"{settings['run_name']}-fold{fold}"
    return TrainingConfig.from_dict({**settings,
                                     **{k: v for k, v in overrides.items() if v is not None}})


def run(args: argparse.Namespace) -> int:
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.model.training import train
    from face_sentiment.paths import runs_dir
    config = training_config(args)
    dataset = load_dataset(verbose=True)
    teacher_targets = None
    if config.teachers:
        from face_sentiment.evaluation.ensemble import TARGETS_FOLDER
        from face_sentiment.evaluation.ensemble import teacher_targets as compute_targets
        from face_sentiment.labels import class_names
        faces, _ = dataset.select("Training", config.label_set)
        teacher_targets = compute_targets(
            list(config.teachers), faces, runs_dir() / TARGETS_FOLDER,
            dataset.data_hash, config.teacher_tta, class_names(config.label_set), verbose=True)
    best = train(dataset, config, teacher_targets=teacher_targets)
    print(f"best model: {best}")
    return 0
