"""Monitoring results as Prometheus metrics, computed from the stores at scrape time.

A custom collector (not module-level Gauges that a loop would have to keep fresh): every scrape
asks the metrics store for the cumulative counts (one GROUP BY query) and judges the recent window
of event time with the same functions as `python -m lib.monitoring check` (`report.load_window`,
`report.judge_window`), so the exporter, the dashboard and `check` cannot disagree.

Families (every one labelled `model_name`, `model_version`):

  bank_monitoring_predictions_total          counter  predictions logged
  bank_monitoring_labels_total               counter  ground-truth labels received for them
  bank_monitoring_feature_psi                gauge    PSI of each input (label `feature`)
  bank_monitoring_prediction_psi             gauge    PSI of the predicted probability
  bank_monitoring_accuracy_ratio             gauge    accuracy on the window's labelled rows
  bank_monitoring_precision_ratio            gauge    precision, same rows
  bank_monitoring_recall_ratio               gauge    recall, same rows
  bank_monitoring_window_predictions         gauge    predictions in the window
  bank_monitoring_window_labels              gauge    labelled predictions in the window
  bank_monitoring_last_event_timestamp_seconds gauge  event time of the newest prediction
  bank_monitoring_alert_firing               gauge    1 firing, 0 ok, NaN no data (label `rule`)
  bank_monitoring_up                         gauge    1 when the window could be judged

Only the counters come from the whole log; the others describe the window: the last 24 h (default)
of event time served by the registry's champion, ending at its newest request. Drift, alerts and
quality are labelled with the champion's version; until it has served a request (right after a
redeploy) every rule is NaN ("no traffic for vN yet") and the window gauges are absent. An
undefined value (no labelled rows, no data for a rule) is NaN rather than an absent series, so a
rule like `bank_monitoring_alert_firing == 1` simply does not match and `absent()` keeps meaning
"the exporter is down". When the window cannot be judged (empty log, no profile for the served
version, database unreachable) the scrape still answers, with `bank_monitoring_up 0` and the
reason in the log.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pandas as pd
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from lib.config import Settings
from lib.metrics_store import MetricsStore, MetricsStoreError, VersionCount
from lib.monitoring import MonitoringError
from lib.monitoring.alerts import FIRING, NO_DATA, AlertResult
from lib.monitoring.drift import PREDICTION_FEATURE
from lib.monitoring.performance import DEFAULT_WINDOW_HOURS, summarize
from lib.monitoring.report import cached_profiles, champion_version, judge_window, load_window

log = logging.getLogger(__name__)

PREFIX = "bank_monitoring"
MODEL_LABELS = ("model_name", "model_version")
QUALITY_RATIOS = ("accuracy", "precision", "recall")
_INVALID = re.compile(r"[^a-zA-Z0-9_]+")


def metric_name(*parts: str, unit: str = "") -> str:
    """`bank_monitoring_<parts>[_<unit>]`: lower case, anything outside [a-z0-9_] becomes `_`.

    Units are Prometheus base units (`seconds`, `ratio`, ...); counters get `_total` from
    prometheus_client itself, so it is never part of the name given here.
    """
    words = [_INVALID.sub("_", p.strip()).strip("_").lower() for p in (PREFIX, *parts, unit) if p]
    name = "_".join(w for w in words if w)
    if not name or name[0].isdigit():
        raise ValueError(f"no valid metric name from {parts!r}")
    return name


def alert_value(status: str) -> float:
    """A rule's verdict as a gauge value: 1 firing, 0 ok, NaN when the rule had no data."""
    if status == NO_DATA:
        return math.nan
    return 1.0 if status == FIRING else 0.0


def count_families(counts: Sequence[VersionCount]) -> list[Metric]:
    """The cumulative prediction-log counts as counters (`..._total`), one series per version."""
    logged = CounterMetricFamily(
        metric_name("predictions"), "Predictions logged in the prediction log.", labels=MODEL_LABELS
    )
    labels = CounterMetricFamily(
        metric_name("labels"), "Ground-truth labels received for logged predictions.", labels=MODEL_LABELS
    )
    for c in counts:
        logged.add_metric([c.model_name, c.model_version], c.rows)
        labels.add_metric([c.model_name, c.model_version], c.labelled)
    return [logged, labels]


def drift_families(drift: pd.DataFrame, model_name: str, model_version: str) -> list[Metric]:
    """PSI per input feature and of the predicted probability against the version's training profile."""
    features = GaugeMetricFamily(
        metric_name("feature_psi"),
        "Population Stability Index of an input over the window against the training profile.",
        labels=(*MODEL_LABELS, "feature"),
    )
    prediction = GaugeMetricFamily(
        metric_name("prediction_psi"),
        "Population Stability Index of the predicted probability over the window.",
        labels=MODEL_LABELS,
    )
    for row in drift.itertuples(index=False):
        value = float(row.psi)
        if row.kind == "prediction" and row.feature == PREDICTION_FEATURE:
            prediction.add_metric([model_name, model_version], value)
        else:
            features.add_metric([model_name, model_version, str(row.feature)], value)
    return [features, prediction]


def alert_family(alerts: Iterable[AlertResult], model_name: str, model_version: str) -> Metric:
    """One series per alert rule: 1 firing, 0 ok, NaN no data."""
    family = GaugeMetricFamily(
        metric_name("alert_firing"),
        "Alert rule verdict on the window: 1 firing, 0 ok, NaN no data.",
        labels=(*MODEL_LABELS, "rule"),
    )
    for a in alerts:
        family.add_metric([model_name, model_version, a.name], alert_value(a.status))
    return family


def window_families(window: pd.DataFrame, model_name: str) -> list[Metric]:
    """Quality on labelled rows and volume of the window, one series per model version in it."""
    quality = {
        m: GaugeMetricFamily(
            metric_name(m, unit="ratio"),
            f"{m.capitalize()} on the window's labelled predictions (NaN without labels).",
            labels=MODEL_LABELS,
        )
        for m in QUALITY_RATIOS
    }
    requests = GaugeMetricFamily(
        metric_name("window_predictions"), "Predictions in the monitoring window.", labels=MODEL_LABELS
    )
    labelled = GaugeMetricFamily(
        metric_name("window_labels"), "Labelled predictions in the monitoring window.", labels=MODEL_LABELS
    )
    last_event = GaugeMetricFamily(
        metric_name("last_event_timestamp", unit="seconds"),
        "Event time of the newest logged prediction (Unix seconds).",
        labels=MODEL_LABELS,
    )
    for version, part in window.groupby("model_version", sort=True):
        key = [model_name, str(version)]
        stats = summarize(part)
        for m in QUALITY_RATIOS:
            quality[m].add_metric(key, float(stats[m]))
        requests.add_metric(key, float(stats["requests"]))
        labelled.add_metric(key, float(stats["labeled"]))
        last_event.add_metric(key, pd.Timestamp(part["event_ts"].max()).timestamp())
    return [*quality.values(), requests, labelled, last_event]


class MonitoringCollector(Collector):
    """Computes every monitoring family from the stores when Prometheus scrapes."""

    def __init__(self, settings: Settings, window_hours: float = DEFAULT_WINDOW_HOURS) -> None:
        self.settings = settings
        self.window_hours = window_hours
        self._profile = cached_profiles()  # a registered version's profile never changes

    def describe(self) -> Iterator[Metric]:
        """The family names without touching the stores (registration must not query them)."""
        yield from count_families([])
        yield from drift_families(pd.DataFrame(columns=["feature", "kind", "psi"]), "", "")
        yield alert_family([], "", "")
        yield from window_families(pd.DataFrame(columns=["model_version", "event_ts"]), "")
        yield GaugeMetricFamily(metric_name("up"), "")

    def collect(self) -> Iterator[Metric]:
        """Read and judge the window now: each scrape sees the stores as they are."""
        s = self.settings
        up = GaugeMetricFamily(metric_name("up"), "1 when the monitoring window could be read and judged, 0 otherwise.")
        try:
            yield from count_families(MetricsStore(s.metrics_db_url).log_counts(model_name=s.model_name))
            version = champion_version(s)
            window = load_window(s, window_hours=self.window_hours, model_version=version)
            drift, alerts = judge_window(s, window, version, profile_loader=self._profile)
        except (MonitoringError, MetricsStoreError, SQLAlchemyError) as exc:
            log.warning("monitoring metrics unavailable: %s", exc)
            up.add_metric([], 0.0)
            yield up
            return
        yield from drift_families(drift, s.model_name, version)
        yield alert_family(alerts, s.model_name, version)
        yield from window_families(window, s.model_name)
        up.add_metric([], 1.0)
        yield up


def build_registry(settings: Settings, window_hours: float = DEFAULT_WINDOW_HOURS) -> CollectorRegistry:
    """A registry with the monitoring collector plus process, platform and GC metrics."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    registry.register(MonitoringCollector(settings, window_hours=window_hours))
    return registry


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """One thread per scrape, so a slow scrape never blocks the next one."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """No access-log line per scrape (Prometheus scrapes every few seconds)."""

    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's signature
        log.debug(format, *args)


def make_exporter_server(registry: CollectorRegistry, host: str, port: int) -> WSGIServer:
    """A WSGI server answering /metrics from `registry`; port 0 picks a free port (`server_port`)."""
    return make_server(host, port, make_wsgi_app(registry), _ThreadingWSGIServer, handler_class=_QuietHandler)
