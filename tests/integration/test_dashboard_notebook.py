"""The monitoring dashboard and CLI on a real prediction log: two registered tiny models, their
real predictions written through MetricsStore, ground truth with rising label flips and drifted
inputs after the "redeploy". 09 runs headless; `check` fires and starts a real (tiny) job chain."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from lib.batches import generate_batch
from lib.config import PROJECT_ROOT, Settings
from lib.features import RAW_COLUMNS, TARGET, labels_to_int
from lib.metrics_store import MetricsStore
from lib.notebooks import execute_notebook
from lib.serving.log_rows import PredictionRow
from lib.simulation import flip_labels, flip_schedule
from lib.tracking import configure_mlflow

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a served model, logged traffic, a notebook run

NOTEBOOK = PROJECT_ROOT / "09_model_monitoring_dashboard.ipynb"
PER_VERSION = 300


def fill_log(settings: Settings, versions: list[str], bank_sample: pd.DataFrame) -> None:
    """v1 serves 3 days of ordinary traffic, v2 3 days of balance-drifted traffic; labels flip more
    and more (up to 60%) so accuracy falls well below the alert threshold at the end."""
    configure_mlflow(settings)
    store = MetricsStore(settings.metrics_db_url)
    start = datetime(2025, 6, 1, tzinfo=timezone.utc)
    for i, version in enumerate(versions):
        drift = "none" if i == 0 else "balance"
        records = generate_batch(bank_sample, PER_VERSION, seed=10 + i, drift=drift)
        model = mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{version}")
        scored = model.predict(records.loc[:, model.metadata.get_input_schema().input_names()])
        times = [start + timedelta(days=3 * i) + timedelta(days=3) * k / PER_VERSION for k in range(PER_VERSION)]
        inputs = records.loc[:, [c for c in RAW_COLUMNS if c != TARGET]].astype(object).to_dict("records")
        rows = [
            PredictionRow(str(uuid.uuid4()), t.timestamp(), t.timestamp(), settings.model_name, version, rec,
                          float(p), int(y), 3.0 + k % 7)
            for k, (t, rec, p, y) in enumerate(zip(times, inputs, scored["probability"], scored["prediction"],
                                                   strict=True))
        ]  # fmt: skip
        store.write_predictions(rows)
        rates = flip_schedule(PER_VERSION, 0.3 * i, 0.3 + 0.3 * i)
        labels = flip_labels(labels_to_int(records[TARGET]), rates, np.random.default_rng(i))
        store.record_feedback(
            [
                {"uuid": r.uuid, "label": int(y), "event_ts": r.event_ts + 3600}
                for r, y in zip(rows, labels, strict=True)
            ]
        )


@pytest.fixture
def logged(registered_model: tuple[Settings, list[str]], bank_sample: pd.DataFrame) -> Settings:
    settings, versions = registered_model
    fill_log(settings, versions, bank_sample)
    return settings


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    return {**os.environ, "PROJECT_ROOT": str(settings.root), "PROJECT_OWNER": settings.user, **extra}


def log_campaign_economics(settings: Settings, bank_sample: pd.DataFrame) -> None:
    """What 10 logs on the champion (its real probabilities on the sample), without the Spark step."""
    from lib.economics import CampaignEconomics, evaluate_campaign
    from lib.registry import require_champion
    from lib.scoring import log_economics

    info = require_champion(settings)
    model = mlflow.pyfunc.load_model(info.uri)
    proba = model.predict(bank_sample.loc[:, model.metadata.get_input_schema().input_names()])["probability"]
    report = evaluate_campaign(labels_to_int(bank_sample[TARGET]), proba.to_numpy(), CampaignEconomics(5, 100))
    log_economics(settings, info, report, holdout_snapshot=0)


def test_dashboard_notebook_runs_headless_and_writes_png_and_html(
    logged: Settings, bank_sample: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROJECT_ROOT", str(logged.root))
    monkeypatch.setenv("PROJECT_OWNER", logged.user)
    monkeypatch.setenv("REPORTS_DIR", str(tmp_path))
    log_campaign_economics(logged, bank_sample)
    nb = execute_notebook(NOTEBOOK, timeout=300)
    outputs = "\n".join(
        out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )
    assert f"{2 * PER_VERSION:,} logged predictions, {2 * PER_VERSION:,} with ground truth" in outputs
    assert "balance" in outputs and "data_drift_psi" in outputs
    assert "cut-off 0." in outputs and "cumulative_gain" in outputs  # the campaign section, from 10's economics
    for name in ("traffic", "quality", "drift", "gains"):
        assert (tmp_path / f"monitoring_{name}.png").read_bytes()[:4] == b"\x89PNG"
    page = (tmp_path / "monitoring_dashboard.html").read_text()
    assert page.count("data:image/png;base64,") == 3
    assert "firing" in page and "v1, v2" in page
    committed = NOTEBOOK.read_text()
    assert '"outputs": []' in committed and '"execution_count": null' in committed


def test_report_builds_from_the_stores(logged: Settings) -> None:
    from lib.monitoring.report import build_report

    report = build_report(logged, window_hours=24)
    assert report.model_version == "2"
    assert report.deployments["model_version"].tolist() == ["1", "2"]
    assert report.performance["requests"].sum() == 2 * PER_VERSION
    drift = report.drift.set_index("feature")
    assert drift.loc["balance", "drifted"] and drift.loc["balance", "psi"] > 1
    assert not drift.loc["age", "drifted"]
    status = {a.name: a.status for a in report.alerts}
    assert status["accuracy"] == "firing" and status["data_drift_psi"] == "firing"
    assert status["p95_latency_ms"] == "ok"
    first_days = report.performance[report.performance["model_version"] == "1"]
    assert first_days["accuracy"].iloc[0] > report.performance["accuracy"].iloc[-1]


def test_check_exits_2_and_triggers_the_retrain_chain(logged: Settings, tmp_path: Path) -> None:
    (tmp_path / "retrain.py").write_text("from pathlib import Path\nPath('retrained.txt').write_text('yes')\n")
    (tmp_path / "redeploy.py").write_text("from pathlib import Path\nPath('redeployed.txt').write_text('yes')\n")
    (tmp_path / "jobs.yaml").write_text(
        textwrap.dedent(
            """\
            jobs:
              - name: Retrain Models
                script: retrain.py
              - name: Redeploy Model
                script: redeploy.py
                depends_on: Retrain Models
            """
        )
    )
    env = env_for(logged, JOBS_SPEC=str(tmp_path / "jobs.yaml"), JOBS_LOG_DIR=str(tmp_path / "logs"))
    cmd = [sys.executable, "-m", "lib.monitoring", "check", "--window-hours", "24"]
    plain = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert plain.returncode == 2, plain.stderr
    assert "FIRING" in plain.stdout and "accuracy" in plain.stdout
    assert not (tmp_path / "retrained.txt").exists()

    retrain = subprocess.run([*cmd, "--trigger-retrain"], cwd=PROJECT_ROOT, env=env, capture_output=True,
                             text=True, timeout=300)  # fmt: skip
    assert retrain.returncode == 2, retrain.stderr
    assert "Retrain Models: succeeded" in retrain.stdout and "Redeploy Model: succeeded" in retrain.stdout
    assert (tmp_path / "retrained.txt").read_text() == "yes"
    assert (tmp_path / "redeployed.txt").read_text() == "yes"


def test_check_on_an_ordinary_window_passes_and_fails_clearly_without_data(logged: Settings, tmp_path: Path) -> None:
    # With thresholds nothing can cross, every rule with data is ok and the exit code is 0.
    ok = subprocess.run(
        [sys.executable, "-m", "lib.monitoring", "check", "--last", "2000"],
        cwd=PROJECT_ROOT, env=env_for(logged, ALERT_MIN_ACCURACY="0.1", ALERT_MAX_PSI="100"),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "no alert firing" in ok.stdout

    empty = subprocess.run(
        [sys.executable, "-m", "lib.monitoring", "check"],
        cwd=PROJECT_ROOT, env=env_for(logged, PROJECT_OWNER="nobody_here"),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert empty.returncode == 1
    assert "run 08_model_simulation.py first" in empty.stderr
