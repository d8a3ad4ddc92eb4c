"""`face-sentiment distill`: `train` with a student profile and its teachers' soft targets."""

from __future__ import annotations

import argparse

from face_sentiment.cli.common import MODEL_NAMES, TTA_CHOICES, add_profile_arguments
from face_sentiment.cli.train import run

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--teachers", nargs="+", metavar="MODEL",
                        help=f"teacher models: {MODEL_NAMES}, or paths (default: the "
                             "profile's teachers)")
    add_profile_arguments(parser, default="distill")
    parser.add_argument("--run-name")
    parser.add_argument("--teacher-tta", choices=TTA_CHOICES)
    parser.add_argument("--distill-temperature", type=float, metavar="T")
    parser.add_argument("--distill-alpha", type=float, metavar="A",
                        help="weight of the hard-label term (1 - A: the teachers')")
