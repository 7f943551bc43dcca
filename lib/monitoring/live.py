"""What the live Monitoring page shows, from SQL aggregates and the champion's judged window.

Charts over the selected range come from `MetricsStore.aggregate` (one row per time bucket and
model version, counted by the database) and `MetricsStore.version_spans` (redeploy moments). Only
the alert and drift panel reads rows, and only those of the champion's last 24 h (the default
window of `python -m lib.monitoring check` and of the exporter), through the same
`report.load_window` / `report.judge_window`, so the page, the CLI and Prometheus cannot disagree,
and a month-wide chart never loads a month of rows. The result is plain JSON data (NaN as None,
times as naive-UTC strings plotly reads as dates).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from lib.config import Settings
from lib.metrics import confusion_rates
from lib.metrics_store import MetricsStore
from lib.monitoring import MonitoringError
from lib.monitoring.performance import DEFAULT_WINDOW_HOURS
from lib.monitoring.report import (
    ProfileLoader,
    champion_version,
    judge_window,
    load_window,
    no_traffic_message,
    reference_profile,
)

WINDOWS_HOURS = (1.0, 6.0, 24.0, 72.0, 168.0, 720.0)  # the page's time-window choices
TARGET_BUCKETS = 60
BUCKET_SECONDS = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400)
SERIES_COLUMNS = (
    "requests", "labeled", "accuracy", "precision", "recall", "f1", "positive_rate",
    "latency_p50_ms", "latency_p95_ms",
)  # fmt: skip


def bucket_seconds(hours: float) -> int:
    """The smallest round bucket that keeps a window to about TARGET_BUCKETS points per version."""
    wanted = hours * 3600 / TARGET_BUCKETS
    return next((b for b in BUCKET_SECONDS if b >= wanted), BUCKET_SECONDS[-1])


def json_number(value: Any) -> float | int | None:
    """A number JSON can carry: NaN and missing become None (JSON has no NaN), counts stay ints."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    number = float(value)
    return None if math.isnan(number) else number


def time_text(value: datetime | pd.Timestamp | None) -> str | None:
    """A UTC time as `YYYY-MM-DD HH:MM:SS`, the form plotly reads as a date (it drops offsets)."""
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S")


def _series(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One entry per model version: its bucket starts and each metric as parallel lists."""
    out = []
    for version, part in frame.groupby("model_version", sort=False):
        entry: dict[str, Any] = {"version": str(version), "t": [time_text(t) for t in part["bucket_start"]]}
        for col in SERIES_COLUMNS:
            entry[col] = [json_number(v) for v in part[col]]
        out.append(entry)
    return out


def _totals(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Requests and labelled quality per version over the whole range, summed from the bucket counts."""
    out = []
    for version, part in frame.groupby("model_version", sort=False):
        tp, fp, fn, tn = (int(part[c].sum()) for c in ("tp", "fp", "fn", "tn"))
        out.append(
            {"version": str(version), "requests": int(part["requests"].sum()), "labeled": int(part["labeled"].sum()),
             **{k: json_number(v) for k, v in confusion_rates(tp, fp, fn, tn).items()}}
        )  # fmt: skip
    return out


def _judge(
    settings: Settings, hours: float, champion: str, profile_loader: ProfileLoader
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """(window facts, alert rows, drift rows) of the champion's last `hours`, as `check` judges them."""
    window = load_window(settings, window_hours=hours, model_version=champion)
    drift, alerts = judge_window(settings, window, champion, profile_loader=profile_loader)
    facts = {
        "hours": hours,
        "requests": len(window),
        "start": time_text(window["event_ts"].min()) if len(window) else None,
        "end": time_text(window["event_ts"].max()) if len(window) else None,
        "message": no_traffic_message(champion) if window.empty else "",
    }
    alert_rows = [
        {"rule": a.name, "status": a.status, "value": json_number(a.value),
         "threshold": json_number(a.threshold), "detail": a.detail}
        for a in alerts
    ]  # fmt: skip
    drift_rows = [
        {"feature": str(r.feature), "kind": str(r.kind), "psi": json_number(r.psi), "drifted": bool(r.drifted)}
        for r in drift.itertuples(index=False)
    ]
    return facts, alert_rows, drift_rows


def overview(
    settings: Settings,
    hours: float = 24.0,
    profile_loader: ProfileLoader = reference_profile,
    judge_hours: float = DEFAULT_WINDOW_HOURS,
) -> dict[str, Any]:
    """Everything the Monitoring page draws for the last `hours` of event time, as JSON data.

    The range ends at the newest logged event of the project's model (as `check`'s window does),
    so a simulated week in the past or future shows on its own latest stretch. Alerts and drift
    judge the champion's last `judge_hours` whatever the range. Raises MonitoringError when
    nothing is logged yet (the message names the script to run).
    """
    if not hours > 0:
        raise MonitoringError(f"hours={hours} must be positive")
    store = MetricsStore(settings.metrics_db_url)
    spans = store.version_spans(model_name=settings.model_name)
    if not spans:
        raise MonitoringError(
            f"no predictions of {settings.model_name} logged in {settings.metrics_db_url}: "
            "run 08_model_simulation.py first"
        )
    end = max(s.last_event for s in spans if s.last_event is not None)
    start = end - timedelta(hours=hours)
    bucket = bucket_seconds(hours)
    frame = store.aggregate(
        start=start, end=end + timedelta(microseconds=1), model_name=settings.model_name, bucket_seconds=bucket
    )
    champion = champion_version(settings)
    facts, alerts, drift = _judge(settings, judge_hours, champion, profile_loader)
    return {
        "model_name": settings.model_name,
        "champion": champion,
        "hours": hours,
        "range": {"start": time_text(start), "end": time_text(end), "bucket_seconds": bucket},
        "logged": sum(s.rows for s in spans),
        "totals": _totals(frame),
        "versions": [
            {
                "version": s.model_version,
                "rows": s.rows,
                "first_event": time_text(s.first_event),
                "last_event": time_text(s.last_event),
            }
            for s in spans
        ],  # fmt: skip
        "redeploys": [{"version": s.model_version, "t": time_text(s.first_event)} for s in spans[1:]],
        "series": _series(frame),
        "window": facts,
        "alerts": alerts,
        "drift": drift,
        "thresholds": {
            "min_accuracy": settings.alert_min_accuracy,
            "max_psi": settings.alert_max_psi,
            "max_p95_latency_ms": settings.alert_max_p95_latency_ms,
        },
    }
