"""The job graph from jobs.yaml: parsing, validation (known keys and dependencies, no cycles), order."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lib.config import Settings

DEFAULT_TIMEOUT_S = 3600.0
_JOB_KEYS = {"name", "script", "module", "args", "depends_on", "schedule", "timeout", "ok_codes", "description"}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")


class JobError(RuntimeError):
    """A job spec is invalid or a job cannot be started; the message says what to fix."""


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
        """The name made safe for file names (logs, locks)."""
        return slugify(self.name)

    def argv(self, python: str) -> list[str]:
        """The command line, relative to the project root."""
        target = [self.script] if self.script else ["-m", str(self.module)]
        return [python, *target, *self.args]

    def display(self) -> str:
        """The command as a user would type it, for `lib.jobs list` and the runner's log."""
        target = self.script if self.script else f"-m {self.module}"
        return " ".join(["python", *shlex.split(target), *map(shlex.quote, self.args)])


@dataclass(frozen=True)
class JobSpec:
    """The job graph: jobs in file order, validated (known dependencies, no cycles)."""

    jobs: tuple[Job, ...]
    path: Path | None = None

    @property
    def names(self) -> list[str]:
        """Job names in file order, for listings and error messages."""
        return [j.name for j in self.jobs]

    def get(self, name: str) -> Job:
        """The job called `name`; the JobError lists the known names."""
        for job in self.jobs:
            if job.name == name:
                return job
        raise JobError(f"no job named {name!r} in {self.path or 'the spec'}; jobs: {', '.join(self.names)}")

    def dependents(self, name: str) -> list[Job]:
        """Jobs that depend directly on `name`."""
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
        """Jobs with no dependencies: where chains and the Airflow DAGs start."""
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
