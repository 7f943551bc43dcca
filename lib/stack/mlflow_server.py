"""`mlflow server` for the stack, its backend store on the stack's PostgreSQL.

Artifacts are served by the server itself (`--serve-artifacts`), so clients need its URL and no
shared filesystem.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from lib.stack.postgres import pg_url
from lib.stack.process import StackPaths, free_port, http_ok, spawn, wait_ready


def mlflow_url(state: dict[str, Any]) -> str:
    """The tracking server's URL (MLFLOW_TRACKING_URI)."""
    return f"http://127.0.0.1:{state['mlflow']['port']}"


def mlflow_answers(state: dict[str, Any]) -> bool:
    """Whether the tracking server's /health answers."""
    return http_ok(f"{mlflow_url(state)}/health")


def start_mlflow(paths: StackPaths, state: dict[str, Any]) -> None:
    """Start the tracking server on a free port and wait until /health answers."""
    port = free_port()
    log_path = paths.logs / "mlflow.log"
    mlflow = Path(sys.executable).parent / "mlflow"
    cmd = [
        str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
        "--backend-store-uri", pg_url(state, "mlflow", driver="postgresql+psycopg2"),
        "--serve-artifacts", "--artifacts-destination", str(paths.artifacts),
    ]  # fmt: skip
    proc = spawn(cmd, log_path)
    state["mlflow"] = {"pid": proc.pid, "port": port, "log": str(log_path)}
    wait_ready("mlflow server", lambda: mlflow_answers(state), lambda: proc.poll() is None, log_path)
