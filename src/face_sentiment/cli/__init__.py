"""Command line: `python -m face_sentiment <command>` (also installed as `face-sentiment`)."""

# One pattern for every command: a module with `add_arguments(parser)` and `run(args) -> int`,
# named in COMMANDS below (most live in this package, one per command; a stage's own
# command.py where the stage defines it). A command module imports only the standard library
# and light modules at its top, since parsing and `--help` must not import TensorFlow or
# pandas (main imports only the module of the command it runs); `run` imports the rest.
# The package, not a cli.py beside the stages, keeps the command modules exempt from the
# stage layering (tests/test_layout.py): they wire stages together, as the CLI always did.

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Collection
from typing import NamedTuple

from face_sentiment.cli.common import MODEL_NAMES, TTA_CHOICES

__all__ = ["COMMANDS", "MODEL_NAMES", "TTA_CHOICES", "build_parser", "main"]


class Command(NamedTuple):
    name: str
    module: str  # defines add_arguments and run; a leading dot: a module of this package
    help: str


COMMANDS = (
    Command("data", ".data", "build the canonical cache in data/interim"),
    Command("validate", ".validate",
            "TFDV: statistics, schema check, drift and skew; exit 1 on anomalies"),
    Command("transform", ".transform", "TF Transform (Beam): a dataset -> data/processed/<name>/ "
            "(TFRecords, transform_fn, metadata, manifest)"),
    Command("train", ".train", "train a model with a profile's settings"),
    Command("distill", ".distill", "train a profile's student on teachers' soft targets (their "
            "flip- or crop-averaged probabilities on Training, cached in runs/teacher_targets/)"),
    Command("train-speed", ".train_speed", "seconds per training epoch of a profile's network: "
            "default, XLA, mixed bfloat16, no augmentation"),
    Command("export", ".export", "TFLite variants of a run + size/accuracy/latency table"),
    Command("evaluate", ".evaluate", "metrics with CIs for the run, its int8 export and fer"),
    Command("ship", ".ship", "copy the int8 model to models/ and write the model card (and "
            "make it current in a seeded model registry)"),
    Command("keep", ".keep", "keep a run's network (inference copy, history, card) as an "
            "ensemble member or teacher, in models/teachers/<run>/"),
    Command("ab-test", ".ab_test", "McNemar + bootstrap CI: champion vs challenger"),
    Command("bias-audit", ".bias_audit", "per-group metrics and gap tests (bootstrap CI, "
            "permutation p) for models side by side"),
    Command("ensemble", ".ensemble", "average models' probabilities (optionally with flip or "
            "multi-crop TTA), scored with intervals; --export writes one int8 TFLite graph"),
    Command("robustness", ".robustness", "accuracy of models under image degradations "
            "(brightness, gamma, contrast, noise, blur, JPEG, resolution) at fixed levels"),
    Command("report", ".report", "execute one notebook -> reports/ HTML + PDF"),
    Command("report-index", ".report_index", "write reports/index.html"),
    Command("prepare-notebooks", ".prepare_notebooks",
            "inject a profile's parameters without executing (for nbval)"),
    Command("run-dir", ".run_dir",
            "print a profile's run folder (runs/<run_name>, relative to the project)"),
    Command("monitor", ".monitor", "drift of the runner's logged faces against the room's own "
            "reference (FER2013 a fallback) or a named one, per window (HTML + JSON); exit 1 "
            "on drift"),
    Command("features", "face_sentiment.features.command", "the Feast feature store "
            "(features/): apply, ingest FER2013, batches and runner logs, materialize, "
            "point-in-time training sets, online"),
    Command("retrain", ".retrain", "continual training: new labelled batch -> validate -> "
            "fine-tune the champion -> A/B test -> promote into the registry -> deploy "
            "(resumable)"),
    Command("rollback", ".rollback",
            "make the registry's previous model current again and deploy it"),
    Command("deploy", ".deploy", "copy the registry's current model to the deploy targets"),
    Command("predict", "face_sentiment.live.predict",
            "expression of every face in photos, folders and videos (JSON or CSV)"),
)


def build_parser(names: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The CLI's parser. `names`: only these commands get their arguments, the others are
    listed with their help but their modules are not imported (main passes the command it
    runs); None: every command."""
    parser = argparse.ArgumentParser(prog="face-sentiment", description=__doc__)
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow/absl log lines and library warnings (hidden "
                             "by default)")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        subparser = commands.add_parser(command.name, help=command.help)
        if names is None or command.name in names:
            module = importlib.import_module(command.module, __name__)
            # A command with subcommands (features) sets its own handler per subcommand.
            subparser.set_defaults(handler=module.run)
            module.add_arguments(subparser)
    return parser


def _command_named(argv: list[str]) -> list[str]:
    """The command in a command line: its first word that is not an option (the top level's
    only options, --verbose and --help, take no value)."""
    return [word for word in argv if not word.startswith("-")][:1]


def _join_option_values(argv: list[str], options: tuple[str, ...] = ("--beam-args",)
                        ) -> list[str]:
    """`--beam-args --runner=X` -> `--beam-args=--runner=X`: argparse would read the value,
    which starts with '--', as an option of its own."""
    joined, index = [], 0
    while index < len(argv):
        if argv[index] in options and index + 1 < len(argv):
            joined.append(f"{argv[index]}={argv[index + 1]}")
            index += 2
        else:
            joined.append(argv[index])
            index += 1
    return joined


# What an installed wheel runs (numpy, OpenCV, LiteRT: pyproject's dependencies); the other
# commands need the workbench's packages (pandas, TensorFlow, ...: requirements.lock).
RUNTIME_COMMANDS = ("predict",)


def main(argv: list[str] | None = None) -> int:
    words = _join_option_values(sys.argv[1:] if argv is None else argv)
    args = build_parser(_command_named(words)).parse_args(words)
    if not args.verbose:
        _quiet()
    try:
        code = args.handler(args)
        if getattr(args, "hard_exit", False) and argv is None:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        return code
    except KeyboardInterrupt:
        print(f"{args.command}: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as error:
        missing = error.name or "a module"
        if args.command in RUNTIME_COMMANDS or missing.split(".")[0] == "face_sentiment":
            raise  # a broken install or a bug, not a missing workbench
        print(f"error: {args.command} needs the workbench ({missing} is not installed): clone "
              "the repository and run make setup", file=sys.stderr)
        return 2
    except Exception as error:
        if not isinstance(error, _user_errors()):
            raise  # a bug: keep its traceback
        print(f"error: {error}", file=sys.stderr)
        return 2


# Errors that mean "this input, model or setup is not usable" and say what to do: one line on
# stderr and exit 2. (module, class): looked up only in modules already imported, since an error
# of a module that was never imported cannot have been raised.
USER_ERRORS = (("face_sentiment.model_card", "ModelFileError"),
               ("face_sentiment.live.frame_sources", "SourceError"),
               ("face_sentiment.live.analyzer", "PredictError"),
               ("face_sentiment.reports", "ReportError"),
               ("face_sentiment.monitoring.logs", "LogError"),
               ("face_sentiment.pipeline.deploy", "DeployError"))


def _user_errors() -> tuple[type[BaseException], ...]:
    found = [FileNotFoundError, ValueError]  # DataError, DatasetError, DataNotFoundError too
    for module, name in USER_ERRORS:
        error_type = getattr(sys.modules.get(module), name, None)
        if error_type is not None:
            found.append(error_type)
    return tuple(found)


def _quiet() -> None:
    """Hide TensorFlow's C++ log lines, absl's and library warnings (before any is imported):
    `--verbose` keeps them."""
    import importlib.util
    import logging
    import os
    import warnings
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("FACE_SENTIMENT_QUIET", "1")  # live.interpreter.QUIET_ENV
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="(keras|tensorflow|absl)")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if importlib.util.find_spec("absl") is not None:
        import absl.logging
        absl.logging.set_verbosity(absl.logging.ERROR)
