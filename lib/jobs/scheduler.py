"""A foreground cron scheduler for the jobs with a `schedule:` (local time, like cron)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from lib.config import Settings
from lib.jobs.runner import run_chain
from lib.jobs.spec import Job, JobError, JobSpec

log = logging.getLogger("lib.jobs")


def next_runs(spec: JobSpec, after: datetime) -> list[tuple[datetime, Job]]:
    """The next fire time of every scheduled job after `after` (local time, like cron), soonest first."""
    upcoming = [(next_fire(j, after), j) for j in spec.jobs if j.schedule]
    return sorted(upcoming, key=lambda item: item[0])


def next_fire(job: Job, after: datetime) -> datetime:
    """When the job's cron `schedule` next fires after `after`."""
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
        due[name] = next_fire(spec.get(name), max(now(), due[name]))
        log.info("scheduled: %s next at %s", name, f"{due[name]:%Y-%m-%d %H:%M}")
    return failures
