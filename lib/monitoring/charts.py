"""The dashboard's matplotlib figures of a MonitoringReport (matplotlib is imported here only).

Figures are built on `matplotlib.figure.Figure`, not pyplot, so no GUI backend or global state is
involved; `save_figure` writes them as PNG atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from lib.config import Settings
from lib.fileio import atomic_path
from lib.metrics import QUALITY_THRESHOLD
from lib.monitoring.report import MonitoringReport

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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
        ax.set_title(f"{metric} at {QUALITY_THRESHOLD} (labelled rows, per {report.freq})")
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


FIGURES: dict[str, Callable[[MonitoringReport, Settings], Figure]] = {
    "traffic": plot_traffic,
    "quality": plot_quality,
    "drift": plot_drift,
}


def figure_path(out_dir: Path, name: str) -> Path:
    """Where the dashboard's chart `name` is saved (one naming scheme for notebook and CLI)."""
    return out_dir / f"monitoring_{name}.png"


def save_figure(fig: Figure, path: Path) -> Path:
    """Write a figure as PNG atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path
