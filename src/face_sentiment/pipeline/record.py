"""A retrain run's files: the state file that makes stages resumable, and the decision record.

`runs/retrain/<batch>/state.json` lists each stage that finished (with its time and summary);
a rerun of the same batch (same sha256 of labels.csv and images) skips them, a changed batch
starts over. Every write is atomic, so an interrupted stage leaves the previous state, and the
stage simply runs again. `decision.json` is the A/B record: champion and challenger side by
side on PublicTest (which decides) and the batch holdout (reported), the rule and its
thresholds, each criterion's value, and the decision.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from face_sentiment.evaluation.ab_testing import ALPHA, MAX_MACRO_F1_DROP, ABResult
from face_sentiment.paths import runs_dir, write_atomic

STAGES = ("ingest", "validate", "train", "evaluate", "decide", "ship", "deploy")
RULE = ("promote the challenger only when, on PublicTest, its accuracy is higher with "
        f"McNemar's exact two-sided p < {ALPHA} AND the 95% bootstrap interval of the "
        f"difference lies above zero AND its macro-F1 is not lower by more than "
        f"{MAX_MACRO_F1_DROP:g} (face_sentiment.evaluation.ab_testing)")


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


def criteria(ab: ABResult) -> list[dict]:
    """Each part of the promotion rule with its measured value and whether it holds."""
    return [
        {"criterion": "accuracy higher", "value": ab.difference, "threshold": 0.0,
         "passed": ab.difference > 0},
        {"criterion": f"McNemar exact p < {ALPHA}", "value": ab.mcnemar_p, "threshold": ALPHA,
         "passed": ab.mcnemar_p < ALPHA},
        {"criterion": "95% bootstrap interval of the difference above 0",
         "value": [ab.ci_low, ab.ci_high], "threshold": 0.0, "passed": ab.ci_low > 0},
        {"criterion": f"macro-F1 not lower by more than {MAX_MACRO_F1_DROP:g}",
         "value": ab.macro_f1_b - ab.macro_f1_a, "threshold": -MAX_MACRO_F1_DROP,
         "passed": ab.macro_f1_b >= ab.macro_f1_a - MAX_MACRO_F1_DROP},
    ]


def decision_record(batch: str, sha256: str, champion: dict, challenger: dict,
                    evaluation: dict, deciding: ABResult, drift: list[dict]) -> dict:
    """The decision and its numbers (written as decision.json, and kept in the registry with a
    promoted model)."""
    checks = criteria(deciding)
    promote = deciding.promote_b
    return {
        "batch": batch, "batch_sha256": sha256, "decided": now(),
        "decision": "promote" if promote else "keep champion",
        "rule": RULE, "decided_on": "PublicTest",
        "criteria": checks,
        "failed": [c["criterion"] for c in checks if not c["passed"]],
        "champion": champion, "challenger": challenger,
        "ab": evaluation["ab"], "metrics": evaluation["metrics"],
        "validation_drift": drift,
    }


def format_decision(record: dict) -> str:
    """The record as a few lines for the terminal and the Airflow log."""
    lines = [f"decision for batch {record['batch']}: {record['decision'].upper()} "
             f"(rule on {record['decided_on']})"]
    for name, ab in record["ab"].items():
        lines.append(f"  {name}: champion {100 * ab['accuracy_a']:.2f}% vs challenger "
                     f"{100 * ab['accuracy_b']:.2f}% (n={ab['n']}), diff "
                     f"{100 * ab['difference']:+.2f} pts [{100 * ab['ci_low']:+.2f}, "
                     f"{100 * ab['ci_high']:+.2f}], McNemar p={ab['mcnemar_p']:.3g}, macro-F1 "
                     f"{ab['macro_f1_a']:.3f} -> {ab['macro_f1_b']:.3f}")
    if record["failed"]:
        lines.append("  not met: " + "; ".join(record["failed"]))
    return "\n".join(lines)
