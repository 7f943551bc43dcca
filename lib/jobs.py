"""Dependent jobs, as in the lab's CML Jobs: New Batch → Retrain Models → Redeploy Model.

The job graph lives in jobs.yaml (`settings.jobs_spec`). Running a job starts it as a subprocess
of the project's Python in the directory of jobs.yaml (the project root), with its own log file
under `settings.jobs_log_dir`; when it succeeds its dependents run in order, a failure stops the
chain. Every run is recorded in the `job_runs` table of the metrics database
(`settings.metrics_db_url`), one file lock per job keeps the same job from running twice at
once, and a timeout kills a hung job's whole process group. `airflow_dags` turns the same spec
into Airflow DAGs (dags/bank_marketing_mlops.py).

CLI:
  python -m lib.jobs list                      the jobs, their dependencies and schedules
  python -m lib.jobs run NAME [--no-deps]      run a job, then its dependents
  python -m lib.jobs history [--job NAME]      recent runs (status, exit code, log)
  python -m lib.jobs logs RUN_ID               print the log of one run
  python -m lib.jobs schedule                  foreground scheduler for jobs with a cron schedule
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, insert, select, update
from tqdm.contrib.logging import logging_redirect_tqdm

from lib.config import Settings, cli_settings

log = logging.getLogger(__name__)

TRIGGERS = ("manual", "dependency", "schedule", "alert")
STATUSES = ("running", "succeeded", "failed", "timeout")
DEFAULT_TIMEOUT_S = 3600.0
KILL_GRACE_S = 10.0
POLL_S = 0.5
STATUS_EVERY_S = 30.0
DAG_PREFIX = "bank_marketing_mlops"
_JOB_KEYS = {
    "name",
    "script",
    "module",
    "args",
    "depends_on",
    "schedule",
    "timeout",
    "ok_codes",
    "description",
}
_VERB = {"running": "is running", "succeeded": "succeeded", "failed": "failed", "timeout": "timed out"}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")


class JobError(RuntimeError):
    """A job spec is invalid or a job cannot be started; the message says what to fix."""


# --- the spec ------------------------------------------------------------------------------------


def slugify(name: str) -> str:
    """`Retrain Models` → `retrain_models`: file names, lock names and Airflow task ids."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug:
        raise JobError(f"job name {name!r} needs at least one letter or digit")
    return slug


@dataclass(frozen=True)
class Job:
    """One job: a project script or a `python -m` module with arguments."""

    name: str
    script: str | None = None
    module: str | None = None
    args: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    schedule: str | None = None
    timeout: float = DEFAULT_TIMEOUT_S
    ok_codes: tuple[int, ...] = (0,)
    description: str = ""

    @property
    def slug(self) -> str:
        return slugify(self.name)

    def argv(self, python: str) -> list[str]:
        """The command line, relative to the project root."""
        target = [self.script] if self.script else ["-m", str(self.module)]
        return [python, *target, *self.args]

    def display(self) -> str:
        target = self.script if self.script else f"-m {self.module}"
        return " ".join(["python", *shlex.split(target), *map(shlex.quote, self.args)])


@dataclass(frozen=True)
class JobSpec:
    """The job graph: jobs in file order, validated (known dependencies, no cycles)."""

    jobs: tuple[Job, ...]
    path: Path | None = None

    @property
    def names(self) -> list[str]:
        return [j.name for j in self.jobs]

    def get(self, name: str) -> Job:
        for job in self.jobs:
            if job.name == name:
                return job
        raise JobError(f"no job named {name!r} in {self.path or 'the spec'}; jobs: {', '.join(self.names)}")

    def dependents(self, name: str) -> list[Job]:
        return [j for j in self.jobs if name in j.depends_on]

    def chain(self, name: str) -> list[Job]:
        """`name` and everything downstream of it, each after all of its upstream jobs."""
        wanted = {self.get(name).name}
        frontier = [name]
        while frontier:
            for dep in self.dependents(frontier.pop()):
                if dep.name not in wanted:
                    wanted.add(dep.name)
                    frontier.append(dep.name)
        return [j for j in self.topological() if j.name in wanted]

    def topological(self) -> list[Job]:
        """All jobs, parents before children, otherwise in file order."""
        done: list[Job] = []
        placed: set[str] = set()
        remaining = list(self.jobs)
        while remaining:
            ready = [j for j in remaining if set(j.depends_on) <= placed]
            if not ready:
                cycle = ", ".join(j.name for j in remaining)
                raise JobError(f"dependency cycle among jobs: {cycle}")
            job = ready[0]
            done.append(job)
            placed.add(job.name)
            remaining.remove(job)
        return done

    def workdir(self, settings: Settings) -> Path:
        """Where jobs run and scripts are found: the spec's directory (the project root by default)."""
        return self.path.parent.resolve() if self.path is not None else settings.root

    def roots(self) -> list[Job]:
        return [j for j in self.jobs if not j.depends_on]


def parse_duration(value: Any, where: str) -> float:
    """Seconds from `900`, `"900s"`, `"15m"` or `"2h"`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION_RE.match(str(value))
        if not match:
            raise JobError(f"{where}: timeout {value!r} is not seconds or a duration like '15m', '2h'")
        seconds = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]
    if seconds <= 0:
        raise JobError(f"{where}: timeout must be positive, got {value!r}")
    return seconds


def _str_list(value: Any, where: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return tuple(str(v) for v in value)
    raise JobError(f"{where}: {key} must be a string or a list of strings, got {value!r}")


def _parse_job(raw: Any, index: int, source: str) -> Job:
    where = f"{source}: job #{index + 1}"
    if not isinstance(raw, Mapping):
        raise JobError(f"{where} must be a mapping with at least name and script (or module)")
    unknown = set(raw) - _JOB_KEYS
    if unknown:
        raise JobError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; known: {sorted(_JOB_KEYS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise JobError(f"{where}: 'name' is required")
    where = f"{source}: job {name!r}"
    script, module = raw.get("script"), raw.get("module")
    if (script is None) == (module is None):
        raise JobError(f"{where}: give exactly one of 'script' (a file in the project root) or 'module'")
    schedule = raw.get("schedule")
    if schedule is not None:
        from croniter import croniter

        if not isinstance(schedule, str) or not croniter.is_valid(schedule):
            raise JobError(f"{where}: schedule {schedule!r} is not a cron expression like '0 2 * * *'")
    ok_codes = raw.get("ok_codes", [0])
    if not isinstance(ok_codes, list) or not ok_codes or not all(type(c) is int for c in ok_codes):
        raise JobError(f"{where}: ok_codes must be a list of exit codes like [0, 2], got {ok_codes!r}")
    return Job(
        name=name.strip(),
        script=str(script) if script is not None else None,
        module=str(module) if module is not None else None,
        args=_str_list(raw.get("args"), where, "args"),
        depends_on=_str_list(raw.get("depends_on"), where, "depends_on"),
        schedule=schedule,
        timeout=parse_duration(raw.get("timeout", DEFAULT_TIMEOUT_S), where),
        ok_codes=tuple(ok_codes),
        description=str(raw.get("description") or ""),
    )


def parse_spec(data: Any, source: str = "jobs spec", path: Path | None = None) -> JobSpec:
    """Validate the loaded YAML: unique names, known dependencies, no cycles."""
    if not isinstance(data, Mapping) or not isinstance(data.get("jobs"), list) or not data["jobs"]:
        raise JobError(f"{source}: expected a top-level 'jobs:' list with at least one job")
    jobs = tuple(_parse_job(raw, i, source) for i, raw in enumerate(data["jobs"]))
    seen: set[str] = set()
    slugs: dict[str, str] = {}
    for job in jobs:
        if job.name in seen:
            raise JobError(f"{source}: job {job.name!r} is defined twice")
        if job.slug in slugs:
            raise JobError(f"{source}: jobs {slugs[job.slug]!r} and {job.name!r} map to the same id {job.slug!r}")
        seen.add(job.name)
        slugs[job.slug] = job.name
    for job in jobs:
        missing = [d for d in job.depends_on if d not in seen]
        if missing:
            raise JobError(f"{source}: job {job.name!r} depends on unknown job(s) {', '.join(map(repr, missing))}")
    spec = JobSpec(jobs=jobs, path=path)
    spec.topological()
    return spec


def load_spec(path: Path) -> JobSpec:
    """Read and validate a jobs.yaml."""
    if not path.is_file():
        raise JobError(f"jobs spec {path} not found (JOBS_SPEC points at it)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise JobError(f"{path} is not valid YAML: {exc}") from exc
    return parse_spec(data, str(path), path)


# --- history -------------------------------------------------------------------------------------

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
        return None if self.ended_at is None else (self.ended_at - self.started_at).total_seconds()


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class JobHistory:
    """The `job_runs` table in the metrics database (same store as the prediction log)."""

    def __init__(self, url: str) -> None:
        from lib.metrics_store import get_engine

        self.engine = get_engine(url)
        _metadata.create_all(self.engine, checkfirst=True)

    def start(self, job: Job, trigger: str, chain_id: str, log_path: Path, command: str) -> int:
        row = {
            "chain_id": chain_id, "job": job.name, "trigger": trigger, "started_at": _utcnow(),
            "status": "running", "log_path": str(log_path), "command": command,
        }  # fmt: skip
        with self.engine.begin() as conn:
            return int(conn.execute(insert(job_runs).values(**row)).inserted_primary_key[0])

    def finish(self, run_id: int, status: str, exit_code: int | None) -> None:
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
        with self.engine.connect() as conn:
            row = conn.execute(select(job_runs).where(job_runs.c.run_id == run_id)).mappings().first()
        if row is None:
            raise JobError(f"no job run {run_id}; list them with `python -m lib.jobs history`")
        return JobRun(**{**row, "log_path": Path(row["log_path"])})


def history(settings: Settings, limit: int | None = 50, job: str | None = None) -> list[JobRun]:
    """Recent job runs, newest first."""
    return JobHistory(settings.metrics_db_url).runs(limit=limit, job=job)


# --- running -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobResult:
    job: str
    run_id: int
    trigger: str
    status: str
    exit_code: int | None
    log_path: Path
    seconds: float

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


@dataclass(frozen=True)
class ChainResult:
    """What a chain did: the jobs that ran (in order) and those a failure kept from running."""

    root: str
    trigger: str
    chain_id: str
    results: tuple[JobResult, ...]
    skipped: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results) and not self.skipped

    @property
    def failed(self) -> JobResult | None:
        return next((r for r in self.results if not r.ok), None)

    def __str__(self) -> str:
        parts = [f"{r.job}: {r.status} ({r.seconds:.0f}s)" for r in self.results]
        text = " -> ".join(parts)
        bad = self.failed
        if bad is not None:
            text += f"; {bad.job!r} {_VERB[bad.status]} with exit code {bad.exit_code}, log {bad.log_path}"
        if self.skipped:
            text += f"; not run: {', '.join(self.skipped)}"
        return text


def job_lock_path(settings: Settings, job: Job) -> Path:
    return settings.jobs_log_dir / f"{job.slug}.lock"


def _check_runnable(workdir: Path, jobs: list[Job]) -> None:
    for job in jobs:
        if job.script and not (workdir / job.script).is_file():
            raise JobError(f"job {job.name!r}: script {job.script} not found in {workdir}")


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the job's process group (the script and e.g. its Spark JVM), SIGKILL after a grace."""
    for sig, grace in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return  # the whole group is already gone
        try:
            proc.wait(timeout=grace)
            if sig == signal.SIGTERM:
                os.killpg(proc.pid, signal.SIGKILL)  # leftovers that ignored SIGTERM
            return
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


def _wait(proc: subprocess.Popen, job: Job, tick: Callable[[float], None]) -> tuple[str, int | None]:
    start = time.monotonic()
    while True:
        try:
            code = proc.wait(timeout=POLL_S)
            return ("succeeded" if code in job.ok_codes else "failed"), code
        except subprocess.TimeoutExpired:
            elapsed = time.monotonic() - start
            tick(elapsed)
            if elapsed > job.timeout:
                _kill_group(proc)
                return "timeout", proc.returncode


class _Progress:
    """A tqdm bar over the chain (on a terminal) plus a periodic log line (log files, Airflow)."""

    def __init__(self, total: int, enabled: bool | None) -> None:
        from tqdm import tqdm

        self.total = total
        self.last_line = 0.0
        disable = None if enabled is None else not enabled  # None: only on a terminal
        fmt = "{desc} | {n_fmt}/{total_fmt} jobs done | chain {elapsed} | {postfix}"
        self.bar = tqdm(total=total, unit="job", disable=disable, leave=True, bar_format=fmt)

    def tick(self, job: Job, index: int, elapsed: float) -> None:
        self.bar.set_description_str(f"[{index}/{self.total}] {job.name}")
        self.bar.set_postfix_str(f"job {elapsed:.0f}s", refresh=True)
        if elapsed - self.last_line >= STATUS_EVERY_S:
            self.last_line = elapsed
            log.info("[%d/%d] %s still running (%.0fs)", index, self.total, job.name, elapsed)

    def done(self) -> None:
        self.last_line = 0.0
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def run_job(
    settings: Settings,
    job: Job,
    trigger: str,
    *,
    chain_id: str,
    store: JobHistory,
    workdir: Path,
    on_tick: Callable[[float], None] = lambda _elapsed: None,
) -> JobResult:
    """Run one job as a subprocess in its own process group, logged and recorded in the history."""
    from filelock import FileLock, Timeout

    settings.jobs_log_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(job_lock_path(settings, job))
    try:
        lock.acquire(timeout=0)
    except Timeout as exc:
        raise JobError(
            f"job {job.name!r} is already running (lock {lock.lock_file}); "
            "wait for it to finish (python -m lib.jobs history)"
        ) from exc
    try:
        argv = job.argv(sys.executable)
        started = datetime.now()
        log_path = settings.jobs_log_dir / f"{started:%Y%m%d-%H%M%S}-{job.slug}-{chain_id[:8]}.log"
        command = shlex.join(argv)
        run_id = store.start(job, trigger, chain_id, log_path, command)
        t0 = time.monotonic()
        with log_path.open("wb") as fh:
            fh.write(f"# job {job.name} run {run_id} ({trigger}) at {started:%Y-%m-%d %H:%M:%S}\n".encode())
            fh.write(f"# cwd {workdir}\n# $ {command}\n".encode())
            fh.flush()
            try:
                proc = subprocess.Popen(
                    argv, cwd=workdir, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            except OSError as exc:
                store.finish(run_id, "failed", None)
                raise JobError(f"job {job.name!r} could not start: {exc}") from exc
            try:
                status, code = _wait(proc, job, on_tick)
            except BaseException:
                _kill_group(proc)
                store.finish(run_id, "failed", proc.returncode)
                raise
            if status == "timeout":
                fh.write(f"\n# killed after the {job.timeout:.0f}s timeout\n".encode())
        store.finish(run_id, status, code)
        return JobResult(job.name, run_id, trigger, status, code, log_path, time.monotonic() - t0)
    finally:
        lock.release()


def run_chain(
    settings: Settings,
    name: str,
    trigger: str = "manual",
    spec: JobSpec | None = None,
    *,
    with_dependents: bool = True,
    progress: bool | None = None,
) -> ChainResult:
    """Run job `name` and then, while each succeeds, its dependents in order.

    `trigger` is how the first job was started (manual, schedule or alert); the dependents
    are recorded with trigger "dependency". Raises JobError when the spec is wrong, a script is
    missing or a job of the chain is already running.
    """
    if trigger not in TRIGGERS:
        raise JobError(f"trigger {trigger!r} is not one of {', '.join(TRIGGERS)}")
    spec = spec or load_spec(settings.jobs_spec)
    jobs = spec.chain(name) if with_dependents else [spec.get(name)]
    workdir = spec.workdir(settings)
    _check_runnable(workdir, jobs)
    store = JobHistory(settings.metrics_db_url)
    chain_id = uuid.uuid4().hex
    results: list[JobResult] = []
    bar = _Progress(len(jobs), progress)
    with logging_redirect_tqdm():  # log lines print above the bar instead of through it
        try:
            for index, job in enumerate(jobs, start=1):
                job_trigger = trigger if index == 1 else "dependency"
                log.info("[%d/%d] %s: starting (%s, %s)", index, len(jobs), job.name, job_trigger, job.display())
                result = run_job(
                    settings, job, job_trigger, chain_id=chain_id, store=store, workdir=workdir,
                    on_tick=lambda elapsed, job=job, index=index: bar.tick(job, index, elapsed),
                )  # fmt: skip
                bar.done()
                results.append(result)
                log.info("[%d/%d] %s: %s in %.1fs", index, len(jobs), job.name, result.status, result.seconds)
                if not result.ok:
                    skipped = tuple(j.name for j in jobs[index:])
                    return ChainResult(name, trigger, chain_id, tuple(results), skipped)
        finally:
            bar.close()
    return ChainResult(name, trigger, chain_id, tuple(results))


# --- scheduling ----------------------------------------------------------------------------------


def next_runs(spec: JobSpec, after: datetime) -> list[tuple[datetime, Job]]:
    """The next fire time of every scheduled job after `after` (local time, like cron), soonest first."""
    upcoming = [(_next_fire(j, after), j) for j in spec.jobs if j.schedule]
    return sorted(upcoming, key=lambda item: item[0])


def _next_fire(job: Job, after: datetime) -> datetime:
    from croniter import croniter

    return croniter(job.schedule, after).get_next(datetime)


def run_scheduler(
    settings: Settings,
    spec: JobSpec,
    *,
    max_runs: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = datetime.now,
) -> int:
    """Foreground scheduler: start each scheduled job's chain when its cron time comes.

    Like cron, a job whose slots passed while another chain ran runs once, late, not once per
    missed slot. A failing chain is recorded in the history and the scheduler keeps going.
    Runs until interrupted (or after `max_runs` chains); returns how many chains failed.
    """
    start = now()
    due = {job.name: when for when, job in next_runs(spec, start)}
    if not due:
        raise JobError(f"no job in {spec.path or 'the spec'} has a schedule: add e.g. schedule: '0 2 * * *'")
    for when, job in next_runs(spec, start):
        log.info("scheduled: %s next at %s", job.name, f"{when:%Y-%m-%d %H:%M}")
    failures = runs = 0
    while max_runs is None or runs < max_runs:
        name = min(due, key=due.__getitem__)
        wait = (due[name] - now()).total_seconds()
        if wait > 0:
            sleep(min(wait, 60.0))
            continue
        runs += 1
        try:
            result = run_chain(settings, name, trigger="schedule", spec=spec)
            if not result.ok:
                failures += 1
            log.info("scheduled %s: %s", name, result)
        except JobError as exc:
            failures += 1
            log.error("scheduled run of %s not started: %s", name, exc)
        due[name] = _next_fire(spec.get(name), max(now(), due[name]))
        log.info("scheduled: %s next at %s", name, f"{due[name]:%Y-%m-%d %H:%M}")
    return failures


# --- Airflow -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AirflowTask:
    task_id: str
    job: str
    bash_command: str
    upstream: tuple[str, ...]
    timeout_s: float


@dataclass(frozen=True)
class AirflowDag:
    dag_id: str
    schedule: str | None
    description: str
    tasks: tuple[AirflowTask, ...]


def default_python(root: Path) -> str:
    """The project's venv interpreter when there is one (Airflow workers run their own Python)."""
    venv = root / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _bash_command(job: Job, project_root: Path, python: str) -> str:
    """The job's command for Airflow's bash; exit codes in `ok_codes` become 0, since Airflow
    fails a task on any other (e.g. the monitoring check's 2 = "an alert fired, retrain started")."""
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


# --- CLI -----------------------------------------------------------------------------------------


def format_spec(spec: JobSpec) -> str:
    lines = [f"{'job':24} {'command':36} {'depends on':18} {'timeout':>8}  schedule"]
    for job in spec.topological():
        sched = "manual"
        if job.schedule:
            sched = f"{job.schedule} (next {_next_fire(job, datetime.now()):%m-%d %H:%M})"
        deps = ", ".join(job.depends_on) or "-"
        lines.append(f"{job.name:24} {job.display():36} {deps:18} {job.timeout:>7.0f}s  {sched}")
    return "\n".join(lines)


def format_history(runs: list[JobRun]) -> str:
    header = f"{'run':>5}  {'job':22} {'trigger':10} {'started (UTC)':19}  {'secs':>6}  {'status':9} {'exit':>4}"
    lines = [f"{header}  log"]
    for r in runs:
        secs = "" if r.seconds is None else f"{r.seconds:.0f}"
        code = "" if r.exit_code is None else str(r.exit_code)
        lines.append(
            f"{r.run_id:>5}  {r.job:22} {r.trigger:10} {r.started_at:%Y-%m-%d %H:%M:%S}  {secs:>6}  "
            f"{r.status:9} {code:>4}  {r.log_path}"
        )
    return "\n".join(lines)


def _tail(path: Path, lines: int) -> str:
    if not path.is_file():
        return f"(log {path} is missing)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def main(argv: list[str] | None = None) -> int:
    settings = cli_settings()
    parser = argparse.ArgumentParser(
        prog="python -m lib.jobs", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spec", type=Path, default=settings.jobs_spec, help="job spec (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="jobs, dependencies, schedules")
    run_p = sub.add_parser("run", help="run a job, then its dependents while each succeeds")
    run_p.add_argument("name", help="job name, e.g. 'New Batch' (quote names with spaces)")
    run_p.add_argument("--no-deps", action="store_true", help="run only this job, not its dependents")
    run_p.add_argument("--trigger", choices=[t for t in TRIGGERS if t != "dependency"], default="manual")
    hist_p = sub.add_parser("history", help="recent runs, newest first")
    hist_p.add_argument("--job", help="only this job")
    hist_p.add_argument("--limit", type=int, default=20)
    logs_p = sub.add_parser("logs", help="print the log of one run")
    logs_p.add_argument("run_id", type=int)
    logs_p.add_argument("--tail", type=int, default=None, help="only the last N lines")
    sched_p = sub.add_parser("schedule", help="foreground scheduler for jobs with a cron schedule")
    sched_p.add_argument("--max-runs", type=int, default=None, help="exit after N scheduled chains")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        if args.command == "history":
            print(format_history(history(settings, limit=args.limit, job=args.job)))
            return 0
        if args.command == "logs":
            run = JobHistory(settings.metrics_db_url).get(args.run_id)
            if not run.log_path.is_file():
                raise JobError(f"log {run.log_path} of run {run.run_id} no longer exists")
            text = run.log_path.read_text(errors="replace")
            print(text if args.tail is None else _tail(run.log_path, args.tail))
            return 0
        spec = load_spec(args.spec)
        if args.command == "list":
            print(f"spec: {spec.path}")
            print(format_spec(spec))
            return 0
        if args.command == "schedule":
            return 1 if run_scheduler(settings, spec, max_runs=args.max_runs) else 0
        result = run_chain(settings, args.name, args.trigger, spec, with_dependents=not args.no_deps)
    except JobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: the running job was stopped and recorded as failed", file=sys.stderr)
        return 130
    for r in result.results:
        print(f"{r.job:24} {r.status:9} {r.seconds:7.1f}s  run {r.run_id}  log {r.log_path}")
    failed = result.failed
    if failed is not None:
        print(f"\n--- last lines of {failed.log_path} ---\n{_tail(failed.log_path, 15)}\n---", file=sys.stderr)
        skipped = f"; not run: {', '.join(result.skipped)}" if result.skipped else ""
        print(
            f"error: job {failed.job!r} {_VERB[failed.status]} (exit code {failed.exit_code}); "
            f"log: {failed.log_path}{skipped}",
            file=sys.stderr,
        )
        return 1
    print("chain     : succeeded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
