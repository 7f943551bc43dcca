"""What every service of the stack shares: where its state lives, how a server starts and stops.

Each server is started in a process group of its own, so `down` stops all it forked.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib.fileio import tail_lines

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


def read_state(paths: StackPaths) -> dict[str, Any] | None:
    """What `up` recorded in the stack dir, or None when no stack was started there."""
    if not paths.state_file.is_file():
        return None
    return json.loads(paths.state_file.read_text())


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    """Whether a process exists (one of another user, such as PostgreSQL's, counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether a GET on `url` answers 200 (a server that is up and ready)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_ready(what: str, ready: Callable[[], bool], alive: Callable[[], bool], log_path: Path) -> None:
    """Poll until `ready()`; a server that exits or stays silent raises with the tail of its log."""
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


def spawn(cmd: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a server in its own session (one process group), so `down` stops it with everything it forked."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        return subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )


def signal_group(pid: int, sig: int) -> None:
    """Signal a server's whole process group (it was started in a session of its own)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
