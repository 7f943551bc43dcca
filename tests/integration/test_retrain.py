"""06_retrain.py as a user runs it: full, incremental and pinned-snapshot retraining on a small
real table, checked through the MLflow runs it logs (row counts and Iceberg lineage tags)."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from lib import lake
from lib.batches import append_batch, generate_batch
from lib.config import PROJECT_ROOT, Settings
from lib.tracking import configure_mlflow

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # 20-35 s each: real retraining on Spark

TINY_GRID = json.dumps([{"max_depth": 3, "learning_rate": 0.3, "num_boost_round": 15, "early_stopping_rounds": 5}])


def run_06(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ, "PROJECT_ROOT": str(settings.root), "PROJECT_OWNER": settings.user,
        "SPARK_MASTER": "local[1]", "SPARK_CONF_SPARK_DRIVER_MEMORY": "1g",
        # explicit: mlflow.set_tracking_uri in this process exports MLFLOW_TRACKING_URI to children
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
    }  # fmt: skip
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "06_retrain.py"), "--grid", TINY_GRID, "--workers", "1",
         "--no-progress", *args],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def runs_by_mode(settings: Settings) -> dict[str, list]:
    client = configure_mlflow(settings)
    experiment = client.get_experiment_by_name(settings.retrain_experiment_name)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    out: dict[str, list] = {}
    for run in runs:
        out.setdefault(run.data.tags["data_mode"], []).append(run)
    return out


def test_full_incremental_and_snapshot_retraining(spark, sample_table: Settings, bank_sample: pd.DataFrame):
    original = lake.current_snapshot_id(spark, sample_table)
    batch = generate_batch(bank_sample, 1500, seed=8)
    added = append_batch(spark, sample_table, batch, "none")
    snap = lake.get_snapshot(spark, sample_table, added.snapshot_id)

    outputs = []
    for args in ([], ["--data", "incremental"], ["--snapshot", str(original)]):
        result = run_06(sample_table, *args)
        assert result.returncode == 0, result.stderr
        assert "next       : python 07_api_redeployment.py" in result.stdout
        outputs.append(result.stdout)
    assert f"@ snapshot {added.snapshot_id}, parent {original} (4,500 rows, full)" in outputs[0]
    assert "(1,500 rows, incremental)" in outputs[1]
    assert f"@ snapshot {original} (3,000 rows, snapshot)" in outputs[2]

    runs = runs_by_mode(sample_table)
    assert {mode: len(r) for mode, r in runs.items()} == {"full": 1, "incremental": 1, "snapshot": 1}
    expected = {
        "full": (added.snapshot_id, original, 4500),
        "incremental": (added.snapshot_id, original, 1500),
        "snapshot": (original, None, 3000),
    }
    for mode, (snapshot_id, parent_id, rows) in expected.items():
        tags = runs[mode][0].data.tags
        assert tags["iceberg_snapshot_id"] == str(snapshot_id), mode
        assert tags["iceberg_parent_id"] == ("" if parent_id is None else str(parent_id)), mode
        assert tags["iceberg_committed_at"], mode
        assert int(tags["rows_total"]) == rows, mode
        assert int(tags["rows_train"]) + int(tags["rows_test"]) == rows, mode
        assert tags["table"] == sample_table.table_ident
    assert runs["full"][0].data.tags["iceberg_committed_at"].startswith(snap.committed_at.strftime("%Y-%m-%d"))


def test_retrain_refuses_data_outside_the_feature_definition(spark, sample_table: Settings, bank_sample: pd.DataFrame):
    batch = generate_batch(bank_sample, 300, seed=4)
    batch.loc[:4, "job"] = "influencer"
    bad = append_batch(spark, sample_table, batch, "file", allow_new_categories=True)

    result = run_06(sample_table)
    assert result.returncode == 1
    assert f"snapshot {bad.snapshot_id}" in result.stderr
    assert "unknown category" in result.stderr and "'influencer'" in result.stderr
    assert "python -m lib.lake rollback --to ID" in result.stderr
    assert "Traceback" not in result.stderr
    client = configure_mlflow(sample_table)
    experiment = client.get_experiment_by_name(sample_table.retrain_experiment_name)
    assert experiment is None or not client.search_runs([experiment.experiment_id])

    lake.rollback(spark, sample_table, bad.parent_id)
    result = run_06(sample_table, "--snapshot", str(bad.parent_id))
    assert result.returncode == 0, result.stderr
    [run] = runs_by_mode(sample_table)["snapshot"]
    assert run.data.tags["iceberg_snapshot_id"] == str(bad.parent_id)
