"""Running jobs, each in its own process group with a log file, a lock, a timeout and a history row.

A chain runs a job and then, while each succeeds, its dependents.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tqdm.contrib.logging import logging_redirect_tqdm

from lib.config import Settings
from lib.jobs.history import TRIGGERS, JobHistory
from lib.jobs.spec import Job, JobError, JobSpec, load_spec

log = logging.getLogger("lib.jobs")

KILL_GRACE_S = 10.0
POLL_S = 0.5
STATUS_EVERY_S = 30.0
VERB = {"running": "is running", "succeeded": "succeeded", "failed": "failed", "timeout": "timed out"}


@dataclass(frozen=True)
class JobResult:
    """One job run's outcome as recorded in the history, with its log file."""

    job: str
    run_id: int
    trigger: str
    status: str
    exit_code: int | None
    log_path: Path
    seconds: float

    @property
    def ok(self) -> bool:
        """Only `succeeded` counts (exit codes in `ok_codes`); a failure or timeout stops the chain."""
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
        """Every job that ran succeeded and none was skipped."""
        return all(r.ok for r in self.results) and not self.skipped

    @property
    def failed(self) -> JobResult | None:
        """The job that stopped the chain, if any."""
        return next((r for r in self.results if not r.ok), None)

    def __str__(self) -> str:
        parts = [f"{r.job}: {r.status} ({r.seconds:.0f}s)" for r in self.results]
        text = " -> ".join(parts)
        bad = self.failed
        if bad is not None:
            text += f"; {bad.job!r} {VERB[bad.status]} with exit code {bad.exit_code}, log {bad.log_path}"
        if self.skipped:
            text += f"; not run: {', '.join(self.skipped)}"
        return text


def job_lock_path(settings: Settings, job: Job) -> Path:
    """The per-job lock file: one run of a job at a time, whoever starts it (CLI, scheduler, Airflow)."""
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


@dataclass(frozen=True)
class LaunchedChain:
    """A chain started in the background: the runs it records have ids above `after_run_id`."""

    root: str
    jobs: tuple[str, ...]
    pid: int
    after_run_id: int
    log_path: Path
    process: subprocess.Popen


def launch_chain(settings: Settings, name: str, trigger: str = "manual") -> LaunchedChain:
    """Start `python -m lib.jobs run NAME` as a detached process and return at once.

    For a caller that must stay responsive (the web app): the chain runs through the same CLI and
    `run_chain` as from a terminal, in its own session so it outlives neither a page nor a request,
    with the caller's settings in its environment. Its own output (the chain summary, an `error:`
    line) goes to a launcher log next to the job logs; progress is the job history. Raises
    JobError, before starting anything, when the spec is wrong or a job of the chain is running.
    The caller reaps `process` (e.g. a thread waiting on it).
    """
    from filelock import FileLock, Timeout

    from lib.config import child_env

    if trigger not in TRIGGERS or trigger == "dependency":
        raise JobError(f"trigger {trigger!r} is not one of manual, schedule, alert, airflow")
    spec = load_spec(settings.jobs_spec)
    jobs = spec.chain(name)
    _check_runnable(spec.workdir(settings), jobs)
    settings.jobs_log_dir.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        lock = FileLock(job_lock_path(settings, job))
        try:
            lock.acquire(timeout=0)
        except Timeout as exc:
            raise JobError(f"job {job.name!r} is already running; wait for it to finish") from exc
        lock.release()
    runs = JobHistory(settings.metrics_db_url).runs(limit=1)
    after = runs[0].run_id if runs else 0
    log_path = settings.jobs_log_dir / f"{datetime.now():%Y%m%d-%H%M%S}-chain-{jobs[0].slug}.log"
    env = child_env(
        {
            "PROJECT_ROOT": str(settings.root),
            "PROJECT_OWNER": settings.user,
            "METRICS_DB_URL": settings.metrics_db_url,
            "JOBS_SPEC": str(settings.jobs_spec),
            "JOBS_LOG_DIR": str(settings.jobs_log_dir),
        }
    )
    argv = [sys.executable, "-m", "lib.jobs", "run", name, "--trigger", trigger]
    with log_path.open("wb") as fh:
        try:
            proc = subprocess.Popen(
                argv, cwd=spec.workdir(settings), env=env, stdin=subprocess.DEVNULL, stdout=fh,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            raise JobError(f"cannot start the {name!r} chain: {exc}") from exc
    log.info("started the %r chain in the background (pid %d, log %s)", name, proc.pid, log_path)
    return LaunchedChain(name, tuple(j.name for j in jobs), proc.pid, after, log_path, proc)
