"""The failure drill of the README ("Failure drill"), end to end with a live endpoint.

A bad batch (a category forced in with --allow-new-categories) reaches the table; the job chain
fails at "Retrain Models" and never redeploys; the endpoint keeps serving the champion; the table
is rolled back to the last good snapshot, 06 retrains on exactly the champion's snapshot and the
redeploy chain succeeds. Real scripts, real Spark/Iceberg, MLflow and a real server subprocess.
"""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from lib import lake, registry
from lib.batches import append_batch, generate_batch
from lib.config import PROJECT_ROOT, Settings
from lib.jobs import history, load_spec, run_chain
from lib.serving import service
from lib.serving.client import ServingClient, endpoint
from lib.simulation import SimulationConfig, SimulationError, load_source
from tests.conftest import make_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TINY_GRID = json.dumps([{"max_depth": 3, "learning_rate": 0.3, "num_boost_round": 15, "early_stopping_rounds": 5}])
TRAIN_ARGS = ["--grid", TINY_GRID, "--workers", "1", "--no-progress"]


def drill_env(settings: Settings) -> dict[str, str]:
    return {
        "PROJECT_ROOT": str(settings.root), "PROJECT_OWNER": settings.user,
        "ICEBERG_WAREHOUSE": settings.warehouse, "SPARK_MASTER": "local[1]",
        "SPARK_CONF_SPARK_DRIVER_MEMORY": "1g", "SERVE_PORT": "0",
        # explicit: mlflow.set_tracking_uri in this process exports MLFLOW_TRACKING_URI to children
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
    }  # fmt: skip


def run_script(settings: Settings, script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **drill_env(settings)}
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / script), *args],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def write_spec(path: Path) -> Path:
    """The real chain (same scripts, same dependencies), with a tiny grid for the retrain."""
    real = load_spec(PROJECT_ROOT / "jobs.yaml")
    jobs = []
    for job in real.jobs:
        args = [*job.args, *TRAIN_ARGS] if job.script == "06_retrain.py" else list(job.args)
        entry = {"name": job.name, "script": str(PROJECT_ROOT / job.script), "args": args}
        if job.depends_on:
            entry["depends_on"] = list(job.depends_on)
        jobs.append(entry)
    path.write_text(json.dumps({"jobs": jobs}))  # JSON is YAML
    return path


def served_version(settings: Settings) -> dict:
    with ServingClient(endpoint(settings), timeout=30) as client:
        return client.version()


def test_bad_batch_rollback_and_recovery(
    spark, sample_table: Settings, bank_sample: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    settings = make_settings(tmp_path, sample_table.user, ICEBERG_WAREHOUSE=sample_table.warehouse)
    for key, value in drill_env(settings).items():
        monkeypatch.setenv(key, value)  # the job runner's children inherit the environment
    spec = load_spec(write_spec(tmp_path / "jobs.yaml"))
    good_snapshot = lake.current_snapshot_id(spark, settings)

    assert run_script(settings, "03_train.py", *TRAIN_ARGS).returncode == 0
    deployed = run_script(settings, "04_api_deployment.py")
    assert deployed.returncode == 0, deployed.stderr
    try:
        champion = registry.require_champion(settings)
        assert champion.snapshot_id == str(good_snapshot)
        assert served_version(settings)["model_version"] == champion.version

        # 1. a bad batch is forced in
        batch = generate_batch(bank_sample, 600, seed=21)
        batch.loc[:29, "job"] = "influencer"
        bad = append_batch(spark, settings, batch, "file", allow_new_categories=True)
        assert bad.parent_id == good_snapshot

        # 2. the chain fails at retrain; nothing is redeployed; the endpoint keeps the champion
        failed = run_chain(settings, "Retrain Models", spec=spec, progress=False)
        assert not failed.ok and failed.failed is not None
        assert failed.failed.job == "Retrain Models" and failed.skipped == ("Redeploy Model", "Score Customers")
        log_text = failed.failed.log_path.read_text()
        assert "'influencer'" in log_text and f"snapshot {bad.snapshot_id}" in log_text
        assert registry.require_champion(settings).version == champion.version
        assert served_version(settings)["model_version"] == champion.version

        # 3. + 4. find the last good snapshot, roll back, retrain on exactly the champion's data
        assert lake.get_snapshot(spark, settings, bad.snapshot_id).parent_id == good_snapshot
        lake.rollback(spark, settings, good_snapshot)
        assert lake.current_snapshot_id(spark, settings) == good_snapshot
        with pytest.raises(SimulationError, match=f"snapshot {bad.snapshot_id}\\) was rolled back"):
            load_source(settings, SimulationConfig(source="batch"))  # 08 will not replay the bad batch
        retrain = run_script(settings, "06_retrain.py", "--snapshot", champion.snapshot_id, *TRAIN_ARGS)
        assert retrain.returncode == 0, retrain.stderr
        assert f"@ snapshot {good_snapshot}" in retrain.stdout

        recovered = run_chain(settings, "Redeploy Model", spec=spec, progress=False)
        assert recovered.ok, textwrap.shorten(recovered.results[-1].log_path.read_text(), 2000)
        new_champion = registry.require_champion(settings)
        assert new_champion.version != champion.version
        assert new_champion.snapshot_id == str(good_snapshot)
        assert served_version(settings)["model_version"] == new_champion.version
        runs = [(r.job, r.status) for r in history(settings, limit=3)]
        assert runs == [("Score Customers", "succeeded"), ("Redeploy Model", "succeeded"), ("Retrain Models", "failed")]
    finally:
        service.stop(settings)
        _kill_if_alive(int(re.search(r"\(pid (\d+)\)", deployed.stdout).group(1)))


def _kill_if_alive(pid: int) -> None:
    """Never leak the server this test started, even if its state file was lost."""
    if Path(f"/proc/{pid}").exists() and "lib.serving" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
        os.kill(pid, signal.SIGTERM)
