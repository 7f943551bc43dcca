"""The job history: one row per job run in the `job_runs` table of the metrics database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, insert, select, update

from lib.config import Settings
from lib.jobs.spec import Job, JobError

TRIGGERS = ("manual", "dependency", "schedule", "alert", "airflow")
STATUSES = ("running", "succeeded", "failed", "timeout")

_metadata = MetaData()
job_runs = Table(
    "job_runs",
    _metadata,
    Column("run_id", Integer, primary_key=True, autoincrement=True),
    Column("chain_id", String(32), nullable=False),
    Column("job", String(200), nullable=False),
    Column("trigger", String(20), nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("ended_at", DateTime),
    Column("exit_code", Integer),
    Column("status", String(20), nullable=False),
    Column("log_path", Text, nullable=False),
    Column("command", Text, nullable=False),
)


@dataclass(frozen=True)
class JobRun:
    """One row of the job history (times are naive UTC)."""

    run_id: int
    chain_id: str
    job: str
    trigger: str
    started_at: datetime
    ended_at: datetime | None
    exit_code: int | None
    status: str
    log_path: Path
    command: str

    @property
    def seconds(self) -> float | None:
        """Run time, or None while the job is still running."""
        return None if self.ended_at is None else (self.ended_at - self.started_at).total_seconds()


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class JobHistory:
    """The `job_runs` table in the metrics database (same store as the prediction log)."""

    def __init__(self, url: str) -> None:
        from lib.database import create_tables, get_engine

        self.engine = get_engine(url)
        create_tables(self.engine, _metadata)

    def start(self, job: Job, trigger: str, chain_id: str, log_path: Path, command: str) -> int:
        """Record a job as running and return its run id (the id `lib.jobs logs` takes)."""
        row = {
            "chain_id": chain_id, "job": job.name, "trigger": trigger, "started_at": _utcnow(),
            "status": "running", "log_path": str(log_path), "command": command,
        }  # fmt: skip
        with self.engine.begin() as conn:
            return int(conn.execute(insert(job_runs).values(**row)).inserted_primary_key[0])

    def finish(self, run_id: int, status: str, exit_code: int | None) -> None:
        """Close a run with its final status and exit code; an unknown status is a bug, so it raises."""
        if status not in STATUSES:
            raise JobError(f"unknown job status {status!r}")
        values = {"status": status, "exit_code": exit_code, "ended_at": _utcnow()}
        with self.engine.begin() as conn:
            conn.execute(update(job_runs).where(job_runs.c.run_id == run_id).values(**values))

    def runs(self, limit: int | None = 50, job: str | None = None, chain_id: str | None = None) -> list[JobRun]:
        """Newest first."""
        query = select(job_runs).order_by(job_runs.c.run_id.desc())
        if job is not None:
            query = query.where(job_runs.c.job == job)
        if chain_id is not None:
            query = query.where(job_runs.c.chain_id == chain_id)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [JobRun(**{**r, "log_path": Path(r["log_path"])}) for r in rows]

    def get(self, run_id: int) -> JobRun:
        """One run by id; the JobError says how to list the valid ids."""
        with self.engine.connect() as conn:
            row = conn.execute(select(job_runs).where(job_runs.c.run_id == run_id)).mappings().first()
        if row is None:
            raise JobError(f"no job run {run_id}; list them with `python -m lib.jobs history`")
        return JobRun(**{**row, "log_path": Path(row["log_path"])})


def history(settings: Settings, limit: int | None = 50, job: str | None = None) -> list[JobRun]:
    """Recent job runs, newest first."""
    return JobHistory(settings.metrics_db_url).runs(limit=limit, job=job)
