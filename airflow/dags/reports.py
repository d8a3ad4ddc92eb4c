"""DAG `reports`: the numbered notebooks, one papermill task each, in order, on the project's
kernel, with a profile's parameters (FACE_SENTIMENT_PROFILE, default ci).

The first task injects the parameters exactly as `make reports` / nbval do (`face-sentiment
prepare-notebooks --profile P`, face_sentiment.reports.notebook_parameters); each notebook task
then executes its prepared copy with PapermillOperator on the kernel KERNEL (the project's
venv, registered by `make airflow-setup`) into build/airflow/reports/. A failing notebook fails
its task and stops the ones after it. FACE_SENTIMENT_NOTEBOOKS (comma-separated prefixes, e.g.
"01,02") limits the DAG to some notebooks.
"""

from __future__ import annotations

import os
from datetime import datetime

from _project import BUILD, KERNEL, PROFILE, PROJECT, cli
from airflow.providers.papermill.operators.papermill import PapermillOperator
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

PREPARED = BUILD / "prepared"
OUT = BUILD / "reports"
ONLY = [p for p in os.environ.get("FACE_SENTIMENT_NOTEBOOKS", "").split(",") if p]
NOTEBOOKS = [p for p in sorted((PROJECT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
             if not ONLY or any(p.name.startswith(prefix) for prefix in ONLY)]

with DAG(dag_id="reports", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
         tags=["face_sentiment"], doc_md=__doc__) as dag:
    previous = BashOperator(task_id="prepare_notebooks",
                            bash_command=cli("prepare-notebooks", "--profile", PROFILE,
                                             "--out", str(PREPARED)) + f" && mkdir -p {OUT}")
    for notebook in NOTEBOOKS:
        task = PapermillOperator(
            task_id=notebook.stem.replace("-", "_"), input_nb=str(PREPARED / notebook.name),
            output_nb=str(OUT / notebook.name), parameters={}, kernel_name=KERNEL,
            language_name="python", log_output=False)
        previous >> task
        previous = task
