"""`face-sentiment robustness`: models' accuracy under image degradations at fixed levels."""

from __future__ import annotations

import argparse

from face_sentiment.cli.common import MODEL_NAMES, wide_pandas


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help=f"{MODEL_NAMES}, a run's best.keras or a .tflite with its card")
    parser.add_argument("--split", default="PublicTest", choices=("PublicTest", "PrivateTest"))
    parser.add_argument("--images", type=int, help="a seeded random subset of the split")
    parser.add_argument("--perturbation", action="append",
                        help="only this one; repeatable (default: all)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.evaluation.predictors import load_predictors
    from face_sentiment.evaluation.robustness import PERTURBATIONS, accuracy_curves, sample_split
    unknown = set(args.perturbation or ()) - set(PERTURBATIONS)
    if unknown:
        raise ValueError(f"unknown perturbation(s) {', '.join(sorted(unknown))}; use "
                         f"{', '.join(PERTURBATIONS)}")
    faces, labels = sample_split(load_dataset(), args.split, args.images, args.seed)
    chosen = {name: PERTURBATIONS[name] for name in (args.perturbation or PERTURBATIONS)}
    curves = accuracy_curves(load_predictors(args.models), faces, labels, chosen, args.seed)
    models, ladder = (list(dict.fromkeys(curves.model)),
                      list(dict.fromkeys(zip(curves.perturbation, curves.level, strict=True))))
    table = (curves.set_index(["perturbation", "level", "model"])["accuracy"]
             .unstack("model").reindex(ladder)[models])
    with wide_pandas():
        print(f"{args.split}, {len(labels)} faces: accuracy under each perturbation level")
        print(table.round(4).to_string())
        means = curves.groupby(["perturbation", "model"], sort=False)["accuracy"].mean()
        print("\nmean accuracy over each ladder (the clean level included)")
        print(means.unstack("model").reindex(list(chosen))[models].round(4).to_string())
    if args.split == "PrivateTest":
        print("note: choose on PublicTest; PrivateTest is for reporting only")
    return 0
