"""MLflow's stores, opened once per process before request threads use them.

MLflow creates its SQLAlchemy stores lazily, and the first creation runs alembic's schema check,
whose context is global: two request threads doing it at once fail (alembic's "'NoneType' object
has no attribute 'begin_transaction'"). The app's routers depend on `mlflow_ready`, which opens
the tracking and registry stores once, under a lock; later requests find them open.
"""

from __future__ import annotations

import threading

from fastapi import Request
from mlflow.exceptions import MlflowException

from lib.app import AppError
from lib.config import Settings
from lib.tracking import configure_mlflow

_LOCK = threading.Lock()
_OPENED: set[tuple[str, str | None]] = set()


def open_mlflow(settings: Settings) -> None:
    """Open the tracking and registry stores of `settings` once (a no-op afterwards)."""
    key = (settings.mlflow_tracking_uri, settings.mlflow_registry_uri)
    if key in _OPENED:
        return
    with _LOCK:
        if key in _OPENED:
            return
        try:
            client = configure_mlflow(settings)
            client.search_experiments(max_results=1)
            client.search_registered_models(max_results=1)
        except MlflowException as exc:
            raise AppError(f"the MLflow store {settings.mlflow_tracking_uri} cannot be opened: {exc}") from exc
        _OPENED.add(key)


def mlflow_ready(request: Request) -> None:
    """Router dependency: MLflow's stores are open before the route reads them."""
    open_mlflow(request.app.state.settings)
