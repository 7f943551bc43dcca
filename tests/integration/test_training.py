"""Tracked training on a real Iceberg table with a real MLflow SQLite store (small fast grid)."""

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

from lib import lake
from lib.config import DEFAULT_SEED, PROJECT_ROOT, Settings
from lib.features import RAW_COLUMNS, TARGET, FeatureSet, labels_to_int, pandas_dtypes, spark_ddl
from lib.metrics import METRIC_NAMES, RUN_METRIC_KEYS, classification_metrics
from lib.profile import PROFILE_ARTIFACT, ProfileError, load_profile
from lib.tracking import configure_mlflow, ensure_experiment
from lib.training.data import DataSlice, load_training_data, split
from lib.training.errors import TrainingError
from lib.training.figures import FIGURES
from lib.training.fit import fit_booster, prepare_data
from lib.training.grid import DEFAULT_GRID, first_runs, load_grid
from lib.training.results import best_run
from lib.training.runs import IMPORTANCE_ARTIFACT
from lib.training.train import train_grid

pytestmark = pytest.mark.integration

FAST_GRID = [
    {"max_depth": 3, "learning_rate": 0.3, "num_boost_round": 40, "early_stopping_rounds": 5},
    {"max_depth": 4, "learning_rate": 0.1, "num_boost_round": 60, "early_stopping_rounds": 5},
    {"max_depth": 2, "learning_rate": 0.5, "alpha": 1.0, "num_boost_round": 20, "early_stopping_rounds": 5},
]
LINEAGE_TAGS = (
    "table", "iceberg_snapshot_id", "iceberg_parent_id", "iceberg_committed_at", "data_mode", "rows_total",
    "rows_train", "rows_test", "positive_rate_train", "positive_rate_test", "git_commit", "git_dirty",
    "include_duration", "read_engine",
)  # fmt: skip


def raw_records(df: pd.DataFrame, features: FeatureSet) -> list[dict]:
    """Rows as a client sends them: Python ints for numerics, strings for categories."""
    return [
        {c: (int(v) if c in features.numeric else str(v)) for c, v in row.items() if c in features.columns}
        for row in df.to_dict(orient="records")
    ]


def test_full_grid_is_tracked_and_servable(spark, sample_table: Settings, bank_sample: pd.DataFrame) -> None:
    settings = sample_table
    snapshot = lake.current_snapshot_id(spark, settings)
    data = load_training_data(spark, settings)
    assert (data.mode, data.snapshot_id, data.parent_id, data.table) == (
        "full",
        snapshot,
        None,
        settings.table_ident,
    )
    assert len(data.df) == len(bank_sample) and data.committed_at
    assert data.df.dtypes.astype(str).to_dict() == pandas_dtypes()

    result = train_grid(data, settings, settings.experiment_name, grid=FAST_GRID, progress=False)
    assert len(result.runs) == len(FAST_GRID) and result.seconds > 0
    client = configure_mlflow(settings)
    train_df, test_df = split(data.df, DEFAULT_SEED)
    for summary in result.runs:
        run = client.get_run(summary.run_id)
        assert run.info.status == "FINISHED"
        assert set(RUN_METRIC_KEYS) <= set(run.data.metrics)
        # undefined values (precision without a positive prediction) are NaN, logged as NaN
        values = [run.data.metrics[f"test_{m}"] for m in METRIC_NAMES if m != "log_loss"]
        assert all(np.isnan(v) or 0.0 <= v <= 1.0 for v in values)
        logged = {k: run.data.metrics[k] for k in RUN_METRIC_KEYS}
        assert logged == pytest.approx({k: summary.metrics[k] for k in RUN_METRIC_KEYS}, nan_ok=True)
        assert not np.isnan(logged["test_roc_auc"])
        tags = run.data.tags
        assert set(LINEAGE_TAGS) <= set(tags)
        assert tags["iceberg_snapshot_id"] == str(snapshot) and tags["data_mode"] == "full"
        assert tags["table"] == settings.table_ident and tags["iceberg_parent_id"] == ""
        assert int(tags["rows_train"]) == len(train_df) and int(tags["rows_test"]) == len(test_df)
        assert int(tags["rows_total"]) == len(bank_sample) and tags["git_commit"]
        assert run.data.params["include_duration"] == "False"
        (dataset_input,) = run.inputs.dataset_inputs
        assert dataset_input.dataset.name == settings.table_ident
        assert dataset_input.dataset.digest == f"snapshot-{snapshot}"
        assert str(snapshot) in dataset_input.dataset.source
        root = {a.path for a in client.list_artifacts(summary.run_id)}
        assert {PROFILE_ARTIFACT, IMPORTANCE_ARTIFACT} <= root
        assert run.data.tags.get("grid_best") == ("true" if summary.run_id == result.best.run_id else None)

    best = result.best
    assert best.metrics["test_roc_auc"] == max(r.metrics["test_roc_auc"] for r in result.runs)
    assert best_run(settings, settings.experiment_name).run_id == best.run_id
    lowest_loss = min(result.runs, key=lambda r: r.metrics["test_log_loss"])
    assert best_run(settings, settings.experiment_name, "test_log_loss").run_id == lowest_loss.run_id
    figures = {a.path for a in client.list_artifacts(best.run_id, "figures")}
    assert figures == set(FIGURES)

    profile = load_profile(best.run_id, settings)
    assert profile["n_rows"] == len(train_df)
    assert sum(profile["prediction"]["counts"]) == len(test_df)
    assert profile["features"] == FeatureSet().to_dict()

    # MLflow itself serves the logged model on raw records, and it is the model that was evaluated
    model = mlflow.pyfunc.load_model(f"runs:/{best.run_id}/model")
    out = model.predict(pd.DataFrame(raw_records(test_df, FeatureSet())))
    proba = out["probability"].to_numpy()
    assert classification_metrics(labels_to_int(test_df[TARGET]), proba)["roc_auc"] == pytest.approx(
        best.metrics["test_roc_auc"], abs=1e-6
    )
    odd = raw_records(test_df.head(3), FeatureSet())
    odd[0]["job"], odd[1]["month"] = "astronaut", "smarch"
    out = model.predict(pd.DataFrame(odd))
    assert out["probability"].between(0.0, 1.0).all() and set(out["prediction"]) <= {0, 1}


def test_incremental_reads_only_appended_rows(spark, sample_table: Settings, bank_full: pd.DataFrame) -> None:
    settings = sample_table
    with pytest.raises(TrainingError, match="no parent"):
        load_training_data(spark, settings, mode="incremental")
    first = lake.current_snapshot_id(spark, settings)
    batch = bank_full.tail(800).reset_index(drop=True)
    second = lake.append(spark, settings, spark.createDataFrame(batch, schema=spark_ddl()))

    data = load_training_data(spark, settings, mode="incremental")
    assert (data.mode, data.snapshot_id, data.parent_id) == ("incremental", second, first)
    pd.testing.assert_frame_equal(
        data.df.sort_values(list(RAW_COLUMNS)).reset_index(drop=True),
        batch.sort_values(list(RAW_COLUMNS)).reset_index(drop=True),
    )
    assert len(load_training_data(spark, settings).df) == 3000 + len(batch)
    old = load_training_data(spark, settings, snapshot_id=first)
    assert (old.mode, old.snapshot_id, len(old.df)) == ("snapshot", first, 3000)

    result = train_grid(data, settings, settings.retrain_experiment_name, grid=FAST_GRID[:1], progress=False)
    run = configure_mlflow(settings).get_run(result.best.run_id)
    assert run.data.tags["data_mode"] == "incremental"
    assert run.data.tags["iceberg_parent_id"] == str(first) and run.data.tags["rows_total"] == str(len(batch))
    assert run.inputs.dataset_inputs[0].dataset.digest == f"added-{second}"


def test_pyiceberg_and_spark_read_the_same_snapshot(spark, sample_table: Settings, bank_full: pd.DataFrame) -> None:
    """Without a session a small table is read by pyiceberg: same rows, dtypes, lineage and split as Spark."""
    settings = sample_table
    first = lake.current_snapshot_id(spark, settings)
    lake.append(spark, settings, spark.createDataFrame(bank_full.tail(500), schema=spark_ddl()))
    for snapshot_id in (None, first):
        by_spark = load_training_data(spark, settings, snapshot_id=snapshot_id)
        by_pyiceberg = load_training_data(None, settings, snapshot_id=snapshot_id)
        assert (by_spark.engine, by_pyiceberg.engine) == ("spark", "pyiceberg")
        lineage = ("table", "snapshot_id", "parent_id", "committed_at", "mode")
        assert [getattr(by_pyiceberg, k) for k in lineage] == [getattr(by_spark, k) for k in lineage]
        assert by_pyiceberg.df.dtypes.astype(str).to_dict() == pandas_dtypes()
        for ours, theirs in zip(split(by_pyiceberg.df, DEFAULT_SEED), split(by_spark.df, DEFAULT_SEED), strict=True):
            pd.testing.assert_frame_equal(ours, theirs)
    assert len(by_pyiceberg.df) == 3000  # the older snapshot, not the current one

    with pytest.raises(lake.LakeError, match="snapshot 1 not found"):
        load_training_data(None, settings, snapshot_id=1)
    # the engine choice: a table over the row limit, a catalog pyiceberg does not read, or a limit of 0 → Spark
    assert lake.read_engine(settings) == "pyiceberg"
    assert lake.read_engine(dataclasses.replace(settings, pyiceberg_max_rows=3499)) == "spark"
    assert lake.read_engine(dataclasses.replace(settings, pyiceberg_max_rows=3500)) == "pyiceberg"
    assert lake.read_engine(dataclasses.replace(settings, pyiceberg_max_rows=0)) == "spark"
    assert lake.read_engine(dataclasses.replace(settings, catalog_type="hive")) == "spark"

    # which engine read the rows is a lineage tag of every run
    data = load_training_data(None, settings)
    result = train_grid(data, settings, settings.experiment_name, grid=FAST_GRID[:1], progress=False)
    assert configure_mlflow(settings).get_run(result.best.run_id).data.tags["read_engine"] == "pyiceberg"


def test_split_is_stratified_and_independent_of_row_order(bank_sample: pd.DataFrame) -> None:
    train, test = split(bank_sample, 42)
    assert len(test) == round(0.3 * len(bank_sample)) and len(train) + len(test) == len(bank_sample)
    rate = (bank_sample[TARGET] == "yes").mean()
    assert (test[TARGET] == "yes").mean() == pytest.approx(rate, abs=0.005)
    _, shuffled_test = split(bank_sample.sample(frac=1.0, random_state=3), 42)
    pd.testing.assert_frame_equal(shuffled_test, test)
    _, other_seed = split(bank_sample, 7)
    assert not other_seed.equals(test)


def test_run_metrics_are_the_shared_metric_definition() -> None:
    y = np.array([0, 0, 1, 1])
    m = classification_metrics(y, np.array([0.1, 0.6, 0.4, 0.9]))
    assert m["accuracy"] == 0.5 and m["precision"] == 0.5 and m["recall"] == 0.5 and m["f1"] == 0.5
    assert m["roc_auc"] == 0.75 and set(m) == set(METRIC_NAMES)
    assert classification_metrics(y, np.array([0.1, 0.2, 0.8, 0.9]))["roc_auc"] == 1.0
    # no positive prediction: precision is undefined (NaN), not a made-up 0
    assert np.isnan(classification_metrics(y, np.array([0.1, 0.2, 0.3, 0.4]))["precision"])


def test_a_run_with_an_undefined_metric_is_logged_with_its_model(table_settings: Settings, train_runs) -> None:
    """Two slow-learning trees predict no positive: precision is NaN, and the run (metrics copied onto
    its logged model by MLflow) must still log, not die on MLflow's NaN-blind duplicate check."""
    (result,) = train_runs(table_settings, "nan-metrics", grid=[{"learning_rate": 0.01, "num_boost_round": 2}])
    run = configure_mlflow(table_settings).get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert np.isnan(run.data.metrics["test_precision"]) and np.isnan(result.metrics["test_precision"])
    assert 0.5 < run.data.metrics["test_roc_auc"] <= 1.0
    (model,) = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{result.run_id}'",
        output_format="list",
    )  # fmt: skip
    assert {m.key for m in model.metrics} >= set(RUN_METRIC_KEYS)


def test_kept_probabilities_are_the_cut_boosters_and_shared_matrices_change_nothing(bank_sample: pd.DataFrame) -> None:
    """The train metrics use the probabilities early stopping kept at the best round (the booster's
    prediction cache): they must be bit for bit the cut booster's predictions on the training rows,
    and a booster fitted on the pool's reused matrices must be byte-identical to one on new ones."""
    data = DataSlice(df=bank_sample, table="t.bank", snapshot_id=1, parent_id=None, committed_at=None, mode="full")
    grid = [{"max_depth": 3, "learning_rate": 0.3, "alpha": 1.0, "num_boost_round": 60, "early_stopping_rounds": 5},
            {"max_depth": 5, "learning_rate": 0.1, "num_boost_round": 80, "early_stopping_rounds": 10}]  # fmt: skip
    prep = prepare_data(data, FeatureSet(), DEFAULT_SEED)
    fitted = [fit_booster(prep, entry, nthread=1) for entry in grid]  # the second run reuses the first's matrices
    fresh = fit_booster(prepare_data(data, FeatureSet(), DEFAULT_SEED), grid[1], nthread=1)
    assert bytes(fresh.booster.save_raw("ubj")) == bytes(fitted[1].booster.save_raw("ubj"))
    for run in fitted:
        assert run.booster.num_boosted_rounds() == run.best_iteration + 1 < run.params["num_boost_round"]
        predicted = run.booster.inplace_predict(prep.x_train, validate_features=False)
        assert predicted.dtype == run.proba_train.dtype and np.array_equal(predicted, run.proba_train)
        np.testing.assert_array_equal(run.proba_test, run.booster.inplace_predict(prep.x_test))


def test_default_grid_is_the_explicit_twelve_runs_and_sizes_are_explicit() -> None:
    assert len(DEFAULT_GRID) == 12
    assert {(e["max_depth"], e["learning_rate"], e["alpha"]) for e in DEFAULT_GRID} == {
        (d, lr, a) for d in (3, 5) for lr in (0.01, 0.1) for a in (0.0, 0.1, 1.0)
    }
    assert first_runs(DEFAULT_GRID, None) == DEFAULT_GRID and first_runs(DEFAULT_GRID, 2) == DEFAULT_GRID[:2]
    with pytest.raises(TrainingError, match="between 1 and the grid's 12 entries, got 13"):
        first_runs(DEFAULT_GRID, 13)


HEAVY_TRAINING = ("lib.training.fit", "lib.training.runs", "lib.training.figures", "lib.training.train")


@pytest.mark.parametrize(
    ("module", "banned"),
    [
        ("lib.registry", (*HEAVY_TRAINING, "matplotlib", "xgboost")),
        ("lib.serving.app", (*HEAVY_TRAINING, "matplotlib")),
        ("lib.training", (*HEAVY_TRAINING, "matplotlib", "xgboost")),
    ],
)
def test_server_side_imports_do_not_load_the_training_code(module: str, banned: tuple[str, ...]) -> None:
    """The model server imports the registry: it must not pay for (or depend on) fitting and charts."""
    code = (
        f"import sys, {module}; "
        f"print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib' or m in {banned!r})))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    loaded = set(result.stdout.split()) & ({*banned} | {"matplotlib"})
    assert not loaded, f"importing {module} loaded {sorted(loaded)}"


def test_clear_errors(spark, table_settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(lake.LakeError, match="run 01_write_to_dl.py first"):
        load_training_data(spark, table_settings)
    with pytest.raises(TrainingError, match="no runs in experiment nope: run 03_train.py first"):
        best_run(table_settings, "nope")
    bare = configure_mlflow(table_settings).create_run(ensure_experiment(table_settings, "bare"))
    with pytest.raises(ProfileError, match=f"run {bare.info.run_id} has no {PROFILE_ARTIFACT}"):
        load_profile(bare.info.run_id, table_settings)
    with pytest.raises(TrainingError, match="unknown parameter.*depth"):
        load_grid('[{"depth": 3}]')
    with pytest.raises(TrainingError, match="must be a number"):
        load_grid('[{"max_depth": "3"}]')
    with pytest.raises(TrainingError, match="not found"):
        load_grid(str(tmp_path / "missing.json"))
    with pytest.raises(TrainingError, match="not valid JSON"):
        load_grid("[{max_depth: 3}]")
    grid_file = tmp_path / "grid.json"
    grid_file.write_text('[{"max_depth": 3, "learning_rate": 0.1}]')
    assert load_grid(str(grid_file)) == [{"max_depth": 3, "learning_rate": 0.1}]


def run_train_script(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PROJECT_ROOT": str(settings.root),
        "PROJECT_OWNER": settings.user,
        "SPARK_MASTER": "local[1]",
    }
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "03_train.py"), *args],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.slow  # 03 as a process
def test_script_without_table_says_what_to_run(table_settings: Settings) -> None:
    assert "--max-runs" in run_train_script(table_settings, "--help").stdout
    result = run_train_script(table_settings, "--no-progress")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "run 01_write_to_dl.py first" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow  # 03 as a process, training the grid
def test_script_trains_and_prints_leaderboard(sample_table: Settings) -> None:
    result = run_train_script(
        sample_table, "--grid", str(FAST_GRID).replace("'", '"'), "--max-runs", "2", "--include-duration"
    )
    assert result.returncode == 0, result.stderr
    assert "test_roc_auc" in result.stdout and "next       : python 04_api_deployment.py" in result.stdout
    # the leaky benchmark goes to its own experiment, never the one 04 deploys from
    with pytest.raises(TrainingError, match="no runs"):
        best_run(sample_table, sample_table.experiment_name)
    best = best_run(sample_table, f"{sample_table.experiment_name}-duration")
    assert best.params["include_duration"] == "True" and best.run_id in result.stdout
    client = configure_mlflow(sample_table)
    experiment = client.get_experiment_by_name(f"{sample_table.experiment_name}-duration")
    assert len(client.search_runs([experiment.experiment_id])) == 2
