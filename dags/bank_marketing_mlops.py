"""Airflow DAGs for the lab's job chain, built from jobs.yaml when Airflow parses this file.

`bank_marketing_mlops`: New Batch -> Retrain Models -> Redeploy Model -> Score Customers as
BashOperator tasks. Each runs its job with the project's own runner and Python,
`.venv/bin/python -m lib.jobs --spec jobs.yaml run <job> --no-deps --trigger airflow`, so the job
keeps its lock, log, timeout and ok_codes and shows in `python -m lib.jobs history`
(lib.jobs.airflow.airflow_dags does the translation). Every other job without dependencies in
jobs.yaml (e.g. a nightly monitoring check), and every job in a chain that has a `schedule` of its
own (Score Customers, nightly: `bank_marketing_mlops_score_customers`), becomes its own DAG
`bank_marketing_mlops_<job>` with the jobs downstream of it, on its cron schedule, read in
jobs.yaml's `timezone` (the machine's local time without one), as `python -m lib.jobs schedule` reads it.

Airflow runs in its own venv (`make airflow-venv`); this file imports only the light part of `lib`
(lib.config, lib.jobs.spec/history/airflow: PyYAML, croniter, SQLAlchemy, all Airflow's own
dependencies), found through the project root that it puts on sys.path.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pendulum  # Airflow's own dependency
from airflow import DAG

try:
    from airflow.providers.standard.operators.bash import BashOperator  # Airflow 3
except ImportError:
    from airflow.operators.bash import BashOperator  # Airflow 2

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from lib.config import load_settings  # noqa: E402 -- after the project root is on sys.path
from lib.jobs import load_spec  # noqa: E402
from lib.jobs.airflow import airflow_dags  # noqa: E402

_settings = load_settings()
_spec = load_spec(_settings.jobs_spec)

for _dag_spec in airflow_dags(_spec):
    _tz = pendulum.timezone(_dag_spec.timezone) if _dag_spec.timezone else pendulum.local_timezone()
    with DAG(
        dag_id=_dag_spec.dag_id,
        description=_dag_spec.description,
        schedule=_dag_spec.schedule,
        start_date=pendulum.datetime(2024, 1, 1, tz=_tz),
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
