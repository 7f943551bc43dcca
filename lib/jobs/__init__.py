"""Dependent jobs, as in the lab's CML Jobs: New Batch → Retrain Models → Redeploy Model.

The job graph lives in jobs.yaml (`settings.jobs_spec`). Running a job starts it as a subprocess
of the project's Python in the directory of jobs.yaml (the project root), with its own log file
under `settings.jobs_log_dir`; when it succeeds its dependents run in order, a failure stops the
chain. Every run is recorded in the `job_runs` table of the metrics database
(`settings.metrics_db_url`), one file lock per job keeps the same job from running twice at
once, and a timeout kills a hung job's whole process group.

  spec       jobs.yaml -> a validated JobSpec
  history    the job_runs table
  runner     run_job / run_chain: process groups, locks, timeouts, progress
  scheduler  a foreground cron scheduler
  airflow    the same spec as Airflow DAG descriptions (dags/bank_marketing_mlops.py)
  __main__   the CLI: `python -m lib.jobs list|run|history|logs|schedule`

The names below are the package's public surface. The runner's and scheduler's (tqdm, filelock)
load on first use, so that the DAG file imports only spec/history/airflow (PyYAML, croniter,
SQLAlchemy), which Airflow's own venv has: Airflow never needs the project's dependencies.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lib.jobs.history import JobHistory, JobRun, history
from lib.jobs.spec import Job, JobError, JobSpec, load_spec, parse_spec

if TYPE_CHECKING:
    from lib.jobs.runner import ChainResult, JobResult, LaunchedChain, job_lock_path, launch_chain, run_chain, run_job
    from lib.jobs.scheduler import next_runs, run_scheduler

_LAZY = {
    **dict.fromkeys(
        ("ChainResult", "JobResult", "LaunchedChain", "job_lock_path", "launch_chain", "run_chain", "run_job"),
        "lib.jobs.runner",
    ),
    **dict.fromkeys(("next_runs", "run_scheduler"), "lib.jobs.scheduler"),
}


def __getattr__(name: str) -> Any:
    """Load the runner/scheduler names on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'lib.jobs' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


__all__ = [
    "ChainResult",
    "Job",
    "JobError",
    "JobHistory",
    "JobResult",
    "JobRun",
    "JobSpec",
    "LaunchedChain",
    "history",
    "job_lock_path",
    "launch_chain",
    "load_spec",
    "next_runs",
    "parse_spec",
    "run_chain",
    "run_job",
    "run_scheduler",
]
