"""Load what monitoring judges from the stores and compute the whole report once.

The prediction log comes from the metrics database (filtered to this project's model in SQL), the
reference profile from the MLflow run behind the model version that served the newest request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from lib.config import Settings
from lib.logs import quiet_third_party
from lib.monitoring import MonitoringError
from lib.monitoring.alerts import AlertResult, evaluate_alerts
from lib.monitoring.drift import drift_table
from lib.monitoring.performance import (
    DEFAULT_FREQ,
    deployments,
    performance_by_window,
    prepare_log,
    select_window,
)


def load_log(settings: Settings) -> pd.DataFrame:
    """This project's model's prediction log with ground truth, normalised.

    The metrics database may be shared by several users' models; only `settings.model_name`
    counts, and the database does the filtering. An empty log is an error naming the script that
    fills it.
    """
    from lib.metrics_store import MetricsStore

    store = MetricsStore(settings.metrics_db_url)
    if store.log_span(model_name=settings.model_name).rows == 0:
        raise MonitoringError(
            f"no predictions of {settings.model_name} logged in {settings.metrics_db_url}: "
            "run 08_model_simulation.py first"
        )
    return prepare_log(store.read_predictions(model_name=settings.model_name))


def reference_profile(settings: Settings, model_version: str) -> dict[str, Any]:
    """The training profile of the run behind a registered version of the project's model."""
    # MLflow re-runs its alembic migrations on every SQLite store it opens (also in a notebook,
    # where no CLI set logging up); their INFO lines say nothing to a reader.
    quiet_third_party()
    from lib.profile import ProfileError, load_profile
    from lib.registry import RegistryError, describe
    from lib.tracking import quiet_mlflow

    with quiet_mlflow():
        try:
            info = describe(settings, model_version)
            return load_profile(info.run_id, settings)
        except RegistryError as exc:
            raise MonitoringError(f"{exc}: the prediction log and the model registry do not match") from exc
        except ProfileError as exc:
            raise MonitoringError(str(exc)) from exc


@dataclass(frozen=True)
class MonitoringReport:
    """Everything the dashboard and `check` show, computed once from the stores."""

    predictions: pd.DataFrame
    window: pd.DataFrame
    performance: pd.DataFrame
    deployments: pd.DataFrame
    drift: pd.DataFrame
    alerts: list[AlertResult]
    model_name: str
    model_version: str
    freq: str

    @property
    def firing(self) -> list[AlertResult]:
        """The alerts that fired: what `check` reports and acts on."""
        return [a for a in self.alerts if a.firing]


def build_report(
    settings: Settings,
    window_hours: float | None = None,
    last: int | None = None,
    freq: str = DEFAULT_FREQ,
) -> MonitoringReport:
    """Performance over time, drift of the recent window and the alert verdicts.

    Drift compares the recent window with the training profile of the model version that served
    its newest request (the version in production now).
    """
    log_df = load_log(settings)
    window = select_window(log_df, window_hours=window_hours, last=last)
    model_version = str(window["model_version"].iloc[-1])
    profile = reference_profile(settings, model_version)
    served_by_current = window[window["model_version"] == model_version]
    drift = drift_table(served_by_current, profile, settings.alert_max_psi)
    return MonitoringReport(
        predictions=log_df,
        window=window,
        performance=performance_by_window(log_df, freq=freq),
        deployments=deployments(log_df),
        drift=drift,
        alerts=evaluate_alerts(window, drift, settings),
        model_name=settings.model_name,
        model_version=model_version,
        freq=freq,
    )
