"""Load what monitoring judges from the stores and compute the whole report once.

The prediction log comes from the metrics database (filtered to this project's model in SQL), the
reference profile from the MLflow run behind the registry's champion. Alerts and drift judge only the
traffic the champion served: right after a redeploy the old version's requests say nothing about
the new one, so until it has served a request every rule reports "no traffic for vN yet".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from lib.config import Settings
from lib.logs import third_party_quiet
from lib.monitoring import MonitoringError
from lib.monitoring.alerts import NO_DATA, AlertResult, evaluate_alerts
from lib.monitoring.drift import DRIFT_COLUMNS, drift_table
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
    # where no CLI set logging up); their INFO lines say nothing to a reader. Scoped: the
    # caller's logging and environment are as they were afterwards.
    with third_party_quiet():
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


def champion_version(settings: Settings) -> str:
    """The version the registry's `champion` alias names: what the server serves (or will after a reload)."""
    with third_party_quiet():
        from lib.registry import CHAMPION, RegistryError, get_alias
        from lib.tracking import quiet_mlflow

        with quiet_mlflow():
            try:
                info = get_alias(settings, CHAMPION)
            except RegistryError as exc:
                raise MonitoringError(str(exc)) from exc
    if info is None:
        raise MonitoringError(
            f"model {settings.model_name} has no '{CHAMPION}' version to monitor: run 04_api_deployment.py first"
        )
    return info.version


def no_traffic_message(model_version: str) -> str:
    """What every rule says while the champion has served nothing yet (e.g. right after a redeploy)."""
    return f"no traffic for v{model_version} yet"


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

    @property
    def no_traffic(self) -> bool:
        """The champion has served nothing yet: nothing to judge, nothing fires."""
        return self.window.empty


def load_window(
    settings: Settings, window_hours: float | None = None, model_version: str | None = None
) -> pd.DataFrame:
    """The last `window_hours` of event time served by `model_version` (default: the champion).

    For callers that run often (the Prometheus exporter, the app): one GROUP BY query (no join)
    finds the version's newest event, then only the window's rows are transferred. An empty log is an error
    as in `load_log`; a version that has served nothing yet gives an empty window.
    """
    from lib.metrics_store import MetricsStore

    hours = check_window(window_hours, None)
    store = MetricsStore(settings.metrics_db_url)
    spans = {s.model_version: s for s in store.version_spans(model_name=settings.model_name)}
    if not spans:
        raise MonitoringError(
            f"no predictions of {settings.model_name} logged in {settings.metrics_db_url}: "
            "run 08_model_simulation.py first"
        )
    version = champion_version(settings) if model_version is None else str(model_version)
    span = spans.get(version)
    if span is None or span.last_event is None:
        return prepare_log(store.read_predictions(model_name=settings.model_name, model_version=version))
    start = span.last_event - pd.Timedelta(hours=hours)
    rows = store.read_predictions(start=start, model_name=settings.model_name, model_version=version)
    return select_window(rows, window_hours=hours)


ProfileLoader = Callable[[Settings, str], Mapping[str, Any]]


def cached_profiles() -> ProfileLoader:
    """A profile loader that reads each registered version's training profile from MLflow once.

    A registered version's profile never changes, so a page refreshing every few seconds (or the
    exporter, scraped as often) need not download it again.
    """
    profiles: dict[tuple[str, str], Mapping[str, Any]] = {}

    def load(settings: Settings, model_version: str) -> Mapping[str, Any]:
        key = (settings.model_name, model_version)
        if key not in profiles:
            profiles[key] = reference_profile(settings, model_version)
        return profiles[key]

    return load


def judge_window(
    settings: Settings,
    window: pd.DataFrame,
    model_version: str,
    profile_loader: ProfileLoader = reference_profile,
) -> tuple[pd.DataFrame, list[AlertResult]]:
    """(drift table, alert verdicts) of the requests `model_version` served in one window of the log.

    Only that version's rows count (another version's traffic says nothing about it); when it
    served none, drift is empty and every rule is no-data with "no traffic for vN yet", so nothing
    fires. `profile_loader` lets a long-running caller cache profiles.
    """
    served = window[window["model_version"].astype(str) == str(model_version)] if not window.empty else window
    if served.empty:
        detail = no_traffic_message(model_version)
        empty = evaluate_alerts(served, None, settings)
        alerts = [AlertResult(a.name, NO_DATA, a.value, a.threshold, detail) for a in empty]
        return pd.DataFrame(columns=list(DRIFT_COLUMNS)), alerts
    profile = profile_loader(settings, str(model_version))
    drift = drift_table(served, profile, settings.alert_max_psi)
    return drift, evaluate_alerts(served, drift, settings)


def build_report(
    settings: Settings,
    window_hours: float | None = None,
    last: int | None = None,
    freq: str = DEFAULT_FREQ,
) -> MonitoringReport:
    """Performance over time of every version, drift and alert verdicts of the champion's recent window.

    The window is the champion's last `window_hours` of event time (or its `last` requests), ending
    at its newest request; it is empty (and nothing fires) until the champion has served one.
    """
    log_df = load_log(settings)
    model_version = champion_version(settings)
    served = log_df[log_df["model_version"] == model_version]
    window = select_window(served, window_hours=window_hours, last=last)
    drift, alerts = judge_window(settings, window, model_version)
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
