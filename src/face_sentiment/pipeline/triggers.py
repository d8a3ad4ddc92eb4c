"""What starts a retrain run: a new batch in data/raw/incoming/, a schedule, or the monitor's
drift verdict.

A schedule (cron, Airflow's `schedule`) and the file sensor both come down to
`pending_batches`: the batches whose run has not reached an outcome for their current content.
The drift trigger reads `face-sentiment monitor`'s monitor.json: a drifted current window
starts a run when a labelled batch is waiting, and otherwise writes LABELS_NEEDED.json into
the incoming folder (the drift summary, for whoever collects and labels lab data): drift
without labels can say that the model should be retrained, not what with.
"""

from __future__ import annotations

import json
from pathlib import Path

from face_sentiment.paths import data_dir, write_atomic
from face_sentiment.pipeline.incoming import batch_folders, batch_sha256
from face_sentiment.pipeline.record import now, retrain_dir

FINAL_OUTCOMES = ("promoted", "kept", "stopped at validation")
LABELS_NEEDED_FILE = "LABELS_NEEDED.json"


def default_incoming() -> Path:
    return data_dir("raw") / "incoming"


def pending_batches(incoming: str | Path | None = None) -> list[Path]:
    """Batches (`incoming`'s sub-folders with a labels.csv, or `incoming` itself) without a
    final outcome for their current content."""
    incoming = Path(incoming) if incoming else default_incoming()
    if not incoming.exists():
        return []
    pending = []
    for folder in batch_folders(incoming):
        state = retrain_dir(folder.name) / "state.json"
        values = json.loads(state.read_text()) if state.exists() else {}
        if values.get("sha256") != batch_sha256(folder) or \
                values.get("outcome") not in FINAL_OUTCOMES:
            pending.append(folder)
    return pending


def read_verdict(monitor_json: str | Path) -> dict:
    """verdict and summary of a monitor.json (`face-sentiment monitor --out DIR`)."""
    path = Path(monitor_json)
    if not path.is_file():
        raise FileNotFoundError(f"monitor result {path} does not exist (run `face-sentiment "
                                "monitor LOG --out DIR` first; it writes DIR/monitor.json)")
    try:
        payload = json.loads(path.read_text())
        return {"verdict": payload["verdict"], "summary": payload.get("summary", ""),
                "window": payload.get("window"), "file": str(path)}
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a monitor.json with a 'verdict' ({error})") from error


def drift_action(monitor_json: str | Path, incoming: str | Path | None = None) -> dict:
    """What the drift verdict asks for: 'retrain' (drift, and labelled batches wait),
    'labels needed' (drift, no batch: LABELS_NEEDED.json written) or 'none'."""
    incoming = Path(incoming) if incoming else default_incoming()
    verdict = read_verdict(monitor_json)
    batches = pending_batches(incoming)
    if verdict["verdict"] != "drift":
        return {"action": "none", **verdict, "batches": [str(b) for b in batches]}
    if batches:
        return {"action": "retrain", **verdict, "batches": [str(b) for b in batches]}
    flag = write_atomic(incoming / LABELS_NEEDED_FILE, json.dumps(
        {"flagged": now(), "reason": "the deployed model's inputs drifted and no labelled "
         "batch is waiting: collect and label lab data into a new batch folder here "
         "(images + labels.csv)", **verdict}, indent=2) + "\n")
    return {"action": "labels needed", **verdict, "batches": [], "flag": str(flag)}


# The Airflow DAG continual_training's branches (task ids), in the order choose_branch tries them.
BRANCHES = ("ingest", "labels_needed", "nothing_to_do")


def choose_branch(incoming: str | Path | None = None,
                  monitor_json: str | Path | None = None) -> str:
    """What the DAG does next: 'ingest' (the stages) when a batch is pending (not one that
    already reached an outcome: those stay in the folder), else 'labels_needed' when the
    monitor's last verdict (`monitor_json`, if it exists) is drift, else 'nothing_to_do'."""
    if pending_batches(incoming):
        return "ingest"
    if monitor_json is not None and Path(monitor_json).is_file() and \
            read_verdict(monitor_json)["verdict"] == "drift":
        return "labels_needed"
    return "nothing_to_do"


def main(argv: list[str] | None = None) -> int:
    """`python -m face_sentiment.pipeline.triggers pending|branch`: what the Airflow DAG asks
    the project's venv (Airflow's own venv never imports face_sentiment). `pending` prints the
    pending batch folders, one a line; `branch` prints one of BRANCHES."""
    import argparse

    parser = argparse.ArgumentParser(description="continual-training triggers")
    parser.add_argument("command", choices=("pending", "branch"))
    parser.add_argument("--incoming", help="folder of batches (default: data/raw/incoming)")
    parser.add_argument("--monitor", help="monitor.json of `face-sentiment monitor` (branch)")
    args = parser.parse_args(argv)
    if args.command == "pending":
        for folder in pending_batches(args.incoming):
            print(folder)
    else:
        print(choose_branch(args.incoming, args.monitor))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
