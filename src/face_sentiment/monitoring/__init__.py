"""Monitoring: does the deployed model still see what it was trained on?

- `logs`: the Pi runner's JSON-lines logs read into one row per face; damaged lines (a
  truncated last line, non-JSON, missing fields) are reported by file and line and skipped.
- `validation`: checks of the logs read: a non-number in a numeric field, a log without the
  monitoring fields are errors naming the file (and line, field).
- `reference`: what live faces are compared with: by default the room's own reference (the
  first faces after a deploy, or a named log, saved beside the monitor's outputs), else
  FER2013 Training (its features and the deployed model's predictions on them) as a labelled
  fallback with its own thresholds; or reference logs named.
- `drift`: per-column Evidently tests, windows, the dataset-drift verdict, measured defaults.
- `performance`: accuracy, macro-F1 and per-class recall per window when labels exist.
- `report`: `face-sentiment monitor` (HTML, JSON, timeline plot, exit status).
- `shifts`, `record`, `experiments`: shifted frames, the runner's records of frames in
  memory, and the false-alarm / detection measurements of notebook 10.
- `plots`: the stage's figures: the drift timeline (the monitor's timeline.png) and notebook
  10's scores per condition and false alarms against detection.
Imports data, evaluation and live; nothing imports monitoring but the CLI.
"""

from face_sentiment._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "load_logs": "logs", "LogData": "logs", "LogProblem": "logs", "LogError": "logs",
    "validated": "validation", "LogValueError": "validation", "LogFieldsError": "validation",
    "fer2013_reference": "reference", "log_reference": "reference",
    "load_reference": "reference", "Reference": "reference",
    "deployment_reference": "reference", "record_room_reference": "reference",
    "DriftSettings": "drift", "DEFAULTS": "drift", "parse_window": "drift",
    "FER2013_FALLBACK": "settings",
    "window_drift": "drift", "window_timeline": "drift", "evidently_report": "drift",
    "join_labels": "performance", "window_performance": "performance",
    "monitor": "report", "MonitorResult": "report", "plot_timeline": "plots",
    "shift_frame": "shifts", "write_video": "shifts",
})
