"""MLflow wiring: tracking/registry URIs and experiments, from settings only.

The default is a SQLite store at `<root>/mlflow.db` with artifacts under `<root>/mlartifacts`,
so runs and the Model Registry work with no server; MLFLOW_TRACKING_URI points at a real one.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from lib.config import Settings


def configure_mlflow(settings: Settings) -> MlflowClient:
    """Point the MLflow fluent API at the configured store and return a client for it."""
    # "creating/updating database tables" on every connect is not news to users (alembic's own lines
    # cannot be quietened: MLflow's migration env re-applies alembic's logging config each time)
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    if settings.mlflow_tracking_uri.startswith("sqlite:///"):
        Path(settings.mlflow_tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
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
