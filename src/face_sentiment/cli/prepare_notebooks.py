"""`face-sentiment prepare-notebooks`: inject a profile's parameters without executing (for
nbval)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="ci")
    parser.add_argument("--out", default="build/nbval")


def run(args: argparse.Namespace) -> int:
    from face_sentiment.reports import prepare_notebooks
    for path in prepare_notebooks(args.profile, Path(args.out)):
        print(f"prepared {path}")
    return 0
