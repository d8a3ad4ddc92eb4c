"""`face-sentiment data`: the canonical FER2013 (+ FER+) cache in data/interim."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source",
                        help="FER2013 file or folder (default: $FER2013_PATH, data/raw)")
    parser.add_argument("--ferplus", help="fer2013new.csv (default: $FERPLUS_PATH, data/raw)")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")


def run(args: argparse.Namespace) -> int:
    from face_sentiment.data.cache import build_cache
    build_cache(args.source, args.ferplus, force=args.force)
    return 0
