"""A retrain run's files: the state file that makes stages resumable, and the decision record.

`runs/retrain/<batch>/state.json` lists each stage that finished (with its time and summary);
a rerun of the same batch (same sha256 of labels.csv and images) skips them, a changed batch
starts over. Every write is atomic, so an interrupted stage leaves the previous state, and the
stage simply runs again. `decision.json` is the A/B record: the rule (pipeline.promotion) and
each of its criteria with the measured value, its bound, the threshold and pass/fail; champion
and challenger side by side on every set scored (the batch's held-out people and PublicTest
decide, PrivateTest is reported); and the decision.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from face_sentiment.paths import runs_dir, write_atomic

STAGES = ("ingest", "validate", "train", "evaluate", "decide", "ship", "deploy")


def retrain_dir(batch: str) -> Path:
    """runs/retrain/<batch>: the run's state, outputs and challenger."""
    return runs_dir() / "retrain" / batch


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class RunState:
    """state.json of one batch's run (see the module docstring)."""

    def __init__(self, folder: Path, batch: str, sha256: str) -> None:
        self.path = folder / "state.json"
        self.batch, self.sha256 = batch, sha256
        values = json.loads(self.path.read_text()) if self.path.exists() else {}
        if values.get("sha256") != sha256:  # a new or changed batch: start over
            values = {"batch": batch, "sha256": sha256, "stages": {}, "created": now()}
        self.values = values

    @property
    def stages(self) -> dict:
        return self.values["stages"]

    def done(self, stage: str) -> bool:
        return self.stages.get(stage, {}).get("status") == "done"

    def mark(self, stage: str, status: str, seconds: float, **summary) -> None:
        self.stages[stage] = {"status": status, "finished": now(), "seconds": round(seconds, 2),
                              **summary}
        for later in STAGES[STAGES.index(stage) + 1:]:
            if status != "done":
                break
            if self.stages.get(later, {}).get("status") not in (None, "done"):
                self.stages.pop(later)  # a stage redone clears a later failure
        self.save()

    def set(self, **values) -> None:
        self.values.update(values)
        self.save()

    def save(self) -> None:
        write_atomic(self.path, json.dumps(self.values, indent=2) + "\n")


def decision_record(batch: str, sha256: str, champion: dict, challenger: dict,
                    evaluation: dict, checks: list[dict], rule: str, drift: list[dict]) -> dict:
    """The decision and its numbers (written as decision.json, and kept in the registry with a
    promoted model). `checks`: the criteria of pipeline.promotion, each with `passed`."""
    promote = bool(checks) and all(check["passed"] for check in checks)
    return {
        "batch": batch, "batch_sha256": sha256, "decided": now(),
        "decision": "promote" if promote else "keep champion",
        "rule": rule, "decided_on": sorted({check["set"] for check in checks}),
        "criteria": checks,
        "failed": [check["criterion"] for check in checks if not check["passed"]],
        "champion": champion, "challenger": challenger,
        "ab": evaluation["ab"], "metrics": evaluation["metrics"],
        "validation_drift": drift,
    }


def _points(value: float | None, signed: bool = True) -> str:
    """A fraction as percentage points ('n/a' when undefined)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:+.2f}" if signed else f"{100 * value:.2f}"


def _decimal(value: float | None, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def format_criterion(check: dict) -> str:
    """One criterion as a line: value, bound, threshold, pass/fail."""
    verdict = "PASS" if check["passed"] else "FAIL"
    people = check.get("people")
    where = f"{check['set']}, n={check['n']}" + (
        "" if people is None else f", {people} {'person' if people == 1 else 'people'}")
    if check.get("bound_kind"):
        text = (f"difference {_points(check['value'])} pts, {check['bound_kind']} bound "
                f"{_points(check['bound'])} pts > threshold {_points(check['threshold'])} pts")
    else:
        text = (f"macro-F1 {_decimal(check.get('champion'))} -> "
                f"{_decimal(check.get('challenger'))}, difference "
                f"{_decimal(check['value'], True)} >= threshold {check['threshold']:g}")
    note = f" ({check['note']})" if check.get("note") else ""
    return f"  [{verdict}] {check['criterion']} ({where}): {text}{note}"


def format_decision(record: dict) -> str:
    """The record as a few lines for the terminal, the Airflow log and a pull request."""
    lines = [f"decision for batch {record['batch']}: {record['decision'].upper()}",
             f"  rule: {record['rule']}"]
    lines += [format_criterion(check) for check in record["criteria"]]
    for name, ab in record["ab"].items():
        lines.append(f"  {name}: champion {_points(ab['accuracy_a'], False)}% vs challenger "
                     f"{_points(ab['accuracy_b'], False)}% (n={ab['n']}), diff "
                     f"{_points(ab['difference'])} pts, 95% interval "
                     f"[{_points(ab['ci_low'])}, {_points(ab['ci_high'])}], McNemar "
                     f"p={ab['mcnemar_p']:.3g}")
    if record["failed"]:
        lines.append("  not met: " + "; ".join(record["failed"]))
    return "\n".join(lines)
