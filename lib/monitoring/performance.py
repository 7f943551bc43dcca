"""Volume, model quality and latency of a prediction log, per event-time window (pure functions).

The log is a DataFrame as `MetricsStore.read_predictions` returns it (or as the traffic simulator
builds it); every function normalises it with `prepare_log` first, so callers need not.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from lib.metrics import QUALITY_THRESHOLD, classification_metrics
from lib.monitoring import MonitoringError

DEFAULT_FREQ = "1D"
DEFAULT_WINDOW_HOURS = 24.0
QUALITY_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
PERFORMANCE_COLUMNS = (
    "window_start", "model_version", "requests", "labeled", *QUALITY_METRICS,
    "positive_rate", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
)  # fmt: skip


def prepare_log(df: pd.DataFrame) -> pd.DataFrame:
    """Normalise a prediction log: UTC event times, nullable Int labels, rows in event order."""
    missing = [c for c in ("event_ts", "model_version", "prediction", "probability", "label") if c not in df]
    if missing:
        raise MonitoringError(f"prediction log lacks column(s): {', '.join(missing)}")
    out = df.copy()
    out["event_ts"] = pd.to_datetime(out["event_ts"], utc=True)
    out["label"] = out["label"].astype("Int64")
    out["model_version"] = out["model_version"].astype(str)
    return out.sort_values("event_ts", kind="stable").reset_index(drop=True)


def summarize(df: pd.DataFrame) -> dict[str, float]:
    """All monitored numbers of one slice of the log: volume, quality on labelled rows, latency.

    Quality comes from `lib.metrics.classification_metrics` on the logged probability at
    `QUALITY_THRESHOLD`, so live numbers compare with the run's test metrics whatever cut-off
    serves, and share MLflow's zero-division rule (NaN where undefined). `positive_rate` is the
    share of served 1s: how many customers the served cut-off says to call.
    """
    labelled = df[df["label"].notna()]
    metrics = classification_metrics(
        labelled["label"].astype(int),
        labelled["probability"].astype(float),
        threshold=QUALITY_THRESHOLD,
    )
    latency = df["latency_ms"].dropna().to_numpy(dtype=float) if "latency_ms" in df else np.array([])
    p50, p95, p99 = np.percentile(latency, [50, 95, 99]) if len(latency) else (math.nan,) * 3
    return {
        "requests": len(df),
        "labeled": len(labelled),
        **{name: metrics[name] for name in QUALITY_METRICS},
        "positive_rate": float(df["prediction"].mean()) if len(df) else math.nan,
        "latency_p50_ms": float(p50),
        "latency_p95_ms": float(p95),
        "latency_p99_ms": float(p99),
    }


def performance_by_window(df: pd.DataFrame, freq: str = DEFAULT_FREQ, by_version: bool = True) -> pd.DataFrame:
    """One row per event-time window (and model version): volume, quality and latency.

    `freq` is a pandas offset alias ("1D", "6h"); windows start at `event_ts.floor(freq)`.
    Windows without requests are absent rather than zero-filled.
    """
    log_df = prepare_log(df)
    if log_df.empty:
        return pd.DataFrame(columns=list(PERFORMANCE_COLUMNS))
    log_df["window_start"] = log_df["event_ts"].dt.floor(freq)
    keys = ["window_start", "model_version"] if by_version else ["window_start"]
    rows = [
        {**dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True)), **summarize(part)}
        for key, part in log_df.groupby(keys, sort=True)
    ]
    out = pd.DataFrame(rows)
    if not by_version:
        out["model_version"] = "all"
    return out.loc[:, list(PERFORMANCE_COLUMNS)]


def deployments(df: pd.DataFrame) -> pd.DataFrame:
    """When each model version first served (in event time), in deployment order.

    Every row after the first is a redeploy moment for the charts.
    """
    log_df = prepare_log(df)
    first = log_df.groupby("model_version", sort=False)["event_ts"].min()
    out = first.sort_values().rename("first_event_ts").reset_index()
    return out.loc[:, ["model_version", "first_event_ts"]]


def check_window(window_hours: float | None, last: int | None) -> float | None:
    """Validate a window choice; returns the hours to judge (None when `last` rows are judged)."""
    if last is not None and window_hours is not None:
        raise MonitoringError("give either window_hours or last, not both")
    if last is not None:
        if last < 1:
            raise MonitoringError(f"last={last} must be at least 1")
        return None
    hours = DEFAULT_WINDOW_HOURS if window_hours is None else window_hours
    if hours <= 0:
        raise MonitoringError(f"window_hours={hours} must be positive")
    return hours


def select_window(df: pd.DataFrame, window_hours: float | None = None, last: int | None = None) -> pd.DataFrame:
    """The most recent slice of the log by event time: the last `window_hours` or `last` rows.

    The window ends at the newest event, not at the wall clock, so a simulated period that lies
    in the past or future is judged on its own latest stretch.
    """
    log_df = prepare_log(df)
    hours = check_window(window_hours, last)
    if hours is None:
        return log_df.tail(last).reset_index(drop=True)
    if log_df.empty:
        return log_df
    end = log_df["event_ts"].max()
    return log_df[log_df["event_ts"] > end - pd.Timedelta(hours=hours)].reset_index(drop=True)
