"""`face-sentiment bias-audit`: per-group metrics and gap tests for models side by side."""

from __future__ import annotations

import argparse

from face_sentiment.cli.common import MODEL_NAMES, print_tables


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="labelled folder dataset (dir or zip with labels.csv) "
                                        "or 'fer2013' (PrivateTest by image condition)")
    parser.add_argument("--model", action="append",
                        help=f"a model name ({MODEL_NAMES}) or a path; repeatable "
                             "(default: shipped and fer)")
    parser.add_argument("--attribute", action="append",
                        help="labels.csv column to audit; repeatable (default: every column "
                             "with 2-10 values)")
    parser.add_argument("--cluster", help="column naming the person in each image: resample "
                                          "and permute people, not images")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from face_sentiment.responsible.bias_audit import report
    print_tables(report(args.dataset, args.model or ["shipped", "fer"], args.attribute,
                        args.cluster, args.resamples, args.permutations, args.seed))
    return 0
