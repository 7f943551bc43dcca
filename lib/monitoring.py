"""Model monitoring: performance over time, data and prediction drift, alert rules, dashboard.

Everything reads the prediction log with its delayed ground truth (`lib.metrics_store`) and the
training reference profile of the model version that served it (`lib.profile`). The functions
are pure where they can be (DataFrames in, DataFrames out) so the notebook, the CLI and the tests
call the same code; the time axis is always the event time (`event_ts`), not the time a row was
written, so a simulated week shows as a week.

CLI:
  python -m lib.monitoring check [--window-hours H | --last N] [--trigger-retrain]
      evaluate the alert rules on the most recent window of event time; exit 0 when every rule is
      ok or has no data, 2 when one fires (after starting the "Retrain Models" chain when asked),
      1 on an error or a failed retraining chain.
  python -m lib.monitoring report [--window-hours H | --last N]
      render the dashboard (PNG figures + self-contained HTML) into settings.reports_dir.
"""

from __future__ import annotations

import argparse
import base64
import html
import logging
import math
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from lib.config import Settings, cli_settings
from lib.profile import OTHER, bin_counts

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from lib.jobs import ChainResult

log = logging.getLogger(__name__)

EPSILON = 1e-4  # share given to an empty bin so PSI stays finite
# Added to every live bin count (Jeffreys prior): a window of ~150 requests leaves rare bins
# empty by chance, and EPSILON alone would turn each of them into a false drift signal.
LIVE_PSEUDO_COUNT = 0.5
PREDICTION_FEATURE = "probability"
DEFAULT_FREQ = "1D"
DEFAULT_WINDOW_HOURS = 24.0
EXIT_FIRING = 2
RETRAIN_CHAIN = "Retrain Models"

OK, FIRING, NO_DATA = "ok", "firing", "no-data"

PERFORMANCE_COLUMNS = (
    "window_start", "model_version", "requests", "labeled", "accuracy", "precision", "recall", "f1",
    "roc_auc", "positive_rate", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
)  # fmt: skip
DRIFT_COLUMNS = ("feature", "kind", "psi", "ks_stat", "ks_pvalue", "drifted")


class MonitoringError(RuntimeError):
    """Monitoring cannot run; the message says what to run or fix."""


# --- performance -----------------------------------------------------------------------------


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


def classification_metrics(
    labels: Sequence[int], predictions: Sequence[int], probabilities: Sequence[float]
) -> dict[str, float]:
    """Accuracy, precision, recall, F1 and ROC AUC of labelled rows; NaN where undefined.

    Precision without a positive prediction, recall without a positive label and AUC with one
    class only are undefined, and a chart should show a gap there rather than a made-up 0.
    """
    y = np.asarray(labels, dtype=int)
    if len(y) == 0:
        return dict.fromkeys(("accuracy", "precision", "recall", "f1", "roc_auc"), math.nan)
    pred = np.asarray(predictions, dtype=int)
    proba = np.asarray(probabilities, dtype=float)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "precision": float(precision_score(y, pred, zero_division=np.nan)),
        "recall": float(recall_score(y, pred, zero_division=np.nan)),
        "f1": float(f1_score(y, pred, zero_division=np.nan)),
        "roc_auc": float(roc_auc_score(y, proba)) if len(np.unique(y)) == 2 else math.nan,
    }


def summarize(df: pd.DataFrame) -> dict[str, float]:
    """All monitored numbers of one slice of the log: volume, quality on labelled rows, latency."""
    labelled = df[df["label"].notna()]
    metrics = classification_metrics(
        labelled["label"].astype(int), labelled["prediction"].astype(int), labelled["probability"]
    )
    latency = df["latency_ms"].dropna().to_numpy(dtype=float) if "latency_ms" in df else np.array([])
    p50, p95, p99 = np.percentile(latency, [50, 95, 99]) if len(latency) else (math.nan,) * 3
    return {
        "requests": len(df),
        "labeled": len(labelled),
        **metrics,
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


def select_window(df: pd.DataFrame, window_hours: float | None = None, last: int | None = None) -> pd.DataFrame:
    """The most recent slice of the log by event time: the last `window_hours` or `last` rows.

    The window ends at the newest event, not at the wall clock, so a simulated period that lies
    in the past or future is judged on its own latest stretch.
    """
    log_df = prepare_log(df)
    if last is not None and window_hours is not None:
        raise MonitoringError("give either window_hours or last, not both")
    if last is not None:
        if last < 1:
            raise MonitoringError(f"last={last} must be at least 1")
        return log_df.tail(last).reset_index(drop=True)
    hours = DEFAULT_WINDOW_HOURS if window_hours is None else window_hours
    if hours <= 0:
        raise MonitoringError(f"window_hours={hours} must be positive")
    if log_df.empty:
        return log_df
    end = log_df["event_ts"].max()
    return log_df[log_df["event_ts"] > end - pd.Timedelta(hours=hours)].reset_index(drop=True)


# --- drift -------------------------------------------------------------------------------------


def psi(expected: Sequence[float], actual: Sequence[float], eps: float = EPSILON) -> float:
    """Population Stability Index of two distributions over the same bins (counts or shares).

    Each side is normalised to shares, empty bins get `eps` so the log stays finite.
    Rule of thumb: < 0.1 stable, 0.1-0.2 moderate shift, > 0.2 significant shift.
    """
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    if e.shape != a.shape or e.ndim != 1 or len(e) == 0:
        raise MonitoringError(f"PSI needs two equal-length bin vectors, got {e.shape} and {a.shape}")
    if e.sum() <= 0 or a.sum() <= 0:
        raise MonitoringError("PSI needs at least one observation on each side")
    e = np.clip(e / e.sum(), eps, None)
    a = np.clip(a / a.sum(), eps, None)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_drift(values: Sequence[float], reference: Mapping[str, Any], eps: float = EPSILON) -> dict[str, float]:
    """PSI on the reference bins (live counts smoothed) plus a two-sample KS test against the
    reference sample."""
    x = pd.to_numeric(pd.Series(values), errors="raise").dropna().to_numpy(dtype=float)
    if len(x) == 0:
        return {"psi": math.nan, "ks_stat": math.nan, "ks_pvalue": math.nan}
    live = np.asarray(bin_counts(x, reference["edges"]), dtype=float) + LIVE_PSEUDO_COUNT  # profile's binning
    score = psi(reference["counts"], live, eps)
    sample = np.asarray(reference.get("sample") or [], dtype=float)
    if len(sample):
        ks = ks_2samp(x, sample)
        ks_stat, ks_pvalue = float(ks.statistic), float(ks.pvalue)
    else:
        ks_stat = ks_pvalue = math.nan
    return {"psi": score, "ks_stat": ks_stat, "ks_pvalue": ks_pvalue}


def categorical_psi(values: Sequence[Any], frequencies: Mapping[str, float], eps: float = EPSILON) -> float:
    """PSI over the reference categories, live counts smoothed like numeric bins.

    A live value the reference does not list counts as `__other__` (as the profile files
    out-of-vocabulary training values); a reference share of zero becomes `eps`.
    """
    live = pd.Series(values).dropna().astype(str)
    live = live.where(live.isin(list(frequencies)), OTHER)
    current = live.value_counts()
    if current.empty:
        return math.nan
    categories = sorted(set(map(str, frequencies)) | set(current.index))
    expected = [float(frequencies.get(c, 0.0)) for c in categories]
    actual = [float(current.get(c, 0)) + LIVE_PSEUDO_COUNT for c in categories]
    return psi(expected, actual, eps)


def drift_table(df: pd.DataFrame, profile: Mapping[str, Any], threshold: float) -> pd.DataFrame:
    """Per-feature drift of the logged inputs (and predicted probabilities) against the profile.

    Columns: feature, kind (numeric / categorical / prediction), psi, ks_stat, ks_pvalue (NaN for
    categoricals), drifted (psi > threshold). Sorted by PSI, largest first.
    """
    rows: list[dict[str, Any]] = []
    numeric = profile.get("numeric") or {}
    categorical = profile.get("categorical") or {}
    missing = [c for c in [*numeric, *categorical] if c not in df.columns]
    if missing:
        raise MonitoringError(
            f"prediction log lacks profiled feature column(s): {', '.join(missing)}; "
            "the metrics store must log every raw model input"
        )
    for col, ref in numeric.items():
        rows.append({"feature": col, "kind": "numeric", **numeric_drift(df[col], ref)})
    for col, ref in categorical.items():
        score = categorical_psi(df[col], ref["frequencies"])
        rows.append({"feature": col, "kind": "categorical", "psi": score, "ks_stat": math.nan, "ks_pvalue": math.nan})
    if profile.get("prediction"):
        rows.append(
            {
                "feature": PREDICTION_FEATURE,
                "kind": "prediction",
                **numeric_drift(df["probability"], profile["prediction"]),
            }
        )
    out = pd.DataFrame(rows, columns=list(DRIFT_COLUMNS[:-1]))
    out["drifted"] = out["psi"] > threshold
    return out.sort_values("psi", ascending=False, na_position="last", kind="stable").reset_index(drop=True)


# --- alerts ------------------------------------------------------------------------------------


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
        return self.status == FIRING


def _rule(name: str, value: float, threshold: float, fires: bool, detail: str = "") -> AlertResult:
    if value is None or math.isnan(value):
        return AlertResult(name, NO_DATA, math.nan, threshold, detail)
    return AlertResult(name, FIRING if fires else OK, float(value), threshold, detail)


def evaluate_alerts(window: pd.DataFrame, drift: pd.DataFrame | None, settings: Settings) -> list[AlertResult]:
    """Apply the alert thresholds from settings to one window of the log and its drift table.

    Rules: accuracy below `alert_min_accuracy` (labelled rows only), largest feature PSI and
    prediction PSI above `alert_max_psi`, p95 server latency above `alert_max_p95_latency_ms`.
    A rule without data says so instead of passing.
    """
    stats = summarize(prepare_log(window))
    accuracy = stats["accuracy"]
    p95 = stats["latency_p95_ms"]
    results = [
        _rule(
            "accuracy",
            accuracy,
            settings.alert_min_accuracy,
            accuracy < settings.alert_min_accuracy,
            f"{stats['labeled']} labelled of {stats['requests']}",
        ),
    ]
    drift = drift if drift is not None else pd.DataFrame(columns=list(DRIFT_COLUMNS))
    for name, kinds in (
        ("data_drift_psi", ("numeric", "categorical")),
        ("prediction_drift_psi", ("prediction",)),
    ):
        part = drift[drift["kind"].isin(kinds)].dropna(subset=["psi"])
        if part.empty:
            results.append(_rule(name, math.nan, settings.alert_max_psi, False))
            continue
        top = part.loc[part["psi"].idxmax()]
        over = part.loc[part["psi"] > settings.alert_max_psi, "feature"].tolist()
        detail = f"drifted: {', '.join(over)}" if over else f"largest: {top['feature']}"
        results.append(_rule(name, float(top["psi"]), settings.alert_max_psi, bool(over), detail))
    results.append(
        _rule(
            "p95_latency_ms",
            p95,
            settings.alert_max_p95_latency_ms,
            p95 > settings.alert_max_p95_latency_ms,
            f"{stats['requests']} requests",
        )
    )
    return results


def alerts_frame(alerts: Sequence[AlertResult]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "rule": a.name,
                "status": a.status,
                "value": a.value,
                "threshold": a.threshold,
                "detail": a.detail,
            }
            for a in alerts
        ],
        columns=["rule", "status", "value", "threshold", "detail"],
    )


def format_alerts(alerts: Sequence[AlertResult]) -> str:
    """A fixed-width table for the terminal."""
    lines = [f"{'rule':22} {'status':8} {'value':>10} {'threshold':>10}  detail"]
    for a in alerts:
        value = "-" if math.isnan(a.value) else f"{a.value:.4f}"
        lines.append(f"{a.name:22} {a.status:8} {value:>10} {a.threshold:>10.4g}  {a.detail}")
    return "\n".join(lines)


# --- loading from the stores -------------------------------------------------------------------


def load_log(settings: Settings) -> pd.DataFrame:
    """This project's model's prediction log with ground truth, normalised.

    The metrics database may be shared by several users' models; only `settings.model_name`
    counts. An empty log is an error naming the script that fills it.
    """
    from lib.metrics_store import MetricsStore

    df = MetricsStore(settings.metrics_db_url).read_predictions()
    df = df[df["model_name"] == settings.model_name]
    if df.empty:
        raise MonitoringError(
            f"no predictions of {settings.model_name} logged in {settings.metrics_db_url}: "
            "run 08_model_simulation.py first"
        )
    return prepare_log(df)


class _WarningsOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


_WARNINGS_ONLY = _WarningsOnly()


def reference_profile(settings: Settings, model_version: str) -> dict[str, Any]:
    """The training profile of the run behind a registered version of the project's model."""
    # MLflow re-runs its alembic migrations on every SQLite store it opens, and alembic's logging
    # config switches their INFO lines on; a filter on the logger survives that reconfiguration.
    logging.getLogger("alembic.runtime.migration").addFilter(_WARNINGS_ONLY)
    from lib.profile import ProfileError, load_profile
    from lib.registry import RegistryError, describe
    from lib.training import quiet_mlflow

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


# --- charts ------------------------------------------------------------------------------------


def version_colors(versions: Sequence[str]) -> dict[str, Any]:
    """A stable colour per model version, in deployment order."""
    from matplotlib import colormaps

    palette = colormaps["tab10"].colors
    return {v: palette[i % len(palette)] for i, v in enumerate(versions)}


def _mark_redeploys(ax: Any, deploy: pd.DataFrame, colors: Mapping[str, Any], label: bool) -> None:
    for row in deploy.iloc[1:].itertuples():
        ax.axvline(
            row.first_event_ts,
            color=colors[row.model_version],
            linestyle="--",
            linewidth=1.2,
            label=f"redeploy: v{row.model_version}" if label else None,
        )


def _plot_by_version(ax: Any, perf: pd.DataFrame, column: str, colors: Mapping[str, Any], **kw: Any) -> None:
    for version, part in perf.groupby("model_version", sort=False):
        ax.plot(
            part["window_start"],
            part[column],
            marker="o",
            color=colors[version],
            label=f"v{version}{kw.get('suffix', '')}",
            linestyle=kw.get("linestyle", "-"),
        )


def _finish_time_axes(fig: Figure, axes: Sequence[Any]) -> None:
    import matplotlib.dates as mdates

    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    fig.tight_layout()


def plot_traffic(report: MonitoringReport, settings: Settings) -> Figure:
    """Request volume, latency p50/p95 and positive prediction rate per window and version."""
    from matplotlib.figure import Figure

    perf, deploy = report.performance, report.deployments
    colors = version_colors(deploy["model_version"].tolist())
    fig = Figure(figsize=(11, 9))
    axes = fig.subplots(3, 1, sharex=True)
    width = pd.Timedelta(report.freq) * 0.8
    bottom = pd.Series(0.0, index=sorted(perf["window_start"].unique()))
    for version, part in perf.groupby("model_version", sort=False):
        counts = part.set_index("window_start")["requests"].reindex(bottom.index, fill_value=0)
        axes[0].bar(
            bottom.index,
            counts,
            width=width,
            bottom=bottom,
            color=colors[version],
            align="edge",
            label=f"v{version}",
        )
        bottom = bottom + counts
    axes[0].set_ylabel("requests")
    axes[0].set_title(f"Request volume per {report.freq} window")
    _plot_by_version(axes[1], perf, "latency_p50_ms", colors, suffix=" p50", linestyle=":")
    _plot_by_version(axes[1], perf, "latency_p95_ms", colors, suffix=" p95")
    axes[1].axhline(settings.alert_max_p95_latency_ms, color="red", linewidth=1, label="p95 alert threshold")
    axes[1].set_ylabel("server latency (ms)")
    axes[1].set_title("Latency (server-side)")
    _plot_by_version(axes[2], perf, "positive_rate", colors)
    axes[2].set_ylabel("share predicted 'yes'")
    axes[2].set_title("Prediction (positive) rate")
    for i, ax in enumerate(axes):
        _mark_redeploys(ax, deploy, colors, label=i == 0)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    _finish_time_axes(fig, axes)
    return fig


def plot_quality(report: MonitoringReport, settings: Settings) -> Figure:
    """Accuracy, precision, recall and F1 on labelled rows per window and version."""
    from matplotlib.figure import Figure

    perf, deploy = report.performance, report.deployments
    colors = version_colors(deploy["model_version"].tolist())
    fig = Figure(figsize=(11, 7))
    axes = fig.subplots(2, 2, sharex=True).ravel()
    for ax, metric in zip(axes, ("accuracy", "precision", "recall", "f1"), strict=True):
        _plot_by_version(ax, perf, metric, colors)
        if metric == "accuracy":
            ax.axhline(settings.alert_min_accuracy, color="red", linewidth=1, label="alert threshold")
        _mark_redeploys(ax, deploy, colors, label=True)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{metric} (labelled rows, per {report.freq})")
        ax.legend(loc="lower left", fontsize=8)
    _finish_time_axes(fig, axes)
    return fig


def plot_drift(report: MonitoringReport, settings: Settings) -> Figure:
    """PSI per feature (and of the predicted probability) with the alert threshold."""
    from matplotlib.figure import Figure

    drift = report.drift.dropna(subset=["psi"]).sort_values("psi")
    fig = Figure(figsize=(9, max(3.0, 0.35 * len(drift) + 1.5)))
    ax = fig.subplots()
    colors = ["tab:red" if d else "tab:blue" for d in drift["drifted"]]
    short = {"numeric": "num", "categorical": "cat", "prediction": "output"}
    labels = [f"{f} ({short[k]})" for f, k in zip(drift["feature"], drift["kind"], strict=True)]
    bars = ax.barh(labels, drift["psi"], color=colors)
    ax.bar_label(bars, fmt="%.3f", padding=3, fontsize=8)
    ax.axvline(
        settings.alert_max_psi,
        color="red",
        linestyle="--",
        linewidth=1,
        label=f"threshold {settings.alert_max_psi:g}",
    )
    ax.set_xlabel("PSI vs training profile")
    ax.set_title(f"Drift of the recent window, model v{report.model_version}")
    ax.legend(loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


# --- files -------------------------------------------------------------------------------------

FIGURES = {"traffic": plot_traffic, "quality": plot_quality, "drift": plot_drift}
DASHBOARD_FILE = "monitoring_dashboard.html"
READING_GUIDE = (
    "Time runs along event time; each model version has its own colour and a dashed vertical line "
    "marks the first request a new version served (a redeploy). Quality metrics are computed only on "
    "requests whose ground truth has arrived, so the newest windows can lag. Accuracy under the red "
    "line, PSI bars beyond the dashed threshold (PSI > 0.2 is a significant shift; < 0.1 is stable) "
    "or p95 latency above its line fire the matching alert; `python -m lib.monitoring check "
    "--trigger-retrain` then starts the retraining chain."
)


def figure_path(out_dir: Path, name: str) -> Path:
    """Where the dashboard's chart `name` is saved (one naming scheme for notebook and CLI)."""
    return out_dir / f"monitoring_{name}.png"


@contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    """A temp file next to `path` that replaces it only when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def save_figure(fig: Figure, path: Path) -> Path:
    """Write a figure as PNG atomically."""
    with _atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path


def _num(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def summary_text(report: MonitoringReport) -> str:
    """A few sentences with the current numbers, for the dashboard's written reading."""
    w = report.window
    stats = summarize(w)
    start, end = w["event_ts"].min(), w["event_ts"].max()
    drifted = report.drift[report.drift["drifted"]]
    top = report.drift.dropna(subset=["psi"]).head(1)
    firing = report.firing
    versions = report.deployments["model_version"].tolist()
    lines = [
        f"The log holds {len(report.predictions):,} predictions from model version(s) "
        f"{', '.join('v' + v for v in versions)} of {report.model_name}; "
        f"{int(report.predictions['label'].notna().sum()):,} have ground truth.",
        f"Recent window {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC: {stats['requests']:,} requests, "
        f"accuracy {_num(stats['accuracy'])} on {stats['labeled']:,} labelled rows, "
        f"F1 {_num(stats['f1'])}, positive rate {_num(stats['positive_rate'])}, "
        f"p95 latency {_num(stats['latency_p95_ms'], 1)} ms.",
    ]
    if not top.empty:
        lines.append(
            f"{len(drifted)} of {len(report.drift)} monitored inputs drift beyond the PSI threshold; "
            f"the largest PSI is {top['psi'].iloc[0]:.3f} ({top['feature'].iloc[0]})."
        )
    lines.append("Alerts firing: " + ", ".join(a.name for a in firing) + "." if firing else "No alert is firing.")
    return " ".join(lines)


def write_dashboard_html(report: MonitoringReport, figures: Mapping[str, Path], path: Path) -> Path:
    """One self-contained HTML page: PNGs embedded as base64, tables as HTML, the summary text."""

    def img(name: str) -> str:
        data = base64.b64encode(figures[name].read_bytes()).decode("ascii")
        return f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'

    def table(df: pd.DataFrame) -> str:
        return df.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep="-", border=0, classes="t")

    perf = report.performance.copy()
    perf["window_start"] = perf["window_start"].dt.strftime("%Y-%m-%d %H:%M")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = [
        f"<h1>Model monitoring: {html.escape(report.model_name)}</h1>",
        f"<p class='m'>generated {stamp}; serving version v{html.escape(report.model_version)}</p>",
        f"<p>{html.escape(summary_text(report))}</p>",
        f"<p class='m'>{html.escape(READING_GUIDE)}</p>",
        "<h2>Alerts (recent window)</h2>",
        table(alerts_frame(report.alerts)),
        "<h2>Traffic</h2>",
        img("traffic") if "traffic" in figures else "",
        "<h2>Model quality</h2>",
        img("quality") if "quality" in figures else "",
        "<h2>Drift against the training profile</h2>",
        img("drift") if "drift" in figures else "",
        table(report.drift),
        f"<h2>Performance per {html.escape(report.freq)} window</h2>",
        table(perf),
    ]
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "img{max-width:100%}.t{border-collapse:collapse;font-size:13px}"
        ".t td,.t th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}.m{color:#666}"
    )
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Model monitoring</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>"
    )
    with _atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


@dataclass(frozen=True)
class DashboardFiles:
    figures: dict[str, Path]
    html: Path


def render_dashboard(report: MonitoringReport, settings: Settings, out_dir: Path | None = None) -> DashboardFiles:
    """Save every chart as PNG and the whole dashboard as HTML under `out_dir` (reports_dir)."""
    out = out_dir or settings.reports_dir
    figures = {name: save_figure(plot(report, settings), figure_path(out, name)) for name, plot in FIGURES.items()}
    page = write_dashboard_html(report, figures, out / DASHBOARD_FILE)
    return DashboardFiles(figures=figures, html=page)


# --- CLI ---------------------------------------------------------------------------------------


def trigger_retrain(settings: Settings) -> ChainResult:
    """Start the "Retrain Models" job chain because an alert fired (not because of a schedule)."""
    from lib.jobs import run_chain

    log.info("alert fired: starting the %r job chain", RETRAIN_CHAIN)
    return run_chain(settings, RETRAIN_CHAIN, trigger="alert")


def _add_window_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--window-hours",
        type=float,
        default=None,
        help=f"judge the last H hours of event time (default {DEFAULT_WINDOW_HOURS:g})",
    )
    group.add_argument("--last", type=int, default=None, help="judge the last N predictions instead")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lib.monitoring",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="evaluate the alert rules on the recent window")
    _add_window_args(check)
    check.add_argument(
        "--trigger-retrain",
        action="store_true",
        help=f"start the {RETRAIN_CHAIN!r} job chain when a rule fires",
    )
    report_p = sub.add_parser("report", help="render the dashboard (PNG + HTML) into the reports dir")
    _add_window_args(report_p)
    report_p.add_argument("--freq", default=DEFAULT_FREQ, help="time window of the charts (default %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("lib").setLevel(logging.INFO)  # our progress lines, not MLflow's/alembic's
    settings = cli_settings()
    try:
        if args.command == "report":
            report = build_report(settings, window_hours=args.window_hours, last=args.last, freq=args.freq)
            files = render_dashboard(report, settings)
            print(format_alerts(report.alerts))
            print(f"dashboard : {files.html}")
            for path in files.figures.values():
                print(f"figure    : {path}")
            return 0
        report = build_report(settings, window_hours=args.window_hours, last=args.last)
    except MonitoringError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    w = report.window
    print(
        f"window    : {w['event_ts'].min():%Y-%m-%d %H:%M} .. {w['event_ts'].max():%Y-%m-%d %H:%M} UTC, "
        f"{len(w):,} predictions, model {report.model_name} v{report.model_version}"
    )
    print(format_alerts(report.alerts))
    if not report.firing:
        print("status    : no alert firing")
        return 0
    print(f"status    : FIRING ({', '.join(a.name for a in report.firing)})")
    if args.trigger_retrain:
        from lib.jobs import JobError

        try:
            result = trigger_retrain(settings)
        except JobError as exc:
            print(f"error: cannot start the {RETRAIN_CHAIN!r} chain: {exc}", file=sys.stderr)
            return 1
        print(f"retrain   : {result}")
        if not result.ok:
            print(f"error: the {RETRAIN_CHAIN!r} chain failed; see {settings.jobs_log_dir}", file=sys.stderr)
            return 1
    else:
        print("next      : python -m lib.monitoring check --trigger-retrain (or python 06_retrain.py)")
    return EXIT_FIRING


if __name__ == "__main__":
    sys.exit(main())
