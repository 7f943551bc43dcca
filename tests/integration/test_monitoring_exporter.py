"""The Prometheus exporter over a real prediction log: two registered tiny models, their real
predictions and delayed labels (the dashboard test's log: v2 drifted on balance, accuracy falling
below the threshold), collected in-process and scraped from `python -m lib.monitoring exporter`."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
import uuid
from datetime import datetime, timezone

import pandas as pd
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from lib.config import PROJECT_ROOT, Settings
from lib.features import RAW_COLUMNS, TARGET
from lib.metrics_store import MetricsStore
from lib.monitoring.exporter import build_registry
from lib.serving.log_rows import PredictionRow
from tests.integration.test_dashboard_notebook import PER_VERSION, env_for, fill_log

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # registered models, a logged week, a subprocess


@pytest.fixture
def logged(registered_model: tuple[Settings, list[str]], bank_sample: pd.DataFrame) -> Settings:
    settings, versions = registered_model
    fill_log(settings, versions, bank_sample)
    return settings


def scrape(text: str) -> dict[str, dict[tuple, float]]:
    """Exposition text -> sample name -> {sorted label items: value}."""
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def by(samples: dict[tuple, float], label: str) -> dict[str, float]:
    return {dict(key)[label]: value for key, value in samples.items()}


def test_collected_families_match_the_log_and_the_alert_verdicts(logged: Settings, bank_sample: pd.DataFrame) -> None:
    registry = build_registry(logged, window_hours=24)
    metrics = scrape(generate_latest(registry).decode())

    assert metrics["bank_monitoring_up"] == {(): 1.0}
    assert by(metrics["bank_monitoring_predictions_total"], "model_version") == {"1": PER_VERSION, "2": PER_VERSION}
    assert by(metrics["bank_monitoring_labels_total"], "model_version") == {"1": PER_VERSION, "2": PER_VERSION}
    assert {dict(k)["model_name"] for k in metrics["bank_monitoring_predictions_total"]} == {logged.model_name}

    firing = by(metrics["bank_monitoring_alert_firing"], "rule")
    assert set(firing) == {"accuracy", "data_drift_psi", "prediction_drift_psi", "p95_latency_ms"}
    assert firing["accuracy"] == 1.0 and firing["data_drift_psi"] == 1.0 and firing["p95_latency_ms"] == 0.0
    assert {dict(k)["model_version"] for k in metrics["bank_monitoring_alert_firing"]} == {"2"}
    psi = by(metrics["bank_monitoring_feature_psi"], "feature")
    assert psi["balance"] > 1 and psi["age"] < 0.2 and "probability" not in psi
    assert len(metrics["bank_monitoring_prediction_psi"]) == 1
    accuracy = by(metrics["bank_monitoring_accuracy_ratio"], "model_version")
    assert accuracy["2"] < logged.alert_min_accuracy
    window = by(metrics["bank_monitoring_window_predictions"], "model_version")
    assert 0 < window["2"] <= PER_VERSION and sum(window.values()) < 2 * PER_VERSION  # 24 h of a 6-day log
    assert "process_cpu_seconds_total" in metrics and "python_info" in metrics

    # Values are computed at scrape time: five more predictions show in the next scrape's counter.
    record = bank_sample.iloc[0][[c for c in RAW_COLUMNS if c != TARGET]].to_dict()
    now = datetime(2025, 6, 7, tzinfo=timezone.utc).timestamp()
    MetricsStore(logged.metrics_db_url).write_predictions(
        [PredictionRow(str(uuid.uuid4()), now, now, logged.model_name, "2", record, 0.5, 1, 3.0) for _ in range(5)]
    )
    again = scrape(generate_latest(registry).decode())
    assert by(again["bank_monitoring_predictions_total"], "model_version")["2"] == PER_VERSION + 5
    assert by(again["bank_monitoring_labels_total"], "model_version")["2"] == PER_VERSION


def test_an_empty_log_still_answers_with_up_0(table_settings: Settings) -> None:
    metrics = scrape(generate_latest(build_registry(table_settings)).decode())
    assert metrics["bank_monitoring_up"] == {(): 0.0}
    assert "bank_monitoring_predictions_total" not in metrics and "bank_monitoring_alert_firing" not in metrics
    assert "process_cpu_seconds_total" in metrics


def test_exporter_cli_serves_metrics_on_a_free_port(logged: Settings) -> None:
    cmd = [sys.executable, "-m", "lib.monitoring", "exporter", "--port", "0", "--window-hours", "24"]
    proc = subprocess.Popen(
        cmd, cwd=PROJECT_ROOT, env=env_for(logged), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("metrics   : http://127.0.0.1:"), line + (proc.stderr.read() if proc.stderr else "")
        url = line.split(": ", 1)[1].strip()
        with urllib.request.urlopen(url, timeout=120) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            metrics = scrape(response.read().decode())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert metrics["bank_monitoring_up"] == {(): 1.0}
    assert by(metrics["bank_monitoring_predictions_total"], "model_version") == {"1": PER_VERSION, "2": PER_VERSION}
    assert by(metrics["bank_monitoring_alert_firing"], "rule")["accuracy"] == 1.0
    assert "process_resident_memory_bytes" in metrics
