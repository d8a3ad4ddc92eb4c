"""Monitoring: does the deployed model still see what it was trained on?

- `logs`: the Pi runner's JSON-lines logs read into one row per face; damaged lines (a
  truncated last line, non-JSON, missing fields) are reported by file and line and skipped.
- `reference`: what live faces are compared with: FER2013 Training's own features and the
  deployed model's predictions on them, or a reference log recorded where the demo runs.
- `drift`: per-column Evidently tests, windows, the dataset-drift verdict, measured defaults.
- `performance`: accuracy, macro-F1 and per-class recall per window when labels exist.
- `report`: `face-sentiment monitor` (HTML, JSON, timeline plot, exit status).
- `shifts`, `record`, `experiments`: shifted frames, the runner's records of frames in
  memory, and the false-alarm / detection measurements of notebook 10.
Imports data, evaluation and live; nothing imports monitoring but the CLI.
"""

from face_sentiment._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "load_logs": "logs", "LogData": "logs", "LogProblem": "logs", "LogError": "logs",
    "fer2013_reference": "reference", "log_reference": "reference",
    "load_reference": "reference", "Reference": "reference",
    "DriftSettings": "drift", "DEFAULTS": "drift", "parse_window": "drift",
    "window_drift": "drift", "window_timeline": "drift", "evidently_report": "drift",
    "join_labels": "performance", "window_performance": "performance",
    "monitor": "report", "MonitorResult": "report", "plot_timeline": "report",
    "shift_frame": "shifts", "write_video": "shifts",
})
