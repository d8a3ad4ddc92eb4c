"""DAG `continual_training`: new lab data or drift -> validated -> retrained -> A/B-promoted ->
deployed, each stage a task calling `face-sentiment retrain --stage S` in the project's venv.

Triggers: the schedule (daily), a file sensor on the incoming folder (a batch is complete when
its labels.csv exists; Airflow 3 has no `fs_default` connection, so AIRFLOW_CONN_FS_DEFAULT
must be set, e.g. '{"conn_type": "fs", "extra": {"path": "/"}}'), and the monitor's drift
verdict: `drift_check` runs `face-sentiment monitor` on FACE_SENTIMENT_MONITOR_LOG when set.
`choose` then branches: a waiting batch -> the stages; drift without a batch -> `labels_needed`
(`retrain --on-drift` writes LABELS_NEEDED.json into the incoming folder); else nothing.
A batch that breaks the data contract fails `validate` (exit 1, the report in its log and in
runs/retrain/<batch>/validation.txt) and nothing after it runs: the champion stays. Finished
stages are skipped on a rerun, so clearing a failed task resumes the run.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from _project import INCOMING, MONITOR_DIR, MONITOR_LOG, PROFILE, cli, pipeline_options
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.sensors.filesystem import FileSensor
from airflow.sdk import DAG, task

STAGES = ("ingest", "validate", "train", "evaluate", "decide", "ship", "deploy")
MONITOR_JSON = MONITOR_DIR / "monitor.json"

with DAG(dag_id="continual_training", schedule="@daily", start_date=datetime(2025, 1, 1),
         catchup=False, max_active_runs=1, tags=["face_sentiment"], doc_md=__doc__) as dag:
    sensor = FileSensor(task_id="incoming_batch", filepath=str(INCOMING / "*" / "labels.csv"),
                        fs_conn_id="fs_default", poke_interval=30,
                        timeout=timedelta(minutes=10).total_seconds(), mode="reschedule",
                        soft_fail=True)
    # exit 1 is the monitor's "drift" verdict, not a failure
    drift_check = BashOperator(
        task_id="drift_check", trigger_rule="none_failed",
        bash_command=(cli("monitor", MONITOR_LOG, "--out", str(MONITOR_DIR))
                      + " || [ $? -eq 1 ]") if MONITOR_LOG else "echo 'no FACE_SENTIMENT_"
                      "MONITOR_LOG: using the last monitor.json, if any'")

    @task.branch(trigger_rule="none_failed")
    def choose() -> str:
        """Stages when a batch waits; labels_needed on drift without one; else nothing."""
        if any(INCOMING.glob("*/labels.csv")):
            return "ingest"
        if MONITOR_JSON.is_file() and json.loads(MONITOR_JSON.read_text()).get(
                "verdict") == "drift":
            return "labels_needed"
        return "nothing_to_do"

    chosen = choose()
    sensor >> drift_check >> chosen
    labels_needed = BashOperator(
        task_id="labels_needed",
        bash_command=cli("retrain", "--on-drift", str(MONITOR_JSON), "--incoming",
                         str(INCOMING), "--profile", PROFILE, *pipeline_options()))
    chosen >> [labels_needed, EmptyOperator(task_id="nothing_to_do")]
    previous = chosen
    for stage in STAGES:
        step = BashOperator(task_id=stage, bash_command=cli(
            "retrain", "--incoming", str(INCOMING), "--profile", PROFILE, "--stage", stage,
            *pipeline_options()))
        previous >> step
        previous = step
