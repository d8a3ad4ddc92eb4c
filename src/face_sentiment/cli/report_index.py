"""`face-sentiment report-index`: write reports/index.html."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="full")


def run(args: argparse.Namespace) -> int:
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.reports import write_index
    print(f"wrote {write_index(args.profile, load_dataset().data_hash)}")
    return 0
