"""The job spec as Airflow DAG descriptions (dags/bank_marketing_mlops.py turns them into BashOperators).

Plain data, no Airflow import: the same translation is tested without Airflow installed.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from lib.jobs.spec import Job, JobSpec

DAG_PREFIX = "bank_marketing_mlops"


@dataclass(frozen=True)
class AirflowTask:
    """One job as an Airflow task: its bash command, upstream task ids and timeout."""

    task_id: str
    job: str
    bash_command: str
    upstream: tuple[str, ...]
    timeout_s: float


@dataclass(frozen=True)
class AirflowDag:
    """One DAG for dags/ to render with Airflow's classes: a root job and everything downstream of it."""

    dag_id: str
    schedule: str | None
    description: str
    tasks: tuple[AirflowTask, ...]


def default_python(root: Path) -> str:
    """The project's venv interpreter when there is one (Airflow workers run their own Python)."""
    venv = root / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _bash_command(job: Job, project_root: Path, python: str) -> str:
    """Build the job's command for Airflow's bash operator.

    Exit codes in `ok_codes` become 0, since Airflow fails a task on any other (e.g. the monitoring
    check's 2 = "an alert fired, retrain started").
    """
    command = f"cd {shlex.quote(str(project_root))} && {shlex.join(job.argv(python))}"
    if job.ok_codes == (0,):
        return command
    codes = "|".join(str(c) for c in job.ok_codes)
    return f"{{ {command}; }}; rc=$?; case $rc in {codes}) exit 0;; esac; exit $rc"


def airflow_tasks(spec: JobSpec, project_root: Path, python: str | None = None) -> list[AirflowTask]:
    """Every job as a BashOperator description: same command, same dependencies, same timeout."""
    py = python or default_python(project_root)
    by_name = {j.name: j for j in spec.jobs}
    return [
        AirflowTask(
            task_id=job.slug,
            job=job.name,
            bash_command=_bash_command(job, project_root, py),
            upstream=tuple(by_name[d].slug for d in job.depends_on),
            timeout_s=job.timeout,
        )
        for job in spec.topological()
    ]


def airflow_dags(spec: JobSpec, project_root: Path, python: str | None = None) -> list[AirflowDag]:
    """One DAG per job without dependencies, holding it and everything downstream of it.

    The first root in the spec (New Batch) is `bank_marketing_mlops`; other roots (e.g. a
    nightly monitoring check) get `bank_marketing_mlops_<job>` with their own cron schedule.
    """
    tasks = {t.job: t for t in airflow_tasks(spec, project_root, python)}
    dags = []
    for i, root in enumerate(spec.roots()):
        members = [tasks[j.name] for j in spec.chain(root.name)]
        ids = {t.task_id for t in members}
        members = [
            AirflowTask(t.task_id, t.job, t.bash_command, tuple(u for u in t.upstream if u in ids), t.timeout_s)
            for t in members
        ]
        dag_id = DAG_PREFIX if i == 0 else f"{DAG_PREFIX}_{root.slug}"
        description = " -> ".join(t.job for t in members)
        dags.append(AirflowDag(dag_id, root.schedule, description, tuple(members)))
    return dags
