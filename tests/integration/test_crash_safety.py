"""kill -9 in the middle of the lifecycle scripts: 06 while it trains, 07 at several points of a
redeploy. Afterwards the champion alias names a servable version, the endpoint answers, the Iceberg
table is exactly as before, and rerunning the script finishes the job."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from lib import lake, registry
from lib.config import PROJECT_ROOT, Settings
from lib.features import TARGET
from lib.serving import service
from lib.serving.client import ServingClient, endpoint
from lib.tracking import configure_mlflow

pytestmark = pytest.mark.integration

GRID = [{"max_depth": d, "learning_rate": 0.3, "num_boost_round": 40, "early_stopping_rounds": 10} for d in (2, 3, 4)]


def script_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ, "PROJECT_ROOT": str(settings.root), "PROJECT_OWNER": settings.user,
        "SERVE_RUN_DIR": str(settings.run_dir), "SPARK_MASTER": "local[1]",
        "SPARK_CONF_SPARK_DRIVER_MEMORY": "1g", "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
    }  # fmt: skip


def start(settings: Settings, *args: str) -> subprocess.Popen:
    """A script in its own process group, so kill -9 also takes its Spark JVM."""
    return subprocess.Popen(
        [sys.executable, *args], cwd=PROJECT_ROOT, env=script_env(settings), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip


def run(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=PROJECT_ROOT, env=script_env(settings), capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], delay: float = 0.0, timeout: float = 300) -> bool:
    """SIGKILL the whole process group `delay` seconds after `ready()`; False if it ended first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the script never reached the point to kill it at"
        time.sleep(0.05)
    time.sleep(delay)
    if proc.poll() is not None:
        return False
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return True


def retrain_runs(settings: Settings, status: str | None = None) -> list:
    client = configure_mlflow(settings)
    experiment = client.get_experiment_by_name(settings.retrain_experiment_name)
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id])
    return [r for r in runs if status is None or r.info.status == status]


def table_state(spark, settings: Settings) -> tuple[int, int]:
    return lake.current_snapshot_id(spark, settings), lake.read_table(spark, settings).count()


def serving_answers(settings: Settings, record: dict) -> str:
    """The version the endpoint serves, after checking it really scores a record."""
    with ServingClient(endpoint(settings)) as client:
        answer = client.predict([record])
        assert 0.0 <= answer[0]["probability"] <= 1.0
        return client.version()["model_version"]


@pytest.fixture
def deployed(sample_table: Settings, train_runs, tmp_path: Path, spark) -> Iterator[Settings]:
    """A champion trained on the table's snapshot, served by a real detached server."""
    settings = dataclasses.replace(sample_table, run_dir=tmp_path / "run")
    snapshot = lake.current_snapshot_id(spark, settings)
    runs = train_runs(settings, settings.experiment_name, grid=[{"max_depth": 1, "num_boost_round": 3}],
                      snapshot_id=snapshot)  # fmt: skip
    registry.promote(settings, registry.register_run(settings, runs[0].run_id)[0].version)
    service.start_detached(settings, timeout=120)
    try:
        yield settings
    finally:
        service.stop(settings)


def test_kill_9_during_retraining_and_redeploy_leaves_everything_intact(
    spark, deployed: Settings, bank_sample: pd.DataFrame
) -> None:
    s = deployed
    record = json.loads(bank_sample.drop(columns=[TARGET]).head(1).to_json(orient="records"))[0]
    champion = registry.require_champion(s).version
    table = table_state(spark, s)

    # 06, killed once its first tracked run has started
    proc = start(s, "06_retrain.py", "--grid", json.dumps(GRID), "--workers", "1", "--no-progress")
    assert kill_when(proc, lambda: bool(retrain_runs(s))), proc.stdout.read()
    assert registry.require_champion(s).version == champion
    assert serving_answers(s, record) == champion
    assert table_state(spark, s) == table
    assert retrain_runs(s, "RUNNING"), "the killed run stays RUNNING, so 07 never picks it"
    rerun = run(s, "06_retrain.py", "--grid", json.dumps(GRID), "--workers", "1", "--no-progress")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr

    # 07, killed at several points after it set @challenger: before, during and after the alias moves
    versions, killed_after = {champion}, []
    for delay in (0.0, 1.0, 3.0):
        if registry.get_alias(s, registry.CHALLENGER) is not None:  # left by the attempt killed before
            configure_mlflow(s).delete_registered_model_alias(s.model_name, registry.CHALLENGER)
        proc = start(s, "07_api_redeployment.py")
        killed = kill_when(proc, lambda: registry.get_alias(s, registry.CHALLENGER) is not None, delay)
        output = proc.stdout.read()
        now, served = registry.require_champion(s).version, serving_answers(s, record)
        versions |= {now, served}
        assert len(versions) <= 2, output  # only ever the old champion or the challenger
        assert table_state(spark, s) == table
        if not killed:
            assert proc.returncode == 0, output
            break
        killed_after.append(delay)
    assert 0.0 in killed_after  # 07 really died mid-redeploy at least once

    finished = run(s, "07_api_redeployment.py")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    final = registry.require_champion(s).version
    assert final != champion and serving_answers(s, record) == final
    assert table_state(spark, s) == table
