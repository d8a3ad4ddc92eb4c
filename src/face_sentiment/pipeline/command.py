"""`face-sentiment retrain`, `rollback` and `deploy`: arguments and entry points (light: the
help needs neither TensorFlow nor pandas).

retrain exit status: 0 when every batch reached its outcome (promoted, champion kept, or
nothing to do), 1 when a batch stopped at validation (the report is printed and written to
runs/retrain/<batch>/validation.txt; nothing is shipped), 2 on a usage or input error.
"""

from __future__ import annotations

import json
from pathlib import Path

from face_sentiment.pipeline.record import STAGES


def _registry(args):
    from face_sentiment.pipeline.registry import Registry
    return Registry(args.registry)


def _targets(args) -> dict:
    from face_sentiment.pipeline.deploy import load_targets
    targets = load_targets(args.deploy_config)
    if args.target:
        missing = [name for name in args.target if name not in targets]
        if missing:
            raise ValueError(f"unknown deploy target(s) {', '.join(missing)}; configured: "
                             f"{', '.join(targets)}")
        targets = {name: targets[name] for name in args.target}
    return targets


def run_retrain(args) -> int:
    """The `face-sentiment retrain` command (cli.py): the batch loop of the continual entry
    point (pipeline.continual), without its output folder."""
    from face_sentiment.pipeline.continual import incoming_batches, retrain_batches
    from face_sentiment.pipeline.triggers import default_incoming, drift_action

    incoming = Path(args.incoming) if args.incoming else default_incoming()
    batches = incoming_batches(incoming, args.rerun)  # an error naming a missing folder
    if args.on_drift:
        action = drift_action(args.on_drift, incoming)
        print(f"monitor verdict: {action['verdict']} ({action['summary']}) -> {action['action']}")
        if action["action"] == "labels needed":
            print(f"no labelled batch waits in {incoming}: flagged {action['flag']}")
        if action["action"] != "retrain":
            return 0
    if not batches:
        print(f"no new batch in {incoming}: nothing to do")
        return 0
    status, results = retrain_batches(
        batches, args.profile, registry=_registry(args), targets=_targets(args),
        until=args.stage, seed_from=Path(args.seed_from) if args.seed_from else None,
        beam_args=args.beam_args)
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    return status


def run_rollback(args) -> int:
    """`face-sentiment rollback`: the previous registry version becomes current (and is
    deployed to the targets unless --no-deploy)."""
    from face_sentiment.pipeline.deploy import deploy
    registry = _registry(args)
    before = registry.current()
    version = registry.rollback()
    print(f"rolled back {registry.folder}: {before.name} ({before.fingerprint}) -> "
          f"{version.name} ({version.fingerprint})")
    if not args.no_deploy:
        for target in _targets(args).values():
            record = deploy(version, target)
            print(f"deployed {record['version']} to {record['where']}")
    return 0


def run_deploy(args) -> int:
    """`face-sentiment deploy`: the registry's current model to the deploy targets."""
    from face_sentiment.pipeline.deploy import deploy
    version = _registry(args).current()
    for target in _targets(args).values():
        record = deploy(version, target)
        print(f"deployed {record['version']} ({record['fingerprint']}) to {record['where']}")
    return 0


def _common(parser) -> None:
    parser.add_argument("--registry", help="model registry folder (default: deploy/registry, "
                                           "or $FACE_SENTIMENT_REGISTRY)")
    parser.add_argument("--deploy-config", help="deploy targets YAML (default: "
                                                "deploy/targets.yaml; without it, deploy/pi/)")
    parser.add_argument("--target", action="append",
                        help="deploy only to this configured target; repeatable")


def add_batch_arguments(parser, profile_default: str, profile_help: str) -> None:
    """The options of a run over lab batches, shared by `face-sentiment retrain` and the
    continual-training entry point (face_sentiment.pipeline.continual)."""
    parser.add_argument("--incoming", help="a batch folder (images + labels.csv) or a folder "
                                           "of batches (default: data/raw/incoming)")
    parser.add_argument("--profile", default=profile_default,
                        help="profile whose `retrain:` section sets the fine-tune, split and "
                             f"validation settings (default: {profile_help})")
    parser.add_argument("--stage", default="deploy", choices=STAGES,
                        help="run the stages up to this one (done ones are skipped; default: "
                             "all)")
    parser.add_argument("--seed-from", help="folder seeding an empty registry as its first "
                                            "champion (default: models/, read only)")
    parser.add_argument("--on-drift", metavar="MONITOR_JSON",
                        help="act on `face-sentiment monitor`'s monitor.json: retrain when it "
                             "says drift and a batch waits; flag LABELS_NEEDED.json when none")
    parser.add_argument("--rerun", action="store_true",
                        help="also batches that reached an outcome (their finished stages are "
                             "still skipped)")
    parser.add_argument("--beam-args", default="", help="Apache Beam options for TFDV")


def add_retrain_arguments(parser) -> None:
    add_batch_arguments(parser, "full", "full")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    _common(parser)


def add_rollback_arguments(parser) -> None:
    _common(parser)
    parser.add_argument("--no-deploy", action="store_true",
                        help="only move the registry's pointer")


def add_deploy_arguments(parser) -> None:
    _common(parser)
