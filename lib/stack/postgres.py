"""PostgreSQL 15 for the stack: the cluster, its databases and their URLs.

The cluster is made with `initdb` and run with `pg_ctl` inside the stack dir (as the `postgres`
system user when we are root).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

from lib.fileio import atomic_write_text, tail_lines
from lib.stack.process import StackError, StackPaths, free_port, pid_alive

PG_INSTALL = "apt-get install postgresql-15"
PG_BIN_DIRS = (Path("/usr/lib/postgresql/15/bin"),)
PG_SUPERUSER = "lab"
PG_DATABASES = ("mlflow", "iceberg", "metrics")
# PostgreSQL refuses to run as root; this system user (created by `make services-deps`) runs it then.
PG_OS_USER = "postgres"


def pg_bin(name: str) -> Path:
    """A PostgreSQL server binary; missing binaries name the install command."""
    for directory in PG_BIN_DIRS:
        if (directory / name).is_file():
            return directory / name
    found = shutil.which(name)
    if found:
        return Path(found)
    raise StackError(f"PostgreSQL server binary `{name}` not found: {PG_INSTALL}")


def pg_url(state: dict[str, Any], db: str, driver: str = "postgresql+psycopg") -> str:
    """The SQLAlchemy (or, with driver `postgresql`, libpq) URL of one database of the stack."""
    pg = state["postgres"]
    return f"{driver}://{PG_SUPERUSER}:{pg['password']}@127.0.0.1:{pg['port']}/{db}"


def as_pg_user() -> list[str]:
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
    prefix = as_pg_user()
    if prefix and subprocess.run([*prefix, "test", "-x", str(path)], capture_output=True).returncode != 0:
        raise StackError(
            f"user `{PG_OS_USER}` cannot enter {path}: put the stack in a directory others can traverse "
            "(--dir or STACK_DIR), e.g. under /tmp or /srv"
        )


def start_postgres(paths: StackPaths, state: dict[str, Any]) -> None:
    """Create the cluster if needed, start it on a free port and create the stack's databases."""
    initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
    prefix = as_pg_user()
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
    create_databases(state)


def _read_password(paths: StackPaths) -> str:
    file = paths.pg_dir.parent / ".pg_password"
    if not file.is_file():
        raise StackError(f"{paths.pg_data} exists but its password file {file} is gone: remove {paths.root}")
    return file.read_text().strip()


def stop_postgres(paths: StackPaths, pid: int) -> None:
    """`pg_ctl stop -m fast` (clean shutdown, no recovery on the next start); SIGTERM if that fails."""
    if not pid_alive(pid):
        return
    subprocess.run(
        [*as_pg_user(), str(pg_bin("pg_ctl")), "-D", str(paths.pg_data), "-m", "fast", "-w", "stop"],
        capture_output=True,
    )
    if pid_alive(pid):
        os.kill(pid, signal.SIGTERM)


def create_databases(state: dict[str, Any], names: tuple[str, ...] = PG_DATABASES) -> None:
    """Create the databases that do not exist yet (idempotent: `up` again, or a second participant)."""
    import psycopg

    with psycopg.connect(pg_url(state, "postgres", driver="postgresql"), autocommit=True) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for db in names:
            if db not in existing:
                conn.execute(f'CREATE DATABASE "{db}"')


def pg_answers(state: dict[str, Any]) -> bool:
    """Whether the stack's PostgreSQL accepts a connection and a query."""
    import psycopg

    try:
        with psycopg.connect(pg_url(state, "postgres", driver="postgresql"), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False
