"""The job spec as Airflow DAG descriptions (dags/bank_marketing_mlops.py turns them into BashOperators).

Plain data, no Airflow import: the same translation is tested without Airflow installed. Each task
runs its job through the project's own runner, `python -m lib.jobs --spec <jobs.yaml> run <job>
--no-deps --trigger airflow`, with the project's Python: the job gets the runner's lock, log file,
timeout and `ok_codes`, and every Airflow task run is a row in `python -m lib.jobs history`.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from lib.config import PROJECT_ROOT
from lib.jobs.spec import Job, JobError, JobSpec

DAG_PREFIX = "bank_marketing_mlops"
TRIGGER = "airflow"
# Airflow's own execution_timeout is this much longer than the job's, so that the runner's timeout
# (which kills the job's process group and records "timeout") fires first.
TIMEOUT_MARGIN_S = 60.0


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
    """One DAG for dags/ to render with Airflow's classes: a root job and everything downstream of it.

    `timezone` is the spec's (an IANA name) or None for the machine's local time: the DAG's cron
    schedule is read in it, as `python -m lib.jobs schedule` reads it.
    """

    dag_id: str
    schedule: str | None
    description: str
    tasks: tuple[AirflowTask, ...]
    timezone: str | None = None


def default_python(root: Path) -> str:
    """The project's venv interpreter when there is one (Airflow's venv lacks the project's packages)."""
    venv = root / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _bash_command(job: Job, spec_path: Path, code_root: Path, python: str) -> str:
    """The job run by the project's runner; its exit code is 0 exactly when the job's code is in `ok_codes`."""
    argv = [python, "-m", "lib.jobs", "--spec", str(spec_path), "run", job.name, "--no-deps", "--trigger", TRIGGER]
    return f"cd {shlex.quote(str(code_root))} && {shlex.join(argv)}"


def airflow_tasks(spec: JobSpec, python: str | None = None, code_root: Path = PROJECT_ROOT) -> list[AirflowTask]:
    """Every job as a BashOperator description: same job, same dependencies, same timeout (plus a margin)."""
    if spec.path is None:
        raise JobError("Airflow tasks run `python -m lib.jobs --spec <file>`: load the spec from a file (load_spec)")
    py = python or default_python(code_root)
    spec_path = spec.path.resolve()
    by_name = {j.name: j for j in spec.jobs}
    return [
        AirflowTask(
            task_id=job.slug,
            job=job.name,
            bash_command=_bash_command(job, spec_path, code_root, py),
            upstream=tuple(by_name[d].slug for d in job.depends_on),
            timeout_s=job.timeout + TIMEOUT_MARGIN_S,
        )
        for job in spec.topological()
    ]


def airflow_dags(spec: JobSpec, python: str | None = None, code_root: Path = PROJECT_ROOT) -> list[AirflowDag]:
    """One DAG per job without dependencies, and one per scheduled job inside a chain, each with its downstream.

    The first root in the spec (New Batch) is `bank_marketing_mlops`; other roots (e.g. a
    nightly monitoring check) get `bank_marketing_mlops_<job>` with their own cron schedule. A job
    with both `depends_on` and a `schedule` (Score Customers: after Redeploy Model in the chain, and
    nightly on its own) also gets `bank_marketing_mlops_<job>`: itself and what depends on it, on its
    cron, without its upstream jobs, exactly what `python -m lib.jobs schedule` runs at that time.
    """
    tasks = {t.job: t for t in airflow_tasks(spec, python, code_root)}
    roots = spec.roots()
    starts = [*roots, *(j for j in spec.topological() if j.depends_on and j.schedule)]
    dags = []
    for i, start in enumerate(starts):
        members = [tasks[j.name] for j in spec.chain(start.name)]
        ids = {t.task_id for t in members}
        members = [
            AirflowTask(t.task_id, t.job, t.bash_command, tuple(u for u in t.upstream if u in ids), t.timeout_s)
            for t in members
        ]
        dag_id = DAG_PREFIX if i == 0 and start in roots else f"{DAG_PREFIX}_{start.slug}"
        description = " -> ".join(t.job for t in members)
        dags.append(AirflowDag(dag_id, start.schedule, description, tuple(members), spec.timezone))
    return dags
