"""10_batch_scoring.py as a user runs it, on a small real table and a real registered champion:
the call list read back from Iceberg (one row per customer, ranks a permutation ordered by expected
profit, lineage), the cut-off tag on the model version, the CSV head, time travel after a rerun
and the one-line errors of a bad state."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from lib import lake, registry
from lib.batches import append_batch, generate_batch
from lib.config import PROJECT_ROOT, Settings
from lib.features import RAW_COLUMNS, TARGET
from lib.scoring import (
    CALL_LIST_COLUMNS,
    THRESHOLD_TAG,
    call_list_ident,
    call_list_snapshots,
    read_call_list,
    with_customer_key,
)
from lib.serving.app import create_app
from lib.serving.loader import ModelHolder
from lib.tracking import configure_mlflow

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def run_10(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ, "PROJECT_ROOT": str(settings.root), "PROJECT_OWNER": settings.user,
        "ICEBERG_WAREHOUSE": str(settings.warehouse), "SPARK_MASTER": "local[1]",
        "SPARK_CONF_SPARK_DRIVER_MEMORY": "1g", "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "CAMPAIGN_COST_PER_CALL": "4", "CAMPAIGN_VALUE_PER_DEPOSIT": "60",
    }  # fmt: skip
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "10_batch_scoring.py"), *args],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.fixture
def champion_table(spark, sample_table: Settings, train_runs) -> tuple[Settings, str]:
    """The 3,000-row sample table and a champion trained on its current snapshot."""
    snapshot = lake.current_snapshot_id(spark, sample_table)
    run = train_runs(sample_table, sample_table.experiment_name, snapshot_id=snapshot)[0]
    version = registry.register_run(sample_table, run.run_id)[0].version
    registry.promote(sample_table, version)
    return sample_table, version


def test_call_list_ranks_every_customer_and_sets_the_cutoff_tag(
    spark, champion_table: tuple[Settings, str], bank_sample: pd.DataFrame, tmp_path: Path
):
    settings, version = champion_table
    source = lake.current_snapshot_id(spark, settings)
    csv_path = tmp_path / "top.csv"

    result = run_10(settings, "--top", "25", "--csv", str(csv_path))
    assert result.returncode == 0, result.stderr
    assert "next       : " in result.stdout
    assert f"call list  : {call_list_ident(settings)} @ snapshot" in result.stdout

    mv = configure_mlflow(settings).get_model_version(settings.model_name, version)
    threshold = float(mv.tags[THRESHOLD_TAG])
    assert 0 < threshold < 1
    assert f"tag decision_threshold={threshold:.4f}" in result.stdout

    listed = read_call_list(spark, settings).toPandas().sort_values("rank").reset_index(drop=True)
    assert tuple(listed.columns) == CALL_LIST_COLUMNS
    assert len(listed) == len(bank_sample) and listed["customer_key"].is_unique
    assert listed["customer_key"].str.fullmatch(r"[0-9a-f]{24}-\d+").all()  # 96 bits of hash, the occurrence
    assert listed["rank"].tolist() == list(range(1, len(listed) + 1))
    assert listed["expected_profit"].is_monotonic_decreasing and listed["probability"].is_monotonic_decreasing
    assert np.allclose(listed["expected_profit"], listed["probability"] * 60 - 4)
    assert listed["decile"].min() == 1 and listed["decile"].max() == 10 and listed["decile"].is_monotonic_increasing
    assert (listed["decision"] == (listed["probability"] >= threshold).astype(int)).all()
    assert (listed["decision_threshold"] == threshold).all()
    assert set(listed["model_name"]) == {settings.model_name} and set(listed["model_version"]) == {version}
    assert set(listed["source_snapshot_id"]) == {source}

    head = pd.read_csv(csv_path, dtype={"customer_key": str})
    assert head["customer_key"].tolist() == listed["customer_key"].head(25).tolist()

    # the probabilities are what the model server answers for the same rows (same model, same encoding)
    keyed = with_customer_key(lake.read_table(spark, settings, snapshot_id=source)).toPandas()
    rows = keyed.merge(listed[["customer_key", "probability"]], on="customer_key").sample(20, random_state=1)
    served = dataclasses.replace(settings, metrics_db_url=f"sqlite:///{tmp_path / 'metrics.db'}")
    holder = ModelHolder(served)
    holder.reload()
    records = rows[[c for c in RAW_COLUMNS if c != TARGET]].to_dict(orient="records")
    with TestClient(create_app(served, holder, access_key=None)) as client:
        reply = client.post("/invocations", json={"dataframe_records": records})
    assert reply.status_code == 200, reply.text
    served_proba = [p["probability"] for p in reply.json()["predictions"]]
    assert np.allclose(rows["probability"], served_proba, atol=1e-6)

    # a new batch and a rerun: one more snapshot, the old list still readable by time travel
    first = call_list_snapshots(spark, settings)
    batch = generate_batch(bank_sample, 500, seed=3)
    added = append_batch(spark, settings, batch, "none")
    assert run_10(settings, "--quiet").returncode == 0
    snaps = call_list_snapshots(spark, settings)
    assert len(snaps) == len(first) + 1
    assert read_call_list(spark, settings, first[-1][0]).count() == len(bank_sample)
    newest = read_call_list(spark, settings)
    assert newest.count() == len(bank_sample) + 500
    assert {r.source_snapshot_id for r in newest.select("source_snapshot_id").distinct().collect()} == {
        added.snapshot_id
    }


def test_no_champion_and_bad_flags_give_one_line_errors(sample_table: Settings):
    result = run_10(sample_table)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "champion" in lines[-1]
    assert run_10(sample_table, "--top", "5").returncode == 64
    assert run_10(sample_table, "--cost-per-call", "-1").returncode == 64


def test_model_table_mismatch_is_refused(spark, champion_table: tuple[Settings, str]):
    from lib.scoring import ScoringError, check_features

    settings, _ = champion_table
    champion = mlflow.pyfunc.load_model(f"models:/{settings.model_name}@champion").unwrap_python_model()
    table = lake.read_table(spark, settings).drop("age")
    with pytest.raises(ScoringError, match="needs column"):
        check_features(table, champion.features.columns, "the table", "1")


def test_the_one_pass_scorer_keys_and_scores_like_the_reference(spark, champion_table: tuple[Settings, str]):
    """The hash computed in the scoring pass gives with_customer_key's keys, and the Spark SQL encoding
    scores every row like BankModel.predict on the raw rows."""
    from lib.economics import CampaignEconomics
    from lib.scoring import build_call_list, load_champion

    settings, _ = champion_table
    champion = load_champion(settings)
    snapshot = lake.current_snapshot_id(spark, settings)
    table = lake.read_table(spark, settings, snapshot_id=snapshot)
    table = table.unionByName(table.orderBy(*RAW_COLUMNS).limit(5))  # 5 repeated rows: keys <hash>-0 and <hash>-1
    rows = table.count()
    listed = build_call_list(spark, table, champion, snapshot, rows, 0.2, CampaignEconomics(5, 100)).toPandas()
    assert sorted(listed["rank"]) == list(range(1, rows + 1))
    keyed = with_customer_key(table).toPandas()
    assert set(keyed["customer_key"]) == set(listed["customer_key"]) and listed["customer_key"].is_unique
    assert listed["customer_key"].str.endswith("-1").sum() >= 5
    expected = keyed.assign(expected=champion.model.predict(None, keyed)["probability"].to_numpy())
    merged = expected.merge(listed, on="customer_key")
    assert len(merged) == rows and np.allclose(merged["expected"], merged["probability"], atol=1e-7)
