"""`face-sentiment ensemble`: models' probabilities averaged (optionally with TTA), scored with
intervals; --export writes one int8 TFLite graph."""

from __future__ import annotations

import argparse

from face_sentiment.cli.common import MODEL_NAMES, TTA_CHOICES, wide_pandas


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help=f"{MODEL_NAMES}, a run's best.keras or a .tflite with its card")
    parser.add_argument("--tta", default="none", choices=TTA_CHOICES)
    parser.add_argument("--weights", nargs="+", type=float,
                        help="one per model (default: equal)")
    parser.add_argument("--split", default="PublicTest",
                        choices=("PublicTest", "PrivateTest", "Training"))
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--export", metavar="OUT.tflite",
                        help="Keras members only: one int8 graph averaging them (flip inside "
                             "when --tta flip), with model_card.json beside it")


def run(args: argparse.Namespace) -> int:
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.evaluation.ensemble import export_ensemble, load_ensemble, score_ensemble
    dataset = load_dataset()
    faces, labels = dataset.select(args.split)
    ensemble = load_ensemble(args.models, args.tta, weights=args.weights)
    table = score_ensemble(ensemble, faces, labels, args.resamples)
    with wide_pandas():
        print(f"{args.split}, {len(labels)} faces, tta {args.tta}")
        print(table.round(4).to_string(index=False))
    ab = table.attrs["ab"]
    print(f"A/B ensemble vs {ab.name_a}: diff {100 * ab.difference:+.2f} pts "
          f"[{100 * ab.ci_low:+.2f}, {100 * ab.ci_high:+.2f}], McNemar p={ab.mcnemar_p:.2g}")
    if args.split == "PrivateTest":
        print("note: choose ensembles on PublicTest; PrivateTest is for reporting only")
    if args.export:
        training, _ = dataset.select("Training")
        path = export_ensemble(args.models, args.export, training, flip=args.tta == "flip",
                               weights=args.weights)
        print(f"wrote {path} and its model card (one graph, {len(args.models)} members)")
    return 0
