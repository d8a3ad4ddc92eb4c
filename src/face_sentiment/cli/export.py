"""`face-sentiment export`: a run's TFLite variants with their size, accuracy and latency."""

from __future__ import annotations

import argparse

from face_sentiment.cli.common import add_run_arguments, run_of, wide_pandas


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)
    parser.add_argument("--latency-runs", type=int, default=300)


def run(args: argparse.Namespace) -> int:
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.evaluation.release import export_run
    result = export_run(load_dataset(), run_of(args), runs=args.latency_runs)
    with wide_pandas():
        import pandas as pd
        print(f"latency with {result['runtime']}")
        print(pd.DataFrame(result["variants"]).round(4).to_string(index=False))
        print("fer TFLite latency:",
              {k: round(v, 3) for k, v in result["fer_tflite_latency"].items()})
        print("\nint8 vs fer, 1 thread, per runtime (target: <= 1.5x fer):")
        print(pd.DataFrame(result["runtimes"]).round(3).to_string(index=False))
    return 0
