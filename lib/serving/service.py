"""Running the model server as a service: access key, foreground serving, detached start, stop.

A detached server is `python -m lib.serving start --foreground` in its own session with output
to `<run_dir>/server.log`. It binds its socket first (port 0 picks a free one), then records pid,
host and port in `<run_dir>/server.json` and `server.pid`; the launcher waits for /ready. The
access key lives in `settings.access_key_file` (mode 0600) and is never printed or logged.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lib.config import PROJECT_ROOT, Settings
from lib.fileio import atomic_write_json, atomic_write_text, tail_lines
from lib.serving.client import (
    Endpoint,
    ServerState,
    ServingClient,
    clear_state,
    endpoint,
    log_path,
    pid_alive,
    pid_path,
    process_start,
    read_state,
    save_state,
    state_path,
)
from lib.serving.loader import ServingError

log = logging.getLogger(__name__)

# Settings the detached child must share with its launcher (tests build settings without env vars).
FORWARDED = (
    "root", "user", "mlflow_tracking_uri", "mlflow_registry_uri", "serve_host", "serve_port", "run_dir",
    "metrics_db_url", "max_batch_records", "max_body_bytes", "serve_watch_seconds",
)  # fmt: skip
_PATHS = ("root", "run_dir")


def write_settings_file(settings: Settings) -> Path:
    """Write the launcher's serving settings for the child's `--settings-file`.

    A file (mode 0600), not the command line: a tracking URI may carry credentials and `ps` shows
    arguments.
    """
    data = {}
    for key in FORWARDED:
        value = getattr(settings, key)
        data[key] = str(value) if isinstance(value, Path) else value
    path = settings.run_dir / "server.settings.json"
    atomic_write_json(path, data, mode=0o600)
    return path


def apply_settings_file(settings: Settings, path: str | None) -> Settings:
    """`settings` with the launcher's serving settings from `path` (None: unchanged)."""
    if not path:
        return settings
    try:
        data: dict[str, Any] = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ServingError(f"cannot read the settings file {path}: {exc}") from exc
    unknown = set(data) - set(FORWARDED)
    if unknown:
        raise ServingError(f"{path} has unknown setting(s): {', '.join(sorted(unknown))}")
    for key in _PATHS:
        if key in data:
            data[key] = Path(data[key])
    return dataclasses.replace(settings, **data)


def ensure_access_key(settings: Settings) -> str:
    """The server's access key, generated on first use and written atomically with mode 0600."""
    path = settings.access_key_file
    if path.is_file():
        key = path.read_text().strip()
        if key:
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
            return key
    key = secrets.token_urlsafe(32)
    atomic_write_text(path, key + "\n", mode=0o600)
    log.info("generated a new access key in %s", path)
    return key


def bind_socket(host: str, port: int) -> socket.socket:
    """Listen before uvicorn starts: a busy port fails with a one-line fix, and port 0's real port is known."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServingError(f"cannot listen on {host}:{port} ({exc.strerror}): set SERVE_PORT to a free port") from exc
    sock.listen(2048)
    return sock


def server_log_config(level: str = "INFO") -> dict[str, Any]:
    """One format for uvicorn and our loggers.

    Applied by uvicorn after the model is loaded, so it also undoes the root-logger setup MLflow's
    database migrations may have done.
    """
    handler = {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {"default": handler},
        "loggers": {
            "uvicorn": {"level": level, "handlers": ["default"], "propagate": False},
            "uvicorn.access": {"level": level, "handlers": ["default"], "propagate": False},
        },
        "root": {"level": level, "handlers": ["default"]},
    }


def serve(settings: Settings, *, no_auth: bool = False, watch_seconds: float | None = None) -> None:
    """Run the server in this process until SIGINT/SIGTERM; flushes the prediction log on exit."""
    import uvicorn

    from lib.serving.app import create_app
    from lib.serving.loader import ModelHolder

    running = read_state(settings)
    if running is not None:
        raise ServingError(f"a server is already running at {running.url} (pid {running.pid}): "
                           "python -m lib.serving stop first")  # fmt: skip
    key = None if no_auth else ensure_access_key(settings)
    holder = ModelHolder(settings)
    holder.reload()
    watch = settings.serve_watch_seconds if watch_seconds is None else watch_seconds
    app = create_app(settings, holder, access_key=key, watch_seconds=watch)
    sock = bind_socket(settings.serve_host, settings.serve_port)
    state = ServerState(
        pid=os.getpid(),
        host=settings.serve_host,
        port=sock.getsockname()[1],
        auth=key is not None,
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        log_file=str(log_path(settings)),
        process_start=process_start(os.getpid()),
    )
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=server_log_config(),
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    # What is loaded now (FastAPI, pydantic, MLflow, the model) lives as long as the server: out of
    # the collector's sight, a collection triggered by a batch request's objects does not walk it.
    gc.freeze()
    save_state(settings, state)
    log.info(
        "serving %s v%s at %s (auth %s)", holder.current.name, holder.current.version, state.url,
        "on" if key else "OFF",
    )  # fmt: skip
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        clear_state(settings, os.getpid())


def start_detached(
    settings: Settings,
    *,
    no_auth: bool = False,
    watch_seconds: float | None = None,
    expect_version: str | None = None,
    timeout: float = 120.0,
) -> Endpoint:
    """Start the server in its own session and wait until it reports ready (with `expect_version`)."""
    running = read_state(settings)
    if running is not None:
        raise ServingError(f"a server is already running at {running.url} (pid {running.pid})")
    if not no_auth:
        ensure_access_key(settings)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "lib.serving", "start", "--foreground",
           "--settings-file", str(write_settings_file(settings))]  # fmt: skip
    if no_auth:
        cmd.append("--no-auth")
    if watch_seconds is not None:
        cmd += ["--watch", str(watch_seconds)]
    logfile = log_path(settings)
    with logfile.open("ab") as out:
        proc = subprocess.Popen(
            cmd, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            tail = " | ".join(tail_lines(logfile, 5)) or "(no log)"
            raise ServingError(f"the server exited with code {code} while starting: {tail} "
                               f"(full log: {logfile})")  # fmt: skip
        state = read_state(settings)
        if state is not None and state.pid == proc.pid:
            break
        if time.monotonic() > deadline:
            proc.terminate()
            raise ServingError(f"the server did not start within {timeout:.0f}s; see {logfile}")
        time.sleep(0.1)
    ep = endpoint(settings)
    with ServingClient(ep) as client:
        client.wait_ready(expect_version, timeout=max(1.0, deadline - time.monotonic()))
    return ep


def stop(settings: Settings, timeout: float = 20.0) -> int | None:
    """Stop the running server (SIGTERM, SIGKILL after `timeout`); returns its pid or None."""
    state = read_state(settings)
    if state is None:
        for path in (state_path(settings), pid_path(settings)):
            path.unlink(missing_ok=True)
        return None
    os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(state.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(state.pid):
        log.warning("server pid %d ignored SIGTERM for %.0fs; killing it", state.pid, timeout)
        os.kill(state.pid, signal.SIGKILL)
        while pid_alive(state.pid):
            time.sleep(0.05)
    stop_leftovers(state.pid)
    clear_state(settings, state.pid)
    return state.pid


def stop_leftovers(pgid: int) -> None:
    """Stop what a stopped server left running in its process group (a forest compile's gcc).

    The detached server leads its own session, so its children share its process group; a compile
    still running when the server exits would otherwise go on for minutes as an orphan.
    """
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return  # the usual case: nothing of the group is left
