"""Monitoring judges only the champion's traffic (issue 17): after a redeploy with no new requests,
`check --trigger-retrain` must not fire on the previous version's window, and says so."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from prometheus_client import generate_latest

from lib import registry
from lib.config import PROJECT_ROOT, Settings
from lib.monitoring.exporter import build_registry
from lib.monitoring.report import build_report
from tests.integration.test_dashboard_notebook import PER_VERSION, env_for, fill_log
from tests.integration.test_monitoring_exporter import scrape

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # registered models, a logged week, subprocesses


def test_a_redeploy_without_traffic_fires_nothing(
    registered_model: tuple[Settings, list[str]], bank_sample: pd.DataFrame, tmp_path: Path
) -> None:
    settings, versions = registered_model
    fill_log(settings, versions[:1], bank_sample)  # only v1 served; v2 is the champion now
    strict = dataclasses.replace(settings, alert_min_accuracy=0.99)  # v1's traffic would fire

    report = build_report(strict, window_hours=24)
    assert report.model_version == "2" and report.no_traffic
    assert len(report.predictions) == PER_VERSION  # the charts still show v1's history
    assert {a.status for a in report.alerts} == {"no-data"}
    assert all(a.detail == "no traffic for v2 yet" for a in report.alerts)

    metrics = scrape(generate_latest(build_registry(strict, window_hours=24)).decode())
    assert metrics["bank_monitoring_up"] == {(): 1.0}
    firing = metrics["bank_monitoring_alert_firing"]
    assert {dict(k)["model_version"] for k in firing} == {"2"} and all(math.isnan(v) for v in firing.values())
    assert "bank_monitoring_window_predictions" not in metrics

    (tmp_path / "retrain.py").write_text("from pathlib import Path\nPath('retrained.txt').write_text('yes')\n")
    (tmp_path / "jobs.yaml").write_text(textwrap.dedent("""\
        jobs:
          - name: Retrain Models
            script: retrain.py
        """))  # fmt: skip
    env = env_for(settings, ALERT_MIN_ACCURACY="0.99", JOBS_SPEC=str(tmp_path / "jobs.yaml"),
                  JOBS_LOG_DIR=str(tmp_path / "logs"))  # fmt: skip
    cmd = [sys.executable, "-m", "lib.monitoring", "check", "--window-hours", "24", "--trigger-retrain"]
    done = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no traffic for v2 yet" in done.stdout
    assert not (tmp_path / "retrained.txt").exists()

    # Rolled back to v1: its traffic is judged again, and the strict threshold fires.
    registry.promote(settings, versions[0])
    again = build_report(strict, window_hours=24)
    assert again.model_version == "1" and not again.no_traffic
    assert set(again.window["model_version"]) == {"1"}
    assert {a.name for a in again.firing} == {"accuracy"}


def test_only_the_champions_requests_are_judged(
    registered_model: tuple[Settings, list[str]], bank_sample: pd.DataFrame
) -> None:
    settings, versions = registered_model
    fill_log(settings, versions, bank_sample)  # v1 ordinary, then v2 drifted on balance
    registry.promote(settings, versions[0])  # back to v1, whose requests are older than v2's
    report = build_report(settings, window_hours=24)
    assert report.model_version == "1"
    assert set(report.window["model_version"]) == {"1"} and 0 < len(report.window) < PER_VERSION
    drift = report.drift.set_index("feature")
    assert not drift.loc["balance", "drifted"]  # v2's drifted inputs are not v1's
    assert report.window["event_ts"].max() < report.predictions["event_ts"].max()
