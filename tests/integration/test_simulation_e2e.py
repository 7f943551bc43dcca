"""08_model_simulation.py as a user runs it, against a real model server subprocess on a small
table: every request and every label lands in the prediction log, a redeploy continues the time
axis with the new version, and failures are reported instead of hidden."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from lib import registry
from lib.config import PROJECT_ROOT, Settings
from lib.features import RAW_COLUMNS, TARGET
from lib.metrics_store import MetricsStore
from lib.serving import service
from lib.serving.client import ServingClient, endpoint
from lib.training.data import split

pytestmark = pytest.mark.integration


def run_08(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ, "PROJECT_ROOT": str(settings.root), "PROJECT_OWNER": settings.user,
        "SERVE_RUN_DIR": str(settings.run_dir),
    }  # fmt: skip
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "08_model_simulation.py"), "--concurrency", "2", *args],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def logged(settings: Settings) -> pd.DataFrame:
    df = MetricsStore(settings.metrics_db_url).read_predictions()
    return df[df["model_name"] == settings.model_name].reset_index(drop=True)


@pytest.fixture
def served(registered_on_table: tuple[Settings, list[str]], tmp_path: Path) -> Iterator:
    """The champion (v2, trained with seed 7 on the table's snapshot) served by a real detached
    server with its own run dir and access key."""
    settings, versions = registered_on_table
    settings = dataclasses.replace(settings, run_dir=tmp_path / "run")
    service.start_detached(settings, expect_version=versions[-1], timeout=120)
    try:
        yield settings, versions
    finally:
        service.stop(settings)


def test_without_a_server_08_says_to_deploy_first(settings: Settings, tmp_path: Path) -> None:
    result = run_08(dataclasses.replace(settings, run_dir=tmp_path / "no-server"), "--requests", "5")
    assert result.returncode == 1
    assert "run 04_api_deployment.py first" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # a served model, 08 runs twice around a redeploy
def test_simulation_logs_every_prediction_and_label_and_continues_after_a_redeploy(
    served, bank_sample: pd.DataFrame
) -> None:
    settings, versions = served
    first = run_08(settings, "--requests", "40", "--source", "table", "--days", "2", "--flip-end", "0.5")
    assert first.returncode == 0, first.stderr
    assert "40 sent, 40 answered, 0 errors" in first.stdout
    assert "40 labels accepted, 0 failed batches" in first.stdout
    assert "next      : open 09_model_monitoring_dashboard.ipynb" in first.stdout
    df = logged(settings)
    assert len(df) == 40 and df["label"].notna().all()
    assert set(df["model_version"]) == {versions[-1]}
    days = df["event_ts"].dt.floor("D")
    assert days.nunique() == 2 and df["event_ts"].min() == days.min()
    assert (df["label_ts"] > df["event_ts"]).all()  # delayed ground truth
    assert df["age"].notna().all() and df["job"].notna().all()  # raw inputs logged for drift
    # --source table sends the champion's own held-out rows: its run's seed (7), not the default
    key = [c for c in RAW_COLUMNS if c != TARGET]
    sent = df[key].astype(bank_sample[key].dtypes.to_dict())
    champion_train, champion_test = split(bank_sample, seed=7)
    assert sent.merge(champion_train[key].drop_duplicates(), on=key).empty
    assert len(sent.merge(champion_test[key].drop_duplicates(), on=key)) == len(sent)

    # Redeploy: v1 becomes champion and the running server hot-swaps to it.
    registry.promote(settings, versions[0])
    with ServingClient(endpoint(settings)) as client:
        assert client.reload()["model_version"] == versions[0]
    second = run_08(settings, "--requests", "30", "--drift", "balance", "--days", "1")
    assert second.returncode == 0, second.stderr
    assert f"v{versions[0]} (30)" in second.stdout
    df = logged(settings)
    assert len(df) == 70 and df["label"].notna().all()
    new = df[df["model_version"] == versions[0]]
    old = df[df["model_version"] == versions[-1]]
    assert len(new) == 30
    assert new["event_ts"].min() == old["event_ts"].max().floor("D") + pd.Timedelta(days=1)
    assert new["balance"].astype(float).median() > old["balance"].astype(float).median() + 1000


@pytest.mark.slow  # a served model
def test_requests_the_server_rejects_are_counted_as_errors(served) -> None:
    settings, _ = served
    key_file = settings.access_key_file
    real_key = key_file.read_text()
    key_file.write_text("not-the-key\n")
    try:
        result = run_08(settings, "--requests", "6", "--source", "table")
    finally:
        key_file.write_text(real_key)
    assert result.returncode == 1
    assert "6 sent, 0 answered, 6 errors" in result.stdout
    assert "error x6: HTTP 401" in result.stdout
    assert "none of the 6 requests was answered" in result.stderr
    assert logged(settings).empty
