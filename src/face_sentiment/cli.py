"""Command line: `python -m face_sentiment <command>` (also installed as `face-sentiment`)."""

from __future__ import annotations

import argparse
import sys


def _data(args) -> int:
    from face_sentiment.dataset import build_cache
    build_cache(args.source, args.ferplus, force=args.force)
    return 0


def _train(args) -> int:
    from face_sentiment.dataset import load_dataset
    from face_sentiment.profiles import load_profile
    from face_sentiment.training import TrainingConfig, train
    config = TrainingConfig.from_dict(load_profile(args.profile)["training"])
    if args.run_name:
        config.run_name = args.run_name
    best = train(load_dataset(verbose=True), config)
    print(f"best model: {best}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="face-sentiment", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="build the canonical cache in data/interim")
    data.add_argument("--source", help="FER2013 file or folder (default: $FER2013_PATH, data/raw)")
    data.add_argument("--ferplus", help="fer2013new.csv (default: $FERPLUS_PATH, data/raw)")
    data.add_argument("--force", action="store_true", help="rebuild even if up to date")
    data.set_defaults(handler=_data)
    train = commands.add_parser("train", help="train a model with a profile's settings")
    train.add_argument("--profile", default="full")
    train.add_argument("--run-name")
    train.set_defaults(handler=_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
