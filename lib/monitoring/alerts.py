"""The alert rules: one window of the log and its drift table -> ok / firing / no-data per rule."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from lib.config import Settings
from lib.monitoring.drift import DRIFT_COLUMNS
from lib.monitoring.performance import prepare_log, summarize

OK, FIRING, NO_DATA = "ok", "firing", "no-data"
ALERT_COLUMNS = ("rule", "status", "value", "threshold", "detail")


@dataclass(frozen=True)
class AlertResult:
    """One rule's verdict on a window: status is ok, firing or no-data."""

    name: str
    status: str
    value: float
    threshold: float
    detail: str = ""

    @property
    def firing(self) -> bool:
        """True only when the rule fired; no-data is not an alert."""
        return self.status == FIRING


def _rule(name: str, value: float, threshold: float, fires: bool, detail: str = "") -> AlertResult:
    if value is None or math.isnan(value):
        return AlertResult(name, NO_DATA, math.nan, threshold, detail)
    return AlertResult(name, FIRING if fires else OK, float(value), threshold, detail)


def _psi_rules(drift: pd.DataFrame, max_psi: float) -> list[AlertResult]:
    """Largest input PSI and prediction PSI against the threshold, naming what drifted."""
    results = []
    for name, kinds in (
        ("data_drift_psi", ("numeric", "categorical")),
        ("prediction_drift_psi", ("prediction",)),
    ):
        part = drift[drift["kind"].isin(kinds)].dropna(subset=["psi"])
        if part.empty:
            results.append(_rule(name, math.nan, max_psi, False))
            continue
        top = part.loc[part["psi"].idxmax()]
        over = part.loc[part["psi"] > max_psi, "feature"].tolist()
        detail = f"drifted: {', '.join(over)}" if over else f"largest: {top['feature']}"
        results.append(_rule(name, float(top["psi"]), max_psi, bool(over), detail))
    return results


def evaluate_alerts(window: pd.DataFrame, drift: pd.DataFrame | None, settings: Settings) -> list[AlertResult]:
    """Apply the alert thresholds from settings to one window of the log and its drift table.

    Rules: accuracy below `alert_min_accuracy` (labelled rows only), largest feature PSI and
    prediction PSI above `alert_max_psi`, p95 server latency above `alert_max_p95_latency_ms`.
    A rule without data says so instead of passing.
    """
    stats = summarize(prepare_log(window))
    accuracy = stats["accuracy"]
    p95 = stats["latency_p95_ms"]
    drift = drift if drift is not None else pd.DataFrame(columns=list(DRIFT_COLUMNS))
    return [
        _rule(
            "accuracy",
            accuracy,
            settings.alert_min_accuracy,
            accuracy < settings.alert_min_accuracy,
            f"{stats['labeled']} labelled of {stats['requests']}",
        ),
        *_psi_rules(drift, settings.alert_max_psi),
        _rule(
            "p95_latency_ms",
            p95,
            settings.alert_max_p95_latency_ms,
            p95 > settings.alert_max_p95_latency_ms,
            f"{stats['requests']} requests",
        ),
    ]


def alerts_frame(alerts: Sequence[AlertResult]) -> pd.DataFrame:
    """The verdicts as a table (notebook, HTML)."""
    return pd.DataFrame(
        [
            {"rule": a.name, "status": a.status, "value": a.value, "threshold": a.threshold, "detail": a.detail}
            for a in alerts
        ],
        columns=list(ALERT_COLUMNS),
    )


def format_alerts(alerts: Sequence[AlertResult]) -> str:
    """A fixed-width table for the terminal."""
    lines = [f"{'rule':22} {'status':8} {'value':>10} {'threshold':>10}  detail"]
    for a in alerts:
        value = "-" if math.isnan(a.value) else f"{a.value:.4f}"
        lines.append(f"{a.name:22} {a.status:8} {value:>10} {a.threshold:>10.4g}  {a.detail}")
    return "\n".join(lines)
