"""MLflow wiring: tracking/registry URIs and experiments, from settings only.

The default is a SQLite store at `<root>/mlflow.db` with artifacts under `<root>/mlartifacts`,
so runs and the Model Registry work with no server; MLFLOW_TRACKING_URI points at a real one.

CLI: `python -m lib.tracking ui [--port N]` opens the MLflow UI on that configured store (make mlflow-ui).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from lib.cliargs import ArgumentParser
from lib.config import Settings, cli_settings


def ensure_store_dir(settings: Settings) -> None:
    """Create the directory of a SQLite store before MLflow opens it.

    SQLite makes the file but not its directory (a fresh PROJECT_ROOT), and MLflow then retries
    "unable to open database file" for minutes.
    """
    for uri in (settings.mlflow_tracking_uri, settings.mlflow_registry_uri or ""):
        if uri.startswith("sqlite:///"):
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def configure_mlflow(settings: Settings) -> MlflowClient:
    """Point the MLflow fluent API at the configured store and return a client for it."""
    # "creating/updating database tables" on every connect is not news to users (alembic's own lines
    # cannot be quietened: MLflow's migration env re-applies alembic's logging config each time)
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    ensure_store_dir(settings)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    if settings.mlflow_registry_uri:
        mlflow.set_registry_uri(settings.mlflow_registry_uri)
    return MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_registry_uri)


def ensure_experiment(settings: Settings, name: str) -> str:
    """Return the experiment id, creating it with the configured artifact root if needed."""
    client = configure_mlflow(settings)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=settings.mlflow_artifact_location)


@contextmanager
def quiet_mlflow() -> Iterator[None]:
    """Keep many-run output readable (training grids, monitoring's registry reads).

    No INFO log lines (MLflow's per-model messages and the ~45 alembic lines when the SQLite
    store is first created, whose logging config MLflow installs itself), no per-model artifact
    progress bars, and no hint that integer columns cannot hold missing values (integer inputs
    are the schema on purpose: serving rejects missing values). Warnings such as a failed
    serving-input validation still show. Everything is restored on exit.
    """
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR as progress_bar

    disabled, previous = logging.root.manager.disable, progress_bar.get_raw()
    logging.disable(logging.INFO)
    progress_bar.set("false")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer", category=UserWarning)
            yield
    finally:
        logging.disable(disabled)
        if previous is None:
            progress_bar.unset()
        else:
            progress_bar.set(previous)


def ui_command(settings: Settings, host: str, port: int) -> list[str]:
    """The `mlflow ui` command for the configured store.

    It passes absolute URIs from settings, never a relative `mlflow.db`, so the UI shows the same
    runs whatever directory it is started from.
    """
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", settings.mlflow_tracking_uri]
    if settings.mlflow_registry_uri:
        cmd += ["--registry-store-uri", settings.mlflow_registry_uri]
    if settings.mlflow_artifact_location:
        cmd += ["--default-artifact-root", settings.mlflow_artifact_location]
    # one worker: a UI for one person on a small machine, not four copies of the app
    return cmd + ["--host", host, "--port", str(port), "--workers", "1"]


def _free_port(host: str, preferred: int) -> int:
    """`preferred` if nothing listens there, else a free port the OS picks."""
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise OSError(f"no free port on {host}")


def build_parser() -> ArgumentParser:
    """`ui [--port N] [--host H]`; usage errors exit 64."""
    parser = ArgumentParser(prog="python -m lib.tracking", description="MLflow on the configured store.")
    sub = parser.add_subparsers(dest="command", required=True)
    ui = sub.add_parser("ui", help="start the MLflow UI on 127.0.0.1 (Ctrl-C stops it)")
    ui.add_argument("--port", type=int, default=5000, help="port, or the next free one (default: %(default)s)")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Start the MLflow UI on the configured store and the next free port; for a tracking server, point at it."""
    args = build_parser().parse_args(argv)
    settings = cli_settings()
    if settings.mlflow_tracking_uri.startswith(("http://", "https://", "databricks")):
        print(f"tracking  : {settings.mlflow_tracking_uri} is a tracking server: open it, it has the UI")
        return 0
    try:
        port = _free_port(args.host, args.port)
    except OSError as exc:
        print(f"error: {exc}; pass --port", file=sys.stderr)
        return 1
    try:
        ensure_store_dir(settings)
    except OSError as exc:
        print(f"error: cannot create the MLflow store's directory: {exc}; check PROJECT_ROOT", file=sys.stderr)
        return 1
    cmd = ui_command(settings, args.host, port)
    print(f"tracking  : {settings.mlflow_tracking_uri}")
    print(f"artifacts : {settings.mlflow_artifact_location or '(the store default)'}")
    print(f"url       : http://{args.host}:{port}  (Ctrl-C stops it)", flush=True)
    os.execv(cmd[0], cmd)  # the UI replaces this process, so Ctrl-C and exit codes are its own
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
