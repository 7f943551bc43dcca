"""The server's Prometheus metrics.

Requests, errors and latency per route and served version, records scored, hot swaps, and the
state of the prediction-log writer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from lib.serving.loader import LoadedModel, ModelHolder
from lib.serving.prediction_log import PredictionWriter

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """Prometheus counters and latency histogram per route and model version."""

    def __init__(self, holder: ModelHolder, writer: PredictionWriter) -> None:
        self.registry = CollectorRegistry()
        self.holder = holder
        self.routes: frozenset[str] = frozenset()
        self._children: dict[tuple[str, int, str], tuple[Any, Any, Any]] = {}
        self._scored: dict[str, Any] = {}
        self.requests = Counter(
            "bank_model_requests",
            "HTTP requests",
            ["route", "status", "model_version"],
            registry=self.registry,
        )
        self.errors = Counter(
            "bank_model_errors", "HTTP requests answered 4xx/5xx", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "bank_model_request_latency_seconds",
            "time from request start to response start",
            ["route", "model_version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "bank_model_predictions", "records scored", ["model_version"], registry=self.registry
        )
        self.swaps = Counter("bank_model_swaps", "hot swaps of the served model", registry=self.registry)
        self.fast_path = Counter(
            "bank_model_fast_path_requests",
            "valid scoring requests answered by the fast path (lib.serving.fastpath), not FastAPI's routing",
            registry=self.registry,
        )
        self.info = Gauge(
            "bank_model_info",
            "the served model (value 1)",
            ["model_name", "model_version"],
            registry=self.registry,
        )
        self._writer_gauges(writer)

    def _writer_gauges(self, writer: PredictionWriter) -> None:
        backlog = Gauge("bank_prediction_log_backlog_rows", "rows waiting for the database", registry=self.registry)
        backlog.set_function(lambda: writer.backlog)
        written = Gauge("bank_prediction_log_written_rows", "rows written since start", registry=self.registry)
        written.set_function(lambda: writer.written)
        dropped = Gauge("bank_prediction_log_dropped_rows", "rows lost: database unavailable", registry=self.registry)
        dropped.set_function(lambda: writer.dropped)
        up = Gauge("bank_prediction_log_writer_up", "1 while the writer process runs", registry=self.registry)
        up.set_function(lambda: 1.0 if writer.alive else 0.0)

    def label_routes(self, paths: Iterable[str]) -> None:
        """The paths counted under their own name; any other path is counted as "other"."""
        self.routes = frozenset(paths)

    def swapped(self, old: LoadedModel | None, new: LoadedModel) -> None:
        """Hot-swap hook: move the served-model info gauge to the new version and count the swap."""
        if old is not None:
            self.info.remove(old.name, old.version)
            self.swaps.inc()
        self.info.labels(new.name, new.version).set(1)

    def version(self) -> str:
        """The served version for metric labels, "none" before a model is loaded."""
        current = self.holder.current
        return current.version if current is not None else "none"

    def scored(self, version: str, records: int) -> None:
        """Count scored records; the version's child is cached (labels() costs more than inc())."""
        child = self._scored.get(version)
        if child is None:
            child = self._scored[version] = self.predictions.labels(version)
        child.inc(records)

    def observe(self, path: str, status: int, seconds: float) -> None:
        """Record one response; label children are cached (labels() costs more than inc())."""
        route = path if path in self.routes else "other"
        key = (route, status, self.version())
        children = self._children.get(key)
        if children is None:
            route_, status_, version = route, str(status), key[2]
            children = (
                self.requests.labels(route_, status_, version),
                self.latency.labels(route_, version),
                self.errors.labels(route_, status_) if status >= 400 else None,
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if children[2] is not None:
            children[2].inc()
