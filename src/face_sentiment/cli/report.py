"""`face-sentiment report`: execute one notebook into reports/ (HTML and PDF)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebook")
    parser.add_argument("--profile", default="full")
    parser.add_argument("--no-pdf", action="store_true")


def run(args: argparse.Namespace) -> int:
    from face_sentiment.reports import ReportError, build_report
    try:
        for written in build_report(Path(args.notebook), args.profile, pdf=not args.no_pdf):
            print(f"wrote {written}")
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
