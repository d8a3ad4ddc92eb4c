"""Where the DAGs find the project: its checkout, its venv's CLI and its Jupyter kernel.

The DAGs run in Airflow's own venv (.venv-airflow) and never import face_sentiment: every task
calls the project's CLI with the project's venv, and the notebooks run on the project's kernel
(`make airflow-setup` registers it in this venv's prefix as KERNEL). Settings come from the
environment (`make airflow-test` and `make airflow-standalone` set them):
FACE_SENTIMENT_PROJECT (default: the checkout holding this folder), FACE_SENTIMENT_PROFILE
(the reports DAG's profile, default ci; the continual-training DAG's default profile is the
champion's own), FACE_SENTIMENT_INCOMING (default: data/raw/incoming), FACE_SENTIMENT_REGISTRY
and FACE_SENTIMENT_DEPLOY_CONFIG (the CLI's defaults: deploy/registry, deploy/targets.yaml),
FACE_SENTIMENT_MONITOR_LOG (a runner log the drift check monitors; unset: no monitoring task
output, the last monitor.json is read if present).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

PROJECT = Path(os.environ.get("FACE_SENTIMENT_PROJECT", Path(__file__).resolve().parents[2]))
PROFILE = os.environ.get("FACE_SENTIMENT_PROFILE", "ci")
PYTHON = PROJECT / ".venv" / "bin" / "python"
KERNEL = "face-sentiment"
INCOMING = Path(os.environ.get("FACE_SENTIMENT_INCOMING", PROJECT / "data" / "raw" / "incoming"))
MONITOR_DIR = Path(os.environ.get("FACE_SENTIMENT_MONITOR_DIR",
                                  PROJECT / "reports" / "monitoring"))
MONITOR_LOG = os.environ.get("FACE_SENTIMENT_MONITOR_LOG", "")
BUILD = Path(os.environ.get("FACE_SENTIMENT_AIRFLOW_BUILD", PROJECT / "build" / "airflow"))


def cli(*arguments: str) -> str:
    """A bash command running `face-sentiment ARGUMENTS` in the project's venv and checkout."""
    return (f"cd {shlex.quote(str(PROJECT))} && {shlex.quote(str(PYTHON))} -m face_sentiment "
            + shlex.join(arguments))


def pipeline_options() -> list[str]:
    """The registry and deploy options the environment sets, for retrain/rollback/deploy."""
    options = []
    for variable, flag in (("FACE_SENTIMENT_REGISTRY", "--registry"),
                           ("FACE_SENTIMENT_DEPLOY_CONFIG", "--deploy-config")):
        if os.environ.get(variable):
            options += [flag, os.environ[variable]]
    return options
