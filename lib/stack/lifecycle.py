"""Starting, stopping and inspecting a whole stack, and a participant's share of a running one.

`up` records every server it starts (pid, port, log) in `<stack dir>/state.json` as it goes, so
`down` stops exactly those processes and `status` asks exactly those ports.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib.fileio import atomic_write_json
from lib.stack.envfile import stack_env, write_env_file
from lib.stack.mlflow_server import mlflow_answers, mlflow_url, start_mlflow
from lib.stack.postgres import create_databases, pg_answers, pg_url, start_postgres, stop_postgres
from lib.stack.process import STOP_GRACE_S, StackError, StackPaths, pid_alive, read_state, signal_group
from lib.stack.spark import alive_workers, master_alive, start_spark

# In start order; `down` stops all but PostgreSQL at once, then PostgreSQL.
SERVICES = ("postgres", "mlflow", "spark_master", "spark_worker")


def up(root: Path, jdbc_driver_jar: Path, *, postgres_only: bool = False) -> dict[str, str]:
    """Start PostgreSQL, MLflow and Spark under `root`; returns the environment written to `<root>.env`.

    A failure part-way stops what was already started, so nothing is left running half-configured.
    `postgres_only` starts just the database (the metrics store and JDBC catalog need no more).
    """
    paths = StackPaths(root.resolve())
    state = read_state(paths)
    if state is not None and any(pid_alive(s["pid"]) for s in _services(state).values()):
        raise StackError(f"a stack is already running in {paths.root}: `python -m lib.stack status`, or `down` first")
    if not jdbc_driver_jar.is_file():
        raise StackError(f"PostgreSQL JDBC driver {jdbc_driver_jar} not found: run `make services-deps`")
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.root.chmod(0o755)
    paths.logs.mkdir(exist_ok=True)
    paths.warehouse.mkdir(exist_ok=True)
    state = {"root": str(paths.root), "started_at": time.time()}
    try:
        start_postgres(paths, state)
        atomic_write_json(paths.state_file, state, mode=0o600)
        if not postgres_only:
            start_mlflow(paths, state)
            atomic_write_json(paths.state_file, state, mode=0o600)
            start_spark(paths, state)
            atomic_write_json(paths.state_file, state, mode=0o600)
    except BaseException:
        atomic_write_json(paths.state_file, state, mode=0o600)
        down(paths.root)
        raise
    env = stack_env(paths, state, jdbc_driver_jar)
    state["env"] = env
    atomic_write_json(paths.state_file, state, mode=0o600)
    write_env_file(paths, env)
    return env


def _services(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The recorded services, last started first (the order `down` stops them in)."""
    return {name: state[name] for name in reversed(SERVICES) if name in state}


def down(root: Path) -> list[str]:
    """Stop exactly the processes `up` recorded (all but PostgreSQL at once, PostgreSQL last); returns their names."""
    paths = StackPaths(root.resolve())
    state = read_state(paths)
    if state is None:
        return []
    services = _services(state)
    groups = [svc["pid"] for name, svc in services.items() if name != "postgres"]
    for pid in groups:
        signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while any(pid_alive(pid) for pid in groups) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in groups:
        signal_group(pid, signal.SIGKILL)
    pg = services.get("postgres")
    if pg is not None:
        stop_postgres(paths, pg["pid"])
    paths.state_file.unlink(missing_ok=True)
    paths.env_file.unlink(missing_ok=True)
    return list(services)


@dataclass(frozen=True)
class ServiceStatus:
    """One line of `status`: a recorded service, whether it runs and answers, and where."""

    name: str
    pid: int
    running: bool
    answers: bool
    address: str
    log: str


def status(root: Path) -> list[ServiceStatus]:
    """Each recorded service: is its process alive, and does it answer on its port."""
    paths = StackPaths(root.resolve())
    state = read_state(paths)
    if state is None:
        return []
    rows = []
    for name, svc in reversed(list(_services(state).items())):
        running = pid_alive(svc["pid"])
        if name == "postgres":
            answers, address = running and pg_answers(state), f"127.0.0.1:{svc['port']} (socket in {paths.pg_dir})"
        elif name == "mlflow":
            address = mlflow_url(state)
            answers = running and mlflow_answers(state)
        elif name == "spark_master":
            address = f"spark://127.0.0.1:{svc['port']} (UI :{svc['webui_port']})"
            answers = running and master_alive(state)
        else:
            address = f"127.0.0.1:{svc['port']} (UI :{svc['webui_port']})"
            answers = running and alive_workers(state) >= 1
        rows.append(ServiceStatus(name, svc["pid"], running, answers, address, svc["log"]))
    return rows


def _running_state(root: Path) -> dict[str, Any]:
    paths = StackPaths(root.resolve())
    state = read_state(paths)
    if state is None or "postgres" not in state:
        raise StackError(f"no stack recorded in {paths.root}: run `make stack` first")
    return state


def create_database(root: Path, name: str) -> str:
    """A new, empty database on the stack's PostgreSQL (for tests); returns its SQLAlchemy URL."""
    state = _running_state(root)
    create_databases(state, (name,))
    return pg_url(state, name)


def owner_env(root: Path, owner: str) -> dict[str, str]:
    """One participant's settings on a running stack: their own metrics database, `metrics_<owner>`.

    Tables, experiments, model names and run dirs are already per `PROJECT_OWNER`; the prediction
    log is filtered by model name, but job history has no owner column, so each participant gets a
    database of their own (created here if missing) and sees only their own runs.
    """
    from lib.config import sanitize_user

    state = _running_state(root)
    user = sanitize_user(owner)
    db = f"metrics_{user}"
    create_databases(state, (db,))
    return {"PROJECT_OWNER": user, "METRICS_DB_URL": pg_url(state, db)}
