"""`face-sentiment monitor`: the drift report of live faces, written as HTML + JSON + a plot.

`monitor(logs, reference, window, out)` reads the logs (`logs.load_logs`) and checks them
(`validation`: a non-number in a numeric field, a log without the monitoring fields are
errors), takes the reference (by default the room's own, saved in `out`, else FER2013 as a
labelled fallback with its own thresholds: `reference.deployment_reference`), lays windows
back from the end of the logs (`drift.assign_windows`), tests every window against the
reference (`drift.window_timeline`), runs Evidently's report on the current (last) window, and
writes to `out`: `drift_report.html` (Evidently's, the current window), `timeline.csv` and
`timeline.png` (drift share and each expression's share per window, accuracy with its interval
when labels are given) and, last, `monitor.json` (settings, reference, verdict, every window's
tests, log problems, performance). Each file is written beside its target and renamed into
place. The verdict is the current window's: exit status 0 without drift, 1 with drift, 2 when
there is no verdict (a bad or unusable log, too few faces in the current window). A run
without a verdict replaces `drift_report.html` with a page that says so (`no_verdict_page`),
so an earlier run's "Dataset Drift is detected" is never left beside it; `record_no_verdict`
does the same for a run stopped by an error before it had results.
"""

from __future__ import annotations

import html
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from face_sentiment.monitoring import drift
from face_sentiment.monitoring.logs import LogData, load_logs
from face_sentiment.monitoring.plots import close_figure, plot_timeline
from face_sentiment.monitoring.reference import (
    Reference,
    deployment_reference,
    describe,
    load_reference,
)
from face_sentiment.monitoring.validation import validated
from face_sentiment.paths import atomic_target, write_atomic

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
            reference: str | list[str] | Reference | None = None, window: str = "10min",
            out: str | Path | None = None, settings: drift.DriftSettings | None = None,
            labels: str | Path | None = None, model: str = "shipped-int8",
            reference_limit: int | None = None, html: bool = True, dataset=None,
            resamples: int = 1000, overrides: dict | None = None,
            record_reference: bool = True) -> MonitorResult:
    """Drift (and, with labels, performance) of logged faces per window; see the module.

    `reference` None: the room's own, saved in `out` (recorded from the logs' first faces
    when `record_reference` and they allow it), else FER2013 as a labelled fallback.
    `settings` None: the reference's own (the fallback's) or the defaults; `overrides` (e.g.
    the command line's --threshold) replace single values of either."""
    from face_sentiment.monitoring.performance import join_labels, window_performance
    data = validated(logs if isinstance(logs, LogData) else load_logs(logs))
    messages = data.messages()
    window = drift.parse_window(window)
    if isinstance(reference, Reference):
        pass
    elif reference is None:
        reference, notes = deployment_reference(data, window, out, record_reference,
                                                dataset=dataset, model=model)
        messages += notes
    else:
        reference = load_reference(reference, dataset, model, reference_limit)
    settings = (settings or reference.settings or drift.DEFAULTS).with_values(
        **(overrides or {}))
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


REPORT_HTML, MONITOR_JSON = "drift_report.html", "monitor.json"
TIMELINE_FILES = ("timeline.csv", "timeline.png")


def _status_page(title: str, lead: str, reason: str, logs: list | tuple = ()) -> str:
    items = "".join(f"<li><code>{html.escape(str(p))}</code></li>" for p in logs)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Drift report: {html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:50em;margin:2em auto}}
.banner{{background:#eee;border-left:.5em solid #888;padding:1em}}</style></head>
<body><div class="banner"><h1>{html.escape(title)}</h1><p>{html.escape(lead)}</p></div>
<p><b>{html.escape(reason)}</b></p>
{f"<p>Logs:</p><ul>{items}</ul>" if items else ""}
</body></html>
"""


def no_verdict_page(reason: str, logs: list | tuple = ()) -> str:
    """The drift_report.html of a run without a verdict: says so, and why, so an earlier
    run's Evidently report is not left to be read as this run's."""
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return _status_page("NO VERDICT", f"The monitor run of {when} gave no drift verdict, so "
                        "it has no Evidently report; this page replaces any earlier run's.",
                        reason, logs)


def record_no_verdict(out: str | Path, reason: str, logs: list | tuple = ()) -> list[Path]:
    """A run stopped before it had results (a bad log, a bad argument): drift_report.html
    and monitor.json say 'no verdict' and why, and the earlier run's timeline goes, so nothing
    in `out` reads as this run's verdict. Returns the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in TIMELINE_FILES:
        (out / name).unlink(missing_ok=True)
    logs = [str(p) for p in logs]
    page = write_atomic(out / REPORT_HTML, no_verdict_page(reason, logs))
    payload = {"verdict": "no verdict", "summary": f"NO VERDICT: {reason}", "error": reason,
               "logs": logs, "exit_code": EXIT_NO_VERDICT,
               "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return [page, write_atomic(out / MONITOR_JSON, json.dumps(payload, indent=2) + "\n")]


def write_outputs(result: MonitorResult, out: Path, window: drift.Window) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    table = result.timeline.copy()
    table["lines"] = table["lines"].map(json.dumps)
    written.append(write_atomic(out / "timeline.csv", table.to_csv(index=False)))
    if result.snapshot is not None:
        with atomic_target(out / REPORT_HTML) as staging:
            result.snapshot.save_html(str(staging))
    elif result.verdict == "no verdict":
        write_atomic(out / REPORT_HTML, no_verdict_page(result.summary,
                                                        result.payload.get("logs", ())))
    else:  # a verdict without Evidently's page (html=False): not an earlier run's page
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        write_atomic(out / REPORT_HTML, _status_page(
            "NO REPORT", f"The monitor run of {when} did not render Evidently's report "
            "(html=False); this page replaces any earlier run's.", result.summary,
            result.payload.get("logs", ())))
    written.append(out / REPORT_HTML)
    figure = plot_timeline(result.timeline, window, result.performance,
                           result.payload["settings"]["drift_share"])
    with atomic_target(out / "timeline.png") as staging:
        figure.savefig(staging, format="png", dpi=100, bbox_inches="tight")
    close_figure(figure)
    written.append(out / "timeline.png")
    # last: its presence and verdict are what a scheduler reads (pipeline.triggers)
    written.insert(0, write_atomic(out / MONITOR_JSON,
                                   json.dumps(_json_safe(result.payload), indent=2) + "\n"))
    return written
