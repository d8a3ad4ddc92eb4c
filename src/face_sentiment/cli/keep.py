"""`face-sentiment keep`: keep a run's network as an ensemble member or teacher."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="a run in runs/")
    parser.add_argument("--to", metavar="FOLDER", help="instead of models/teachers/<run>/")
    parser.add_argument("--description", required=True,
                        help="why it is kept (goes in its card)")


def run(args: argparse.Namespace) -> int:
    from face_sentiment.evaluation.release import keep_run
    from face_sentiment.paths import models_dir
    target = Path(args.to) if args.to else models_dir() / "teachers" / args.run
    print(f"wrote {keep_run(args.run, target, args.description)}")
    return 0
