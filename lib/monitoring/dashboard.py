"""The dashboard page, one self-contained HTML file written atomically.

It holds a written summary, the alert table, the charts (PNGs embedded) and the tables.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from lib.config import Settings
from lib.fileio import atomic_write_text
from lib.monitoring.alerts import alerts_frame
from lib.monitoring.charts import FIGURES, figure_path, save_figure
from lib.monitoring.performance import summarize
from lib.monitoring.report import MonitoringReport

DASHBOARD_FILE = "monitoring_dashboard.html"
READING_GUIDE = (
    "Time runs along event time; each model version has its own colour and a dashed vertical line "
    "marks the first request a new version served (a redeploy). Quality metrics are computed only on "
    "requests whose ground truth has arrived, so the newest windows can lag. Accuracy under the red "
    "line, PSI bars beyond the dashed threshold (PSI > 0.2 is a significant shift; < 0.1 is stable) "
    "or p95 latency above its line fire the matching alert; `python -m lib.monitoring check "
    "--trigger-retrain` then starts the retraining chain."
)


def _num(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def summary_text(report: MonitoringReport) -> str:
    """A few sentences with the current numbers, for the dashboard's written reading."""
    w = report.window
    stats = summarize(w)
    start, end = w["event_ts"].min(), w["event_ts"].max()
    if report.no_traffic:
        from lib.monitoring.report import no_traffic_message

        return (
            f"The log holds {len(report.predictions):,} predictions of {report.model_name}; "
            f"{no_traffic_message(report.model_version)} (the registry's champion), so no alert can fire."
        )
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
    atomic_write_text(path, page)
    return path


@dataclass(frozen=True)
class DashboardFiles:
    """What `render_dashboard` wrote."""

    figures: dict[str, Path]
    html: Path


def render_dashboard(report: MonitoringReport, settings: Settings, out_dir: Path | None = None) -> DashboardFiles:
    """Save every chart as PNG and the whole dashboard as HTML under `out_dir` (reports_dir)."""
    out = out_dir or settings.reports_dir
    figures = {name: save_figure(plot(report, settings), figure_path(out, name)) for name, plot in FIGURES.items()}
    page = write_dashboard_html(report, figures, out / DASHBOARD_FILE)
    return DashboardFiles(figures=figures, html=page)
