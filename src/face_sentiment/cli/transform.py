"""`face-sentiment transform`: TF Transform (Beam) of a dataset into data/processed/<name>/."""

from __future__ import annotations

import argparse

from face_sentiment.cli.common import add_profile_arguments, profile_of


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", help="fer2013 (default), a known folder dataset "
                                          "(ckplus, taiwan) or a labelled folder/zip path")
    add_profile_arguments(parser, help="whose preprocessing to use")
    parser.add_argument("--out", help="output folder (default: data/processed/<name>)")
    parser.add_argument("--beam-args", default="",
                        help="Apache Beam pipeline options (default: DirectRunner)")
    parser.add_argument("--detector", default="blazeface-full",
                        help="face detector for photographs")
    parser.add_argument("--force", action="store_true", help="rerun even if up to date")


def run(args: argparse.Namespace) -> int:
    from face_sentiment.data.transform import fer2013_table, folder_table, run_transform
    from face_sentiment.preprocessing import PreprocessingSpec
    spec = PreprocessingSpec.from_dict(profile_of(args)["training"].get("preprocessing", {}))
    if args.dataset in (None, "fer2013"):
        from face_sentiment.data.cache import load_dataset
        table = fer2013_table(load_dataset(verbose=True))
    else:
        from face_sentiment.data.folder_dataset import KNOWN_DATASETS, locate
        path = locate(args.dataset) if args.dataset in KNOWN_DATASETS else args.dataset
        table = folder_table(path, args.detector)
    run_transform(table, spec, args.out, args.beam_args, args.force)
    # protobuf's C++ extension can crash the interpreter at exit after a TFT pipeline; the
    # outputs are renamed into place by now, so main() ends the process with this status.
    args.hard_exit = True
    return 0
