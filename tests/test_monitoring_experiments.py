"""Notebook 10's measurement helpers (`monitoring.experiments`) on hand-made scores and logs:
rates with Wilson intervals, the threshold summary, and the tables a report shows."""

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from face_sentiment.monitoring import drift, experiments
from face_sentiment.stats import wilson_interval


def _scores() -> pd.DataFrame:
    """Two sources; 'none' windows score low, 'darken' windows high on brightness only."""
    rows = []
    for source, windows in (("video", 4), ("demo", 2)):
        for shift, value in (("none", 0.2), ("darken", 3.0)):
            for window in range(windows):
                for column in ("brightness", "contrast", "top"):
                    score = value if column == "brightness" else 0.1
                    if source == "demo" and shift == "none" and window == 0 and \
                            column == "contrast":
                        score = 1.2  # one false alarm at the defaults
                    rows.append({"source": source, "condition": shift, "shift": shift,
                                 "level": 0.0 if shift == "none" else 0.5, "window": window,
                                 "faces": 40, "column": column, "score": score})
    return pd.DataFrame(rows)


def test_rates_carry_wilson_intervals():
    table = experiments.rates(_scores(), drift.DEFAULTS).set_index(["source", "shift"])
    demo = table.loc[("demo", "none")]
    assert (demo.windows, demo.flagged, demo.rate) == (2, 1, 0.5)
    assert (demo.rate_ci_low, demo.rate_ci_high) == pytest.approx(wilson_interval(1, 2))
    assert demo["columns"] == "contrast"
    assert table.loc[("video", "darken"), "rate"] == 1.0
    assert list(table.columns)[-1] == "columns"


def test_summary_rates_take_the_worst_conditions_with_their_intervals():
    grid = experiments.threshold_grid(_scores(), [1.0, 2.0], [0.45], [0.1])
    summary = experiments.summary_rates(grid).set_index("num_threshold")
    assert summary.loc[1.0, "false_alarm_max"] == 0.5
    assert (summary.loc[1.0, "false_alarm_max_ci_low"],
            summary.loc[1.0, "false_alarm_max_ci_high"]) == pytest.approx(wilson_interval(1, 2))
    assert summary.loc[2.0, "false_alarm_max"] == 0.0
    assert summary.loc[2.0, "detection_min"] == 1.0 and summary.loc[2.0, "detection_mean"] == 1.0
    assert summary.loc[2.0, "detection_min_ci_low"] < 1.0


def test_highest_same_scores_and_settings_table():
    highest = experiments.highest_same_scores(_scores(), drift.DEFAULTS)
    assert highest.loc["demo", "column"] == "contrast"
    assert highest.loc["demo", "highest_score"] == 1.2
    assert highest.loc["video", "threshold"] == drift.DEFAULTS.num_threshold
    settings = experiments.settings_table(drift.DEFAULTS.with_values(
        per_column={"sharpness": 2.0}))
    assert settings.loc["num threshold", "value"] == drift.DEFAULTS.num_threshold
    assert settings.loc["threshold of sharpness", "value"] == 2.0
    assert "per column" not in settings.index


def test_quality_comparison_ratio_and_logged_face():
    current = pd.DataFrame({"brightness": [50.0, 70.0], "sharpness": [10.0, 30.0],
                            "contrast": [20.0, 20.0]})
    reference = pd.DataFrame({"brightness": [100.0, 140.0], "sharpness": [180.0, 180.0],
                              "contrast": [np.nan, np.nan]})
    table = experiments.quality_comparison(current, reference)
    assert table.index.tolist() == ["brightness", "sharpness"]  # no reference contrast
    assert table.loc["brightness", "ratio"] == pytest.approx(0.5)
    assert table.loc["sharpness", "ratio"] == pytest.approx(20 / 180)
    data = SimpleNamespace(faces=pd.DataFrame({"brightness": [94.5], "top": ["happy"],
                                               "box": [[1, 2, 3, 4]]}))
    face = experiments.logged_face(data)
    assert face.index.tolist() == ["brightness", "top"] and face.loc["top", "value"] == "happy"


def test_outcome_table_from_monitor_results():
    timeline = pd.DataFrame({"status": ["tested", "tested", "too few faces"],
                             "dataset_drift": [True, False, False]})
    result = SimpleNamespace(
        verdict="drift", exit_code=1, timeline=timeline,
        current={"info": {"faces": 42}, "result": {"columns": [
            {"column": "brightness", "score": 2.5, "drifted": True},
            {"column": "contrast", "score": 0.2, "drifted": False}]}})
    quiet = SimpleNamespace(verdict="no verdict", exit_code=2, timeline=timeline.iloc[:0],
                            current={"info": {"faces": 3}, "result": None})
    table = experiments.outcome_table({"a": result, "b": quiet})
    assert table.loc["a", "drifted columns (score)"] == "brightness 2.50"
    assert table.loc["a", "windows drifted"] == "1 of 2"
    assert table.loc["b", "drifted columns (score)"] == "none"
    assert not math.isnan(table.loc["b", "exit"])
