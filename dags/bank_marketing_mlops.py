"""Airflow DAGs for the lab's job chain, built from jobs.yaml when Airflow parses this file.

`bank_marketing_mlops`: New Batch -> Retrain Models -> Redeploy Model as BashOperator tasks that
run the same scripts, in the same directory, with the same dependencies and timeouts as
`python -m lib.jobs run "New Batch"` (lib.jobs.airflow.airflow_dags does the translation). Every other
job without dependencies in jobs.yaml (e.g. a nightly monitoring check) becomes its own DAG
`bank_marketing_mlops_<job>` on its cron schedule.

Setup: Airflow must import this project's `lib`, e.g.
  export PYTHONPATH=/path/to/project AIRFLOW__CORE__DAGS_FOLDER=/path/to/project/dags
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG

try:
    from airflow.providers.standard.operators.bash import BashOperator  # Airflow 3
except ImportError:
    from airflow.operators.bash import BashOperator  # Airflow 2

from lib.config import load_settings
from lib.jobs import load_spec
from lib.jobs.airflow import airflow_dags

_settings = load_settings()
_spec = load_spec(_settings.jobs_spec)

for _dag_spec in airflow_dags(_spec, _spec.workdir(_settings)):
    with DAG(
        dag_id=_dag_spec.dag_id,
        description=_dag_spec.description,
        schedule=_dag_spec.schedule,
        start_date=datetime(2024, 1, 1),
        catchup=False,
        max_active_runs=1,
        tags=["mlops", "bank-marketing"],
    ) as _dag:
        _ops = {
            task.task_id: BashOperator(
                task_id=task.task_id,
                bash_command=task.bash_command,
                execution_timeout=timedelta(seconds=task.timeout_s),
            )
            for task in _dag_spec.tasks
        }
        for task in _dag_spec.tasks:
            for upstream in task.upstream:
                _ops[upstream] >> _ops[task.task_id]
    globals()[_dag_spec.dag_id] = _dag
