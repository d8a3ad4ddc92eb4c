"""DAG `continual_training`: new lab data or drift -> validated -> retrained -> A/B-promoted ->
deployed, each stage a task running the continual-training entry point
(`python -m face_sentiment.pipeline.continual --stage S`, the one `make continual` and the
weekly workflow run) in the project's venv.

Triggers: the schedule (daily); a sensor that waits for a *pending* batch (one whose run has
not reached an outcome for its current content: `face_sentiment.pipeline.triggers`, asked in
the project's venv, since this venv never imports face_sentiment; processed batches stay in
the folder and do not count); and the monitor's drift verdict: `drift_check` runs
`face-sentiment monitor` on FACE_SENTIMENT_MONITOR_LOG against the `drift_reference` param
when the log is set. `choose` then branches with `triggers.choose_branch`: a pending batch ->
the stages; else drift -> `labels_needed` (LABELS_NEEDED.json into the incoming folder); else
nothing.

Params: `profile`, whose `retrain:` section applies (default $FACE_SENTIMENT_PROFILE, else
empty: the current champion's own profile, read from its card by the entry point), and
`drift_reference` (default $FACE_SENTIMENT_DRIFT_REFERENCE, else empty: the room's own
reference the monitor recorded in its output folder, FER2013 only as its labelled fallback).

A batch that breaks the data contract fails `validate` (exit 1, the report in its log and in
runs/retrain/<batch>/validation.txt) and nothing after it runs: the champion stays. Finished
stages are skipped on a rerun, so clearing a failed task resumes the run.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from datetime import datetime, timedelta

from _project import (
    BUILD,
    INCOMING,
    MONITOR_DIR,
    MONITOR_LOG,
    PROJECT,
    PYTHON,
    cli,
    pipeline_options,
)
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Param, task

STAGES = ("ingest", "validate", "train", "evaluate", "decide", "ship", "deploy")
MONITOR_JSON = MONITOR_DIR / "monitor.json"
OUT = BUILD / "continual"
# Params reach bash commands through templates: names and paths only, so that no value can
# close the shell quoting around it.
PROFILE_PATTERN = r"^[A-Za-z0-9_.-]*$"
REFERENCE_PATTERN = r"^[A-Za-z0-9_./-]*$"
PARAMS = {
    "profile": Param(os.environ.get("FACE_SENTIMENT_PROFILE", ""), type="string",
                     pattern=PROFILE_PATTERN,
                     description="profile whose retrain: section applies; empty: the "
                                 "current champion's (from its card)"),
    "drift_reference": Param(os.environ.get("FACE_SENTIMENT_DRIFT_REFERENCE", ""),
                             type="string", pattern=REFERENCE_PATTERN,
                             description="the monitor's reference: empty (the room's own, "
                                         "else fer2013 as a fallback), fer2013, or a runner "
                                         "log"),
}


def project_module(module: str, *arguments: str) -> str:
    """Run `python -m MODULE ARGUMENTS` in the project's venv and checkout; its stdout."""
    done = subprocess.run([str(PYTHON), "-m", module, *arguments], cwd=PROJECT, check=True,
                          capture_output=True, text=True, timeout=600)
    return done.stdout


def continual(*arguments: str) -> str:
    """The bash command of one entry-point call, with the profile param and the registry and
    deploy options the environment sets."""
    command = [str(PYTHON), "-m", "face_sentiment.pipeline.continual", "--incoming",
               str(INCOMING), "--out", str(OUT), *arguments, *pipeline_options()]
    return (f"cd {shlex.quote(str(PROJECT))} && {shlex.join(command)} --profile "
            + "'{{ params.profile }}'")


with DAG(dag_id="continual_training", schedule="@daily", start_date=datetime(2025, 1, 1),
         catchup=False, max_active_runs=1, tags=["face_sentiment"], doc_md=__doc__,
         params=PARAMS) as dag:

    @task.sensor(poke_interval=30, timeout=timedelta(minutes=10).total_seconds(),
                 mode="reschedule", soft_fail=True)
    def incoming_batch() -> bool:
        """Done when a batch is pending (its labels.csv is there and its run has no outcome)."""
        return bool(project_module("face_sentiment.pipeline.triggers", "pending",
                                   "--incoming", str(INCOMING)).strip())

    # exit 1 is the monitor's "drift" verdict, not a failure
    drift_check = BashOperator(
        task_id="drift_check", trigger_rule="none_failed",
        bash_command=(cli("monitor", MONITOR_LOG, "--out", str(MONITOR_DIR))
                      + "{% if params.drift_reference %} --reference "
                        "'{{ params.drift_reference }}'{% endif %} || [ $? -eq 1 ]")
        if MONITOR_LOG else "echo 'no FACE_SENTIMENT_MONITOR_LOG: using the last "
                            "monitor.json, if any'")

    @task.branch(trigger_rule="none_failed")
    def choose() -> str:
        """triggers.choose_branch: ingest (a pending batch), labels_needed (drift, none
        pending) or nothing_to_do."""
        return project_module("face_sentiment.pipeline.triggers", "branch", "--incoming",
                              str(INCOMING), "--monitor", str(MONITOR_JSON)).strip()

    chosen = choose()
    incoming_batch() >> drift_check >> chosen
    labels_needed = BashOperator(task_id="labels_needed",
                                 bash_command=continual("--on-drift", str(MONITOR_JSON)))
    chosen >> [labels_needed, EmptyOperator(task_id="nothing_to_do")]
    previous = chosen
    for stage in STAGES:
        step = BashOperator(task_id=stage, bash_command=continual("--stage", stage))
        previous >> step
        previous = step
