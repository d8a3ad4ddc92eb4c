"""`face-sentiment ab-test`: champion vs challenger, McNemar test and bootstrap interval, on
FER2013 or on a labelled folder (people resampled)."""

from __future__ import annotations

import argparse

from face_sentiment.cli.common import MODEL_NAMES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("champion",
                        help=f"a model name ({MODEL_NAMES}) or a .keras/.tflite path")
    parser.add_argument("challenger")
    parser.add_argument("--split", default="PublicTest", choices=("PublicTest", "PrivateTest"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset", help="instead of FER2013: a labelled folder or a known "
                                          "dataset's name (lfw_expressions, taiwan, ckplus)")
    parser.add_argument("--held-out", metavar="PROFILE_OR_MODEL",
                        help="with --dataset: only the people this profile or model never "
                             "trained on")


def run(args: argparse.Namespace) -> int:
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.evaluation.ab_testing import compare
    from face_sentiment.evaluation.predictors import load_predictor
    from face_sentiment.labels import LABEL_SETS
    a, b = load_predictor(args.champion), load_predictor(args.challenger)
    if args.dataset:
        return _ab_test_dataset(args, a, b)
    # Two FER+ models are compared on FER+ labels (their selection split's own labels); any
    # other pair on FER2013's, where indices 0-6 mean the same under both label sets.
    label_set = next((name for name, classes in LABEL_SETS.items()
                      if tuple(a.classes) == tuple(b.classes) == classes), "fer2013")
    images, labels = load_dataset().select(args.split, label_set)
    print(f"{args.split}, {label_set} labels, {len(labels)} faces")
    result = compare(labels, a.predict(images).argmax(1), b.predict(images).argmax(1),
                     a.name, b.name, seed=args.seed)
    for key, value in result.to_dict().items():
        print(f"{key:>16}: {value}")
    if args.split != "PublicTest":
        print("note: promotion decisions use PublicTest; this split is for reporting only")
    return 0


def _ab_test_dataset(args: argparse.Namespace, a, b) -> int:
    """ab-test on a labelled folder: both models on the same faces, people resampled."""
    from face_sentiment.data.folder_dataset import load_named
    from face_sentiment.data.photos import PERSON_COLUMNS
    from face_sentiment.evaluation import cross_dataset as cd
    from face_sentiment.evaluation.ab_testing import compare

    dataset = load_named(args.dataset)
    if args.held_out:
        dataset = cd.held_out_subset(dataset, args.held_out)
    crops = cd.dataset_faces(dataset)
    first, second = cd.score(a, dataset, crops), cd.score(b, dataset, crops)
    column = PERSON_COLUMNS.get(dataset.name)
    clusters = first.table[column].to_numpy() if column else None
    print(f"{dataset.name}, {len(first.labels)} faces"
          + (f" of {len(set(clusters))} people (resampled by {column})" if column else ""))
    result = compare(first.labels, first.predicted, second.predicted, a.name, b.name,
                     seed=args.seed, clusters=clusters)
    for key, value in result.to_dict().items():
        print(f"{key:>16}: {value}")
    return 0
