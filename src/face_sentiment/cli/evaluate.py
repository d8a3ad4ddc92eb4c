"""`face-sentiment evaluate`: metrics with intervals for a run, its int8 export and fer; or
models scored on a labelled folder dataset (--dataset)."""

from __future__ import annotations

import argparse

from face_sentiment.cli.common import (
    MODEL_NAMES,
    add_run_arguments,
    print_metrics,
    print_tables,
    run_of,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)
    parser.add_argument("--tta", action="store_true", help="also flip-averaged int8")
    parser.add_argument("--dataset", help="instead: a labelled folder dataset (dir or zip with "
                        "labels.csv: path,label[,attributes], or a known dataset's name: "
                        "ckplus, taiwan, lfw_expressions) to score")
    parser.add_argument("--model", action="append", help="with --dataset: a model name "
                        f"({MODEL_NAMES}) or a .keras/.tflite path; repeatable (default: "
                        "shipped and fer)")
    parser.add_argument("--aggregate-by", nargs="+", metavar="COLUMN",
                        help="with --dataset: average frames per group, e.g. subject sequence "
                             "(CK+)")
    parser.add_argument("--cluster", metavar="COLUMN",
                        help="with --dataset: bootstrap by this column, e.g. subject")
    parser.add_argument("--detector", default="blazeface-full",
                        help="face detector for photographs (face_sentiment.live.faces)")
    parser.add_argument("--crops", action="store_true",
                        help="with --dataset: every image is one face crop (searched with a "
                             "margin, else taken whole)")
    parser.add_argument("--held-out", metavar="PROFILE_OR_MODEL",
                        help="with --dataset (a photo set this profile or model, e.g. shipped, "
                             "trained on): score only the people of its held-out fold")
    parser.add_argument("--cross-validated", nargs="+", metavar="MODEL",
                        help="with --dataset: the fold models of one photo split (shipped "
                             "first), scored as one model: each person by the fold model that "
                             "never saw them")
    parser.add_argument("--adapt-priors", action="store_true",
                        help="with --dataset: also score each model with its class priors "
                             "re-estimated on the dataset's faces by EM (label shift; Saerens "
                             "et al. 2002)")


def run(args: argparse.Namespace) -> int:
    if args.dataset:
        return _evaluate_dataset(args)
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.evaluation.release import evaluate_run
    result = evaluate_run(load_dataset(), run_of(args), tta=args.tta)
    print_metrics(result["metrics"])
    for name, ab in result["ab"].items():
        print(f"A/B {name}: diff {100 * ab['difference']:+.2f} pts "
              f"[{100 * ab['ci_low']:+.2f}, {100 * ab['ci_high']:+.2f}], "
              f"McNemar p={ab['mcnemar_p']:.2g}, promote {ab['name_b']}: {ab['promote_b']}")
    return 0


def _evaluate_dataset(args: argparse.Namespace) -> int:
    from face_sentiment.evaluation.cross_dataset import report
    print_tables(report(args.dataset, args.model or ["shipped", "fer"], args.aggregate_by,
                        args.cluster, args.detector, args.crops or None, args.held_out,
                        args.adapt_priors, args.cross_validated))
    return 0
