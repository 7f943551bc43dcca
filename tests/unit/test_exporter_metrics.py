"""Names, labels and values of the Prometheus families, built from in-memory results (no database)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pandas as pd
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from lib.metrics_store import VersionCount
from lib.monitoring.alerts import FIRING, NO_DATA, OK, AlertResult
from lib.monitoring.exporter import (
    alert_family,
    alert_value,
    count_families,
    drift_families,
    metric_name,
    window_families,
)


class Fixed:
    """A collector that yields families made in the test."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def exposed(families: list[Metric]) -> dict[str, list]:
    """Render through prometheus_client's text format and parse back: family name -> samples."""
    registry = CollectorRegistry()
    registry.register(Fixed(families))
    text = generate_latest(registry).decode()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


@pytest.mark.parametrize(
    ("parts", "unit", "expected"),
    [
        (("accuracy",), "ratio", "bank_monitoring_accuracy_ratio"),
        (("last_event_timestamp",), "seconds", "bank_monitoring_last_event_timestamp_seconds"),
        (("Feature PSI",), "", "bank_monitoring_feature_psi"),
        (("p95-latency.ms",), "", "bank_monitoring_p95_latency_ms"),
    ],
)
def test_metric_names_follow_the_prometheus_charset(parts: tuple[str, ...], unit: str, expected: str) -> None:
    assert metric_name(*parts, unit=unit) == expected


def test_alert_values_are_one_zero_and_nan_without_data() -> None:
    assert alert_value(FIRING) == 1.0
    assert alert_value(OK) == 0.0
    assert math.isnan(alert_value(NO_DATA))


def test_log_counts_become_total_counters_per_version() -> None:
    samples = exposed(count_families([VersionCount("m", "1", 10, 4), VersionCount("m", "2", 5, 0)]))
    assert set(samples) == {"bank_monitoring_predictions", "bank_monitoring_labels"}
    totals = {(s.name, s.labels["model_version"]): s.value for f in samples.values() for s in f}
    assert totals == {
        ("bank_monitoring_predictions_total", "1"): 10,
        ("bank_monitoring_predictions_total", "2"): 5,
        ("bank_monitoring_labels_total", "1"): 4,
        ("bank_monitoring_labels_total", "2"): 0,
    }


def test_drift_splits_features_from_the_prediction_and_keeps_nan() -> None:
    drift = pd.DataFrame(
        {
            "feature": ["balance", "age", "job", "probability"],
            "kind": ["numeric", "numeric", "categorical", "prediction"],
            "psi": [1.5, 0.01, math.nan, 0.3],
        }
    )
    samples = exposed(drift_families(drift, "bank-promo-x", "3"))
    features = {s.labels["feature"]: s.value for s in samples["bank_monitoring_feature_psi"]}
    assert features["balance"] == 1.5 and features["age"] == 0.01 and math.isnan(features["job"])
    assert "probability" not in features
    (pred,) = samples["bank_monitoring_prediction_psi"]
    assert pred.value == 0.3 and pred.labels == {"model_name": "bank-promo-x", "model_version": "3"}


def test_one_alert_series_per_rule() -> None:
    alerts = [
        AlertResult("accuracy", FIRING, 0.6, 0.85),
        AlertResult("data_drift_psi", OK, 0.1, 0.2),
        AlertResult("p95_latency_ms", NO_DATA, math.nan, 50.0),
    ]
    (family,) = exposed([alert_family(alerts, "m", "2")]).values()
    by_rule = {s.labels["rule"]: s.value for s in family}
    assert by_rule["accuracy"] == 1.0 and by_rule["data_drift_psi"] == 0.0
    assert math.isnan(by_rule["p95_latency_ms"])
    assert {s.labels["model_version"] for s in family} == {"2"}


def test_window_quality_is_per_version_and_nan_without_labels() -> None:
    window = pd.DataFrame(
        {
            "event_ts": pd.to_datetime(["2025-06-01 00:00", "2025-06-01 01:00", "2025-06-01 02:00"], utc=True),
            "model_version": ["1", "1", "2"],
            "prediction": [1, 0, 1],
            "probability": [0.9, 0.2, 0.8],
            "label": pd.array([1, 1, pd.NA], dtype="Int64"),
            "latency_ms": [3.0, 4.0, 5.0],
        }
    )
    samples = exposed(window_families(window, "m"))
    accuracy = {s.labels["model_version"]: s.value for s in samples["bank_monitoring_accuracy_ratio"]}
    assert accuracy["1"] == 0.5 and math.isnan(accuracy["2"])
    recall = {s.labels["model_version"]: s.value for s in samples["bank_monitoring_recall_ratio"]}
    assert recall["1"] == 0.5
    volume = {s.labels["model_version"]: s.value for s in samples["bank_monitoring_window_predictions"]}
    assert volume == {"1": 2.0, "2": 1.0}
    labels = {s.labels["model_version"]: s.value for s in samples["bank_monitoring_window_labels"]}
    assert labels == {"1": 2.0, "2": 0.0}
    last = {s.labels["model_version"]: s.value for s in samples["bank_monitoring_last_event_timestamp_seconds"]}
    assert last["2"] == pd.Timestamp("2025-06-01 02:00", tz="UTC").timestamp()
