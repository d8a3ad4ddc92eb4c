"""`face-sentiment monitor`: the drift report of live faces, written as HTML + JSON + a plot.

`monitor(logs, reference, window, out)` reads the logs (`logs.load_logs`), lays windows back
from their end (`drift.assign_windows`), tests every window against the reference
(`drift.window_timeline`), runs Evidently's report on the current (last) window, and writes to
`out`: `drift_report.html` (Evidently's, the current window), `monitor.json` (settings,
reference, verdict, every window's tests, log problems, performance), `timeline.csv` and
`timeline.png` (drift share and each expression's share per window, accuracy with its interval
when labels are given). The verdict is the current window's: exit status 0 without drift, 1
with drift, 2 when there is no verdict (no usable log, or too few faces in the current
window), so a scheduler or CI can act on it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from face_sentiment.monitoring import drift
from face_sentiment.monitoring.logs import LogData, load_logs
from face_sentiment.monitoring.reference import Reference, describe, load_reference
from face_sentiment.paths import write_atomic

EXIT_OK, EXIT_DRIFT, EXIT_NO_VERDICT = 0, 1, 2


@dataclass
class MonitorResult:
    verdict: str  # "drift", "no drift" or "no verdict"
    summary: str
    timeline: pd.DataFrame
    current: dict
    messages: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    performance: pd.DataFrame | None = None
    payload: dict = field(default_factory=dict)
    snapshot: object = None

    @property
    def exit_code(self) -> int:
        return {"drift": EXIT_DRIFT, "no drift": EXIT_OK}.get(self.verdict, EXIT_NO_VERDICT)

    def column_table(self) -> pd.DataFrame:
        """The current window's tests: one row per column."""
        result = self.current.get("result") or {}
        return pd.DataFrame(result.get("columns", []))


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _summary_line(verdict: str, current: dict, reference: Reference, windows: pd.DataFrame,
                  window: drift.Window) -> str:
    info = drift.describe_window(current["info"])
    result = current.get("result")
    if result is None:
        return f"NO VERDICT: current {info}: {current['status']}"
    scores = ", ".join(f"{r['column']} {r['score']:.3g} >= {r['threshold']:g}"
                       for r in result["columns"] if r["drifted"])
    tested = windows[windows["status"] == "tested"]
    history = (f"; {int(tested['dataset_drift'].sum())} of {len(tested)} tested windows of "
               f"{window} drifted")
    head = "DRIFT" if verdict == "drift" else "no drift"
    return (f"{head}: current {info}, {current['info']['faces']} faces vs {reference.name}: "
            f"{len(result['drifted_columns'])}/{result['tested']} columns drifted"
            + (f" ({scores})" if scores else "") + history)


def monitor(logs: LogData | list[str | Path] | None = None,
            reference: str | list[str] | Reference = "fer2013", window: str = "10min",
            out: str | Path | None = None, settings: drift.DriftSettings = drift.DEFAULTS,
            labels: str | Path | None = None, model: str = "shipped-int8",
            reference_limit: int | None = None, html: bool = True, dataset=None,
            resamples: int = 1000) -> MonitorResult:
    """Drift (and, with labels, performance) of logged faces per window; see the module."""
    from face_sentiment.monitoring.performance import join_labels, window_performance
    data = logs if isinstance(logs, LogData) else load_logs(logs)
    messages = data.messages()
    reference = reference if isinstance(reference, Reference) else load_reference(
        reference, dataset, model, reference_limit)
    messages += reference.problems
    if reference.model_id and data.models and reference.model_id not in data.models:
        messages.append(f"the logs were written by model(s) {', '.join(data.models)}, the "
                        f"reference's predictions by {reference.model_id}: prediction drift "
                        "then includes the change of model")
    faces = data.faces
    if labels is not None:
        faces = faces.drop(columns="true_label")
        faces, notes = join_labels(faces, labels)
        messages += notes
    window = drift.parse_window(window)
    timeline, details = drift.window_timeline(faces, data.frames, reference.faces, window,
                                              settings, data.classes)
    for _, row in timeline.iterrows():
        if row["status"] != "tested":
            messages.append(f"{drift.describe_window(row)}: {row['status']}, not tested")
    last = timeline.iloc[-1].to_dict()
    current = {"info": last, "status": last["status"], "result": details[-1]["result"]}
    snapshot = None
    if current["result"] is None:
        verdict = "no verdict"
    else:
        verdict = "drift" if current["result"]["dataset_drift"] else "no drift"
    performance = None
    if labels is not None or faces["true_label"].notna().any():
        face_window, _, _ = drift.assign_windows(faces, data.frames, window)
        performance = window_performance(faces, face_window, data.classes, resamples)
    summary = _summary_line(verdict, current, reference, timeline, window)
    payload = {
        "verdict": verdict, "summary": summary, "logs": data.files,
        "window": str(window), "settings": settings.to_dict(),
        "reference": describe(reference), "models": data.models, "devices": data.devices,
        "current_window": {**last, "result": current["result"]},
        "timeline": timeline.to_dict(orient="records"),
        "windows": details, "problems": messages,
        "performance": None if performance is None else performance.to_dict(orient="records"),
        "exit_code": {"drift": EXIT_DRIFT, "no drift": EXIT_OK}.get(verdict, EXIT_NO_VERDICT),
    }
    result = MonitorResult(verdict, summary, timeline, current, messages,
                           performance=performance, payload=payload)
    if current["result"] is not None and html:
        face_window, _, _ = drift.assign_windows(faces, data.frames, window)
        columns = [r["column"] for r in current["result"]["columns"]]
        snapshot = drift.evidently_report(reference.faces, faces[face_window ==
                                                                 last["window"]],
                                          columns, settings)
        payload["evidently"] = snapshot.dict()
        result.snapshot = snapshot
    if out is not None:
        result.written = write_outputs(result, Path(out), window)
    return result


def write_outputs(result: MonitorResult, out: Path, window: drift.Window) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [write_atomic(out / "monitor.json",
                            json.dumps(_json_safe(result.payload), indent=2) + "\n")]
    table = result.timeline.copy()
    table["lines"] = table["lines"].map(json.dumps)
    written.append(write_atomic(out / "timeline.csv", table.to_csv(index=False)))
    if result.snapshot is not None:
        from face_sentiment.paths import atomic_target
        with atomic_target(out / "drift_report.html") as staging:
            result.snapshot.save_html(str(staging))
        written.append(out / "drift_report.html")
    figure = plot_timeline(result.timeline, window, result.performance,
                           result.payload["settings"]["drift_share"])
    from face_sentiment.paths import atomic_target
    with atomic_target(out / "timeline.png") as staging:
        figure.savefig(staging, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(figure)
    written.append(out / "timeline.png")
    return written


def plot_timeline(timeline: pd.DataFrame, window: drift.Window | str,
                  performance: pd.DataFrame | None = None, drift_share: float | None = None,
                  title: str | None = None):
    """Drift share per window (windows with dataset drift marked) above each expression's share
    of the top predictions; accuracy with its 95% interval below when labels were given."""
    import matplotlib.pyplot as plt
    window = drift.parse_window(window)
    panels = 3 if performance is not None and len(performance) else 2
    figure, axes = plt.subplots(panels, 1, figsize=(9, 2.4 * panels + 0.6), sharex=True)
    if window.kind == "seconds":
        x = pd.to_datetime(timeline["end"], unit="s")
        label = f"end of window ({window}, UTC)"
    else:
        x = timeline["window"]
        label = f"window ({window.size:g} {window.kind} each, oldest first)"
        axes[-1].xaxis.get_major_locator().set_params(integer=True)
    tested = timeline["status"] == "tested"
    axes[0].plot(x[tested], timeline.loc[tested, "drift_share"], "o-", color="tab:blue",
                 label="share of columns drifted")
    drifted = tested & timeline["dataset_drift"].astype(bool)
    axes[0].plot(x[drifted], timeline.loc[drifted, "drift_share"], "o", color="tab:red",
                 markersize=9, label="dataset drift")
    if drift_share is not None:
        axes[0].axhline(drift_share, color="tab:red", linestyle="--", linewidth=1,
                        label=f"threshold {drift_share:g}")
    untested = ~tested
    if untested.any():
        axes[0].plot(x[untested], np.zeros(int(untested.sum())), "x", color="grey",
                     label="not tested (too few faces)")
    axes[0].set_ylim(-0.05, 1.05)
    axes[0].set_ylabel("drift share")
    axes[0].legend(loc="upper left", fontsize=7, ncol=2)
    shares = [c for c in timeline.columns if c.startswith("share_")]
    if shares:
        axes[1].stackplot(x, *[timeline[c] for c in shares],
                          labels=[c.removeprefix("share_") for c in shares])
        axes[1].set_ylim(0, 1)
        axes[1].legend(loc="upper left", fontsize=7, ncol=len(shares))
    axes[1].set_ylabel("share of faces\n(top class)")
    if panels == 3:
        merged = timeline[["window"]].assign(x=x).merge(performance, on="window")
        axes[2].errorbar(merged["x"], merged["accuracy"],
                         yerr=[merged["accuracy"] - merged["accuracy_low"],
                               merged["accuracy_high"] - merged["accuracy"]], fmt="o-",
                         capsize=3, label="accuracy (95% CI)")
        axes[2].plot(merged["x"], merged["macro_f1"], "s--", label="macro-F1")
        axes[2].set_ylim(0, 1)
        axes[2].set_ylabel("with labels")
        axes[2].legend(loc="lower left", fontsize=7)
    axes[-1].set_xlabel(label)
    figure.suptitle(title or "Drift of live faces per window")
    figure.tight_layout()
    return figure
