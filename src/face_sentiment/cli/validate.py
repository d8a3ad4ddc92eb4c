"""`face-sentiment validate`: TFDV statistics, schema check, drift and skew (exit 1 on
anomalies)."""

from __future__ import annotations

import argparse

from face_sentiment.cli.common import wide_pandas


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--beam-args", default="",
                        help="Apache Beam pipeline options, e.g. '--runner=FlinkRunner "
                             "--flink_master=host:8081' (default: DirectRunner)")
    parser.add_argument("--update-schema", action="store_true",
                        help="re-infer and curate the committed schema from Training first")


def run(args: argparse.Namespace) -> int:
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.data.validation import run_validation, statistics_table
    result = run_validation(load_dataset(verbose=True), args.beam_args, args.update_schema)
    with wide_pandas():
        print(statistics_table(result.statistics).round(3).to_string(index=False))
        if result.ok:
            print("validation passed: no anomalies against the data contract")
            return 0
        print("validation FAILED: anomalies found")
        print(result.table().to_string(index=False))
    return 1
