"""Load what monitoring judges from the stores and compute the whole report once.

The prediction log comes from the metrics database (filtered to this project's model in SQL), the
reference profile from the MLflow run behind the model version that served the newest request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
    check_window,
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


def load_window(settings: Settings, window_hours: float | None = None) -> pd.DataFrame:
    """Only the last `window_hours` of event time of the project's model, read with SQL filters.

    For callers that run often (the Prometheus exporter): one aggregate query finds the newest
    event, then only the window's rows are transferred. An empty log is an error as in `load_log`.
    """
    from lib.metrics_store import MetricsStore

    hours = check_window(window_hours, None)
    store = MetricsStore(settings.metrics_db_url)
    span = store.log_span(model_name=settings.model_name)
    if span.rows == 0 or span.last_event is None:
        raise MonitoringError(
            f"no predictions of {settings.model_name} logged in {settings.metrics_db_url}: "
            "run 08_model_simulation.py first"
        )
    start = span.last_event - pd.Timedelta(hours=hours)
    rows = store.read_predictions(start=start, model_name=settings.model_name)
    return select_window(rows, window_hours=hours)


ProfileLoader = Callable[[Settings, str], Mapping[str, Any]]


def judge_window(
    settings: Settings, window: pd.DataFrame, profile_loader: ProfileLoader = reference_profile
) -> tuple[str, pd.DataFrame, list[AlertResult]]:
    """(model version in production, drift table, alert verdicts) of one window of the log.

    Drift compares the requests of the version that served the window's newest request with that
    version's training profile; `profile_loader` lets a long-running caller cache profiles.
    """
    if window.empty:
        raise MonitoringError("the monitoring window holds no predictions")
    model_version = str(window["model_version"].iloc[-1])
    profile = profile_loader(settings, model_version)
    served_by_current = window[window["model_version"] == model_version]
    drift = drift_table(served_by_current, profile, settings.alert_max_psi)
    return model_version, drift, evaluate_alerts(window, drift, settings)


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
    model_version, drift, alerts = judge_window(settings, window)
    return MonitoringReport(
        predictions=log_df,
        window=window,
        performance=performance_by_window(log_df, freq=freq),
        deployments=deployments(log_df),
        drift=drift,
        alerts=alerts,
        model_name=settings.model_name,
        model_version=model_version,
        freq=freq,
    )
