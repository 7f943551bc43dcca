"""A local stack of the real shared services: PostgreSQL, an MLflow tracking server, a Spark cluster.

The workshop's production is one shared Spark cluster, Iceberg catalog, tracking server and
database for many participants. `up` starts the same servers on this machine, each on a free port,
with all state under one directory (default `<root>/run/stack`, `STACK_DIR`):

- PostgreSQL 15 (`initdb`/`pg_ctl`), socket and data inside the stack dir, databases `mlflow`,
  `iceberg` (the Iceberg JDBC catalog) and `metrics` (prediction log, ground truth, job history);
- `mlflow server` on that PostgreSQL, serving artifacts itself, so clients need only its URL;
- a Spark standalone master and one worker (pyspark's own `spark-class`): executors are separate JVMs.

It writes the environment for clients to `<stack dir>.env` (`run/stack.env`): source it
(`set -a; . run/stack.env; set +a`) and every script runs against the stack. `down` stops exactly
the processes `up` recorded; `status` shows whether each one still answers.

Participants of a workshop share the stack; each also sources `python -m lib.stack user NAME`,
which creates their own metrics database (job history has no owner column) and sets `PROJECT_OWNER`.

CLI: `python -m lib.stack up | down | status | user NAME [--dir DIR]`.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib.cliargs import EX_FAILURE, EX_OK, ArgumentParser, is_verbose
from lib.config import child_env, cli_settings
from lib.fileio import atomic_write_json, atomic_write_text, tail_lines
from lib.logs import setup_logging

log = logging.getLogger(__name__)

PG_INSTALL = "apt-get install postgresql-15"
PG_BIN_DIRS = (Path("/usr/lib/postgresql/15/bin"),)
PG_SUPERUSER = "lab"
PG_DATABASES = ("mlflow", "iceberg", "metrics")
# PostgreSQL refuses to run as root; this system user (created by `make services-deps`) runs it then.
PG_OS_USER = "postgres"
WORKER_CORES = 2
WORKER_MEMORY = "2g"
# Per application, so two participants' drivers share the one worker instead of queueing.
APP_CORES = 1
APP_EXECUTOR_MEMORY = "1g"
START_TIMEOUT_S = 180.0
STOP_GRACE_S = 15.0


class StackError(RuntimeError):
    """The stack cannot do what was asked; the message says what to install, run or read."""


@dataclass(frozen=True)
class StackPaths:
    """Where everything of one stack lives, derived from its directory so `up`, `down` and `status` agree."""

    root: Path

    @property
    def env_file(self) -> Path:
        """The settings to source before the lab's scripts, next to (not in) the stack directory."""
        return self.root.with_suffix(".env")

    @property
    def state_file(self) -> Path:
        """What `up` started (pids, ports, logs), read by `status` and `down`."""
        return self.root / "state.json"

    @property
    def pg_dir(self) -> Path:
        """PostgreSQL's directory: its data, log and Unix socket."""
        return self.root / "postgres"

    @property
    def pg_data(self) -> Path:
        """The PostgreSQL cluster's data directory."""
        return self.pg_dir / "data"

    @property
    def pg_log(self) -> Path:
        """PostgreSQL's server log."""
        return self.pg_dir / "postgres.log"

    @property
    def warehouse(self) -> Path:
        """The Iceberg warehouse the stack's catalog points at."""
        return self.root / "warehouse"

    @property
    def artifacts(self) -> Path:
        """The MLflow server's artifact store."""
        return self.root / "mlartifacts"

    @property
    def logs(self) -> Path:
        """Logs of the MLflow server and the Spark daemons."""
        return self.root / "logs"


# --- helpers ----------------------------------------------------------------------------------


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pg_bin(name: str) -> Path:
    """A PostgreSQL server binary; missing binaries name the install command."""
    for directory in PG_BIN_DIRS:
        if (directory / name).is_file():
            return directory / name
    found = shutil.which(name)
    if found:
        return Path(found)
    raise StackError(f"PostgreSQL server binary `{name}` not found: {PG_INSTALL}")


def spark_class() -> Path:
    """The launcher script of the installed pyspark, so the cluster runs the same Spark as the driver."""
    import pyspark

    script = Path(pyspark.__file__).parent / "bin" / "spark-class"
    if not script.is_file():
        raise StackError(f"{script} not found: reinstall pyspark (make setup)")
    return script


def _as_pg_user() -> list[str]:
    """The command prefix that runs PostgreSQL tools as a non-root user when we are root."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(PG_OS_USER)
    except KeyError:
        raise StackError(
            f"running as root and there is no `{PG_OS_USER}` user to run PostgreSQL: "
            f"run `make services-deps` ({PG_INSTALL} creates it)"
        ) from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise StackError("running as root and `runuser` is missing: apt-get install util-linux")
    return [runuser, "-u", PG_OS_USER, "--"]


def _give_to_pg_user(*paths: Path) -> None:
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam(PG_OS_USER)
    for path in paths:
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _check_reachable_by_pg_user(path: Path) -> None:
    """PostgreSQL (as `postgres`) must be able to walk into the stack dir; /root or a 0700 temp dir won't do."""
    prefix = _as_pg_user()
    if prefix and subprocess.run([*prefix, "test", "-x", str(path)], capture_output=True).returncode != 0:
        raise StackError(
            f"user `{PG_OS_USER}` cannot enter {path}: put the stack in a directory others can traverse "
            "(--dir or STACK_DIR), e.g. under /tmp or /srv"
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _wait(what: str, ready: Callable[[], bool], alive: Callable[[], bool], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if ready():
            return
        if not alive():
            break
        time.sleep(0.5)
    tail = "\n".join(tail_lines(log_path, 30))
    state = "exited" if not alive() else f"did not answer within {START_TIMEOUT_S:.0f} s"
    raise StackError(f"{what} {state}; log {log_path}:\n{tail}")


def _spawn(cmd: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a server in its own session (one process group), so `down` stops it with everything it forked."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        return subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )


def _signal_group(pid: int, sig: int) -> None:
    """Signal a server's whole process group (it was started in a session of its own)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return


def _read_state(paths: StackPaths) -> dict[str, Any] | None:
    if not paths.state_file.is_file():
        return None
    return json.loads(paths.state_file.read_text())


def _pg_url(state: dict[str, Any], db: str, driver: str = "postgresql+psycopg") -> str:
    pg = state["postgres"]
    return f"{driver}://{PG_SUPERUSER}:{pg['password']}@127.0.0.1:{pg['port']}/{db}"


# --- services ---------------------------------------------------------------------------------


def _start_postgres(paths: StackPaths, state: dict[str, Any]) -> None:
    initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
    prefix = _as_pg_user()
    _check_reachable_by_pg_user(paths.root)
    port = free_port()
    password = secrets.token_urlsafe(18)
    paths.pg_dir.mkdir(parents=True, exist_ok=True)
    _give_to_pg_user(paths.pg_dir)
    if not (paths.pg_data / "PG_VERSION").is_file():
        pwfile = paths.pg_dir / ".pwfile"
        atomic_write_text(pwfile, password + "\n", mode=0o600)
        _give_to_pg_user(pwfile)
        try:
            done = subprocess.run(
                [
                    *prefix,
                    str(initdb),
                    "-D",
                    str(paths.pg_data),
                    "-U",
                    PG_SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],  # fmt: skip
                capture_output=True,
                text=True,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise StackError(f"initdb failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    else:
        password = state.get("postgres", {}).get("password") or _read_password(paths)
    # Small buffers: this is one laptop shared with Spark; enough connections for two users' pools.
    options = (
        f"-p {port} -k {paths.pg_dir} -c listen_addresses=127.0.0.1 -c max_connections=200 "
        "-c shared_buffers=64MB -c fsync=off -c synchronous_commit=off"
    )
    done = subprocess.run(
        [
            *prefix,
            str(pg_ctl),
            "-D",
            str(paths.pg_data),
            "-l",
            str(paths.pg_log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        ],  # fmt: skip
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        tail = "\n".join(tail_lines(paths.pg_log, 20))
        raise StackError(f"pg_ctl start failed: {done.stderr.strip() or done.stdout.strip()}\n{tail}")
    pid = int((paths.pg_data / "postmaster.pid").read_text().splitlines()[0])
    state["postgres"] = {"pid": pid, "port": port, "password": password, "log": str(paths.pg_log)}
    atomic_write_text(paths.pg_dir.parent / ".pg_password", password + "\n", mode=0o600)
    _create_databases(state)


def _read_password(paths: StackPaths) -> str:
    file = paths.pg_dir.parent / ".pg_password"
    if not file.is_file():
        raise StackError(f"{paths.pg_data} exists but its password file {file} is gone: remove {paths.root}")
    return file.read_text().strip()


def _create_databases(state: dict[str, Any], names: tuple[str, ...] = PG_DATABASES) -> None:
    import psycopg

    with psycopg.connect(_pg_url(state, "postgres", driver="postgresql"), autocommit=True) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for db in names:
            if db not in existing:
                conn.execute(f'CREATE DATABASE "{db}"')


def _pg_answers(state: dict[str, Any]) -> bool:
    import psycopg

    try:
        with psycopg.connect(_pg_url(state, "postgres", driver="postgresql"), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _start_mlflow(paths: StackPaths, state: dict[str, Any]) -> None:
    port = free_port()
    log_path = paths.logs / "mlflow.log"
    mlflow = Path(sys.executable).parent / "mlflow"
    cmd = [
        str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
        "--backend-store-uri", _pg_url(state, "mlflow", driver="postgresql+psycopg2"),
        "--serve-artifacts", "--artifacts-destination", str(paths.artifacts),
    ]  # fmt: skip
    proc = _spawn(cmd, log_path)
    state["mlflow"] = {"pid": proc.pid, "port": port, "log": str(log_path)}
    url = f"http://127.0.0.1:{port}"
    _wait("mlflow server", lambda: _http_ok(f"{url}/health"), lambda: proc.poll() is None, log_path)


def _spark_env() -> dict[str, str]:
    from lib.lake import ensure_java

    return child_env(
        {
            "JAVA_HOME": ensure_java(),
            "SPARK_HOME": str(spark_class().parent.parent),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "PYSPARK_PYTHON": sys.executable,
            "SPARK_NO_DAEMONIZE": "1",
        }
    )


def _master_json(state: dict[str, Any]) -> dict[str, Any] | None:
    url = f"http://127.0.0.1:{state['spark_master']['webui_port']}/json/"
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _alive_workers(state: dict[str, Any]) -> int:
    info = _master_json(state) or {}
    return sum(1 for w in info.get("workers", []) if w.get("state") == "ALIVE")


def _start_spark(paths: StackPaths, state: dict[str, Any]) -> None:
    launcher, env = spark_class(), _spark_env()
    port, webui = free_port(), free_port()
    log_path = paths.logs / "spark-master.log"
    master = _spawn(
        [
            str(launcher),
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(webui),
        ],  # fmt: skip
        log_path,
        env,
    )
    state["spark_master"] = {"pid": master.pid, "port": port, "webui_port": webui, "log": str(log_path)}
    _wait(
        "spark master",
        lambda: (_master_json(state) or {}).get("status") == "ALIVE",
        lambda: master.poll() is None,
        log_path,
    )
    w_port, w_webui = free_port(), free_port()
    w_log = paths.logs / "spark-worker.log"
    work_dir = paths.root / "spark-work"
    work_dir.mkdir(parents=True, exist_ok=True)
    worker = _spawn(
        [
            str(launcher),
            "org.apache.spark.deploy.worker.Worker",
            f"spark://127.0.0.1:{port}",
            "--host",
            "127.0.0.1",
            "--port",
            str(w_port),
            "--webui-port",
            str(w_webui),
            "--cores",
            str(WORKER_CORES),
            "--memory",
            WORKER_MEMORY,
            "--work-dir",
            str(work_dir),
        ],  # fmt: skip
        w_log,
        env,
    )
    state["spark_worker"] = {"pid": worker.pid, "port": w_port, "webui_port": w_webui, "log": str(w_log)}
    _wait("spark worker", lambda: _alive_workers(state) >= 1, lambda: worker.poll() is None, w_log)


def stack_env(paths: StackPaths, state: dict[str, Any], jdbc_driver_jar: Path) -> dict[str, str]:
    """The settings (lib/config names) that point every script at this stack (at the services it runs)."""
    pg = state["postgres"]
    env = {"STACK_DIR": str(paths.root)}
    if "spark_master" in state:
        env |= {
            "SPARK_MASTER": f"spark://127.0.0.1:{state['spark_master']['port']}",
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_CONF_SPARK_DRIVER_HOST": "127.0.0.1",
            "SPARK_CONF_SPARK_CORES_MAX": str(APP_CORES),
            "SPARK_CONF_SPARK_EXECUTOR_MEMORY": APP_EXECUTOR_MEMORY,
            "SPARK_CONF_SPARK_PYSPARK_PYTHON": sys.executable,
        }
    env |= {
        "ICEBERG_CATALOG_TYPE": "jdbc",
        "ICEBERG_CATALOG_URI": f"jdbc:postgresql://127.0.0.1:{pg['port']}/iceberg",
        "ICEBERG_CATALOG_USER": PG_SUPERUSER,
        "ICEBERG_CATALOG_PASSWORD": pg["password"],
        "ICEBERG_WAREHOUSE": str(paths.warehouse),
        "ICEBERG_JDBC_DRIVER_JAR": str(jdbc_driver_jar),
    }
    if "mlflow" in state:
        env["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{state['mlflow']['port']}"
    env["METRICS_DB_URL"] = _pg_url(state, "metrics")
    return env


def create_database(root: Path, name: str) -> str:
    """A new, empty database on the stack's PostgreSQL (for tests); returns its SQLAlchemy URL."""
    state = _read_state(StackPaths(root.resolve()))
    if state is None or "postgres" not in state:
        raise StackError(f"no stack recorded in {root}: run `make stack` first")
    _create_databases(state, (name,))
    return _pg_url(state, name)


def owner_env(root: Path, owner: str) -> dict[str, str]:
    """One participant's settings on a running stack: their own metrics database, `metrics_<owner>`.

    Tables, experiments, model names and run dirs are already per `PROJECT_OWNER`; the prediction
    log is filtered by model name, but job history has no owner column, so each participant gets a
    database of their own (created here if missing) and sees only their own runs.
    """
    from lib.config import sanitize_user

    paths = StackPaths(root.resolve())
    state = _read_state(paths)
    if state is None or "postgres" not in state:
        raise StackError(f"no stack recorded in {paths.root}: run `make stack` first")
    user = sanitize_user(owner)
    db = f"metrics_{user}"
    _create_databases(state, (db,))
    return {"PROJECT_OWNER": user, "METRICS_DB_URL": _pg_url(state, db)}


def _write_env_file(paths: StackPaths, env: dict[str, str]) -> None:
    lines = [
        "# Written by `python -m lib.stack up`; removed by `down`. Use: set -a; . run/stack.env; set +a",
        *(f"export {key}={_shell_quote(value)}" for key, value in env.items()),
    ]
    atomic_write_text(paths.env_file, "\n".join(lines) + "\n", mode=0o600)


def _shell_quote(value: str) -> str:
    import shlex

    return shlex.quote(value)


# --- commands ---------------------------------------------------------------------------------


def up(root: Path, jdbc_driver_jar: Path, *, postgres_only: bool = False) -> dict[str, str]:
    """Start PostgreSQL, MLflow and Spark under `root`; returns the environment written to `<root>.env`.

    A failure part-way stops what was already started, so nothing is left running half-configured.
    `postgres_only` starts just the database (the metrics store and JDBC catalog need no more).
    """
    paths = StackPaths(root.resolve())
    state = _read_state(paths)
    if state is not None and any(_pid_alive(s["pid"]) for s in _services(state).values()):
        raise StackError(f"a stack is already running in {paths.root}: `python -m lib.stack status`, or `down` first")
    if not jdbc_driver_jar.is_file():
        raise StackError(f"PostgreSQL JDBC driver {jdbc_driver_jar} not found: run `make services-deps`")
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.root.chmod(0o755)
    paths.logs.mkdir(exist_ok=True)
    paths.warehouse.mkdir(exist_ok=True)
    state = {"root": str(paths.root), "started_at": time.time()}
    try:
        _start_postgres(paths, state)
        atomic_write_json(paths.state_file, state, mode=0o600)
        if not postgres_only:
            _start_mlflow(paths, state)
            atomic_write_json(paths.state_file, state, mode=0o600)
            _start_spark(paths, state)
            atomic_write_json(paths.state_file, state, mode=0o600)
    except BaseException:
        atomic_write_json(paths.state_file, state, mode=0o600)
        down(paths.root)
        raise
    env = stack_env(paths, state, jdbc_driver_jar)
    state["env"] = env
    atomic_write_json(paths.state_file, state, mode=0o600)
    _write_env_file(paths, env)
    return env


def _services(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    names = ("spark_worker", "spark_master", "mlflow", "postgres")
    return {name: state[name] for name in names if name in state}


def down(root: Path) -> list[str]:
    """Stop exactly the processes `up` recorded (all but PostgreSQL at once, PostgreSQL last); returns their names."""
    paths = StackPaths(root.resolve())
    state = _read_state(paths)
    if state is None:
        return []
    services = _services(state)
    groups = [svc["pid"] for name, svc in services.items() if name != "postgres"]
    for pid in groups:
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while any(_pid_alive(pid) for pid in groups) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in groups:
        _signal_group(pid, signal.SIGKILL)
    pg = services.get("postgres")
    if pg is not None and _pid_alive(pg["pid"]):
        subprocess.run(
            [*_as_pg_user(), str(pg_bin("pg_ctl")), "-D", str(paths.pg_data), "-m", "fast", "-w", "stop"],
            capture_output=True,
        )
        if _pid_alive(pg["pid"]):
            os.kill(pg["pid"], signal.SIGTERM)
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
    state = _read_state(paths)
    if state is None:
        return []
    rows = []
    for name, svc in reversed(list(_services(state).items())):
        running = _pid_alive(svc["pid"])
        if name == "postgres":
            answers, address = running and _pg_answers(state), f"127.0.0.1:{svc['port']} (socket in {paths.pg_dir})"
        elif name == "mlflow":
            address = f"http://127.0.0.1:{svc['port']}"
            answers = running and _http_ok(f"{address}/health")
        elif name == "spark_master":
            address = f"spark://127.0.0.1:{svc['port']} (UI :{svc['webui_port']})"
            answers = running and (_master_json(state) or {}).get("status") == "ALIVE"
        else:
            address = f"127.0.0.1:{svc['port']} (UI :{svc['webui_port']})"
            answers = running and _alive_workers(state) >= 1
        rows.append(ServiceStatus(name, svc["pid"], running, answers, address, svc["log"]))
    return rows


def build_parser() -> ArgumentParser:
    """`up`, `down`, `status` and `user OWNER`, each with `--dir`; usage errors exit 64."""
    settings = cli_settings()
    parser = ArgumentParser(prog="python -m lib.stack", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    helps = {
        "up": "start PostgreSQL, the MLflow server and a Spark master + worker",
        "down": "stop everything `up` started",
        "status": "each service, its pid and address, and whether it answers",
        "user": "print one participant's settings (own metrics database) to source after the stack's env file",
    }
    for name, text in helps.items():
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument(
            "--dir", type=Path, default=settings.stack_dir, help=f"stack directory (default {settings.stack_dir})"
        )
        if name == "user":
            cmd.add_argument("owner", help="the participant's PROJECT_OWNER")
        if name == "up":
            cmd.add_argument("--postgres-only", action="store_true", help="start only PostgreSQL")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one stack command and print its summary; returns the exit code."""
    args = build_parser().parse_args(argv)
    setup_logging(is_verbose(args))
    settings = cli_settings()
    paths = StackPaths(args.dir.resolve())
    try:
        if args.command == "up":
            env = up(paths.root, settings.jdbc_driver_jar, postgres_only=args.postgres_only)
            for row in status(paths.root):
                print(f"{row.name:13}: {row.address}  pid {row.pid}")
            print(f"env file     : {paths.env_file}")
            print(f"spark master : {env.get('SPARK_MASTER', 'not started (--postgres-only)')}")
            print(f"mlflow       : {env.get('MLFLOW_TRACKING_URI', 'not started (--postgres-only)')}")
            print(f"next         : set -a; . {paths.env_file}; set +a; python 00_download.py")
        elif args.command == "user":
            for key, value in owner_env(paths.root, args.owner).items():
                print(f"export {key}={_shell_quote(value)}")
        elif args.command == "down":
            stopped = down(paths.root)
            print(f"stopped      : {', '.join(stopped) if stopped else 'nothing (no stack recorded)'}")
            print("next         : make stack")
        else:
            rows = status(paths.root)
            if not rows:
                print(f"stack        : none recorded in {paths.root}")
                print("next         : make stack")
                return EX_FAILURE
            for row in rows:
                state = "answers" if row.answers else ("running, not answering" if row.running else "stopped")
                print(f"{row.name:13}: {state:22} {row.address}  pid {row.pid}  log {row.log}")
            print(f"env file     : {paths.env_file}")
            print(f"next         : set -a; . {paths.env_file}; set +a")
            return EX_OK if all(r.answers for r in rows) else EX_FAILURE
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EX_FAILURE
    return EX_OK


if __name__ == "__main__":
    sys.exit(main())
