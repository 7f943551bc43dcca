"""The Model Registry side of deployment on a real MLflow SQLite store: registration with lineage,
alias moves (and what an interrupted promotion leaves), and the challenger gate."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from lib import registry
from lib.config import DEFAULT_SEED, Settings
from lib.features import TARGET, labels_to_int
from lib.metrics import classification_metrics
from lib.registry import CHALLENGER, CHAMPION, PREVIOUS, GateResult, HoldOut, RegistryError
from lib.tracking import configure_mlflow
from lib.training.data import split

pytestmark = pytest.mark.integration

STRONG = [{"max_depth": 4, "num_boost_round": 40}]
WEAK = [{"max_depth": 1, "num_boost_round": 2, "early_stopping_rounds": 2}]


def aliases(settings: Settings) -> dict[str, str | None]:
    return {a: getattr(registry.get_alias(settings, a), "version", None) for a in (CHAMPION, PREVIOUS, CHALLENGER)}


def holdout(df: pd.DataFrame) -> HoldOut:
    return HoldOut(frame=split(df, seed=DEFAULT_SEED)[1], snapshot_id=0, table="in-memory sample")


def test_register_best_records_lineage_and_is_rerun_safe(table_settings: Settings, train_runs) -> None:
    runs = train_runs(table_settings, table_settings.experiment_name, grid=[*WEAK, *STRONG], snapshot_id=1234)
    best = max(runs, key=lambda r: r.metrics["test_roc_auc"])

    version = registry.register_best(table_settings, table_settings.experiment_name)

    assert version.run_id == best.run_id
    assert version.experiment == table_settings.experiment_name
    assert version.snapshot_id == "1234"
    assert version.git_commit and version.git_commit != "?"
    assert math.isclose(version.metric_value, best.metrics["test_roc_auc"], rel_tol=1e-5)
    assert version.tags["table"] == table_settings.table_ident
    assert {f"metric.{k}" for k in best.metrics if k.startswith("test_")} <= set(version.tags)
    mv = configure_mlflow(table_settings).get_model_version(table_settings.model_name, version.version)
    assert best.run_id in mv.description and "snapshot 1234" in mv.description
    again = registry.register_best(table_settings, table_settings.experiment_name)
    assert again.version == version.version
    assert len(configure_mlflow(table_settings).search_model_versions(f"name='{table_settings.model_name}'")) == 1


def test_no_runs_names_the_script_to_run(table_settings: Settings) -> None:
    with pytest.raises(RegistryError, match="run 06_retrain.py first"):
        registry.register_best(table_settings, table_settings.retrain_experiment_name, hint="run 06_retrain.py first")
    assert registry.get_alias(table_settings, CHAMPION) is None
    with pytest.raises(RegistryError, match="run 04_api_deployment.py first"):
        registry.require_champion(table_settings)


def test_promote_and_rollback_move_aliases(table_settings: Settings, train_runs) -> None:
    runs = train_runs(table_settings, table_settings.experiment_name, grid=[{"max_depth": d} for d in (2, 3, 4)])
    v1, v2, v3 = (registry.register_run(table_settings, r.run_id)[0].version for r in runs)

    first = registry.promote(table_settings, v1)
    assert first.before is None and first.changed
    assert aliases(table_settings) == {CHAMPION: v1, PREVIOUS: None, CHALLENGER: None}

    registry.set_alias(table_settings, CHALLENGER, v2)
    second = registry.promote(table_settings, v2)
    assert (second.before.version, second.after.version) == (v1, v2)
    assert aliases(table_settings) == {CHAMPION: v2, PREVIOUS: v1, CHALLENGER: None}
    assert "promoted_at" in registry.describe(table_settings, v2).tags

    same = registry.promote(table_settings, v2)
    assert not same.changed and aliases(table_settings)[PREVIOUS] == v1

    back = registry.rollback(table_settings)
    assert (back.before.version, back.after.version) == (v2, v1)
    assert aliases(table_settings) == {CHAMPION: v1, PREVIOUS: v2, CHALLENGER: None}
    assert registry.rollback(table_settings).after.version == v2  # rolling back twice swaps back

    registry.promote(table_settings, v3, forced=True)
    assert registry.describe(table_settings, v3).tags["promotion_forced"] == "true"
    with pytest.raises(RegistryError, match="has no version 99"):
        registry.promote(table_settings, "99")


def test_interrupted_promotion_leaves_a_valid_champion(
    table_settings: Settings, train_runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process killed between the two alias writes must leave the old champion in place."""
    runs = train_runs(table_settings, table_settings.experiment_name, grid=[{"max_depth": 2}, {"max_depth": 3}])
    v1, v2 = (registry.register_run(table_settings, r.run_id)[0].version for r in runs)
    registry.promote(table_settings, v1)
    real = MlflowClient.set_registered_model_alias

    def die_before_champion(self, name, alias, version):
        if alias == CHAMPION:
            raise KeyboardInterrupt("killed mid-promotion")
        return real(self, name, alias, version)

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", die_before_champion)
    with pytest.raises(KeyboardInterrupt):
        registry.promote(table_settings, v2)
    monkeypatch.undo()
    assert aliases(table_settings)[CHAMPION] == v1  # still serving the old champion
    assert registry.promote(table_settings, v2).after.version == v2  # and the rerun completes it
    assert aliases(table_settings) == {CHAMPION: v2, PREVIOUS: v1, CHALLENGER: None}


def test_gate_compares_both_versions_on_the_same_rows(
    table_settings: Settings, train_runs, bank_sample: pd.DataFrame
) -> None:
    strong = train_runs(table_settings, table_settings.experiment_name, grid=STRONG)[0]
    chance = train_runs(table_settings, table_settings.retrain_experiment_name, shuffle_labels=True)[0]
    champion = registry.register_run(table_settings, strong.run_id)[0]
    registry.promote(table_settings, champion.version)
    challenger = registry.register_run(table_settings, chance.run_id)[0]
    rows = holdout(bank_sample)

    rejected = registry.evaluate_gate(table_settings, challenger, champion, rows, tolerance=0.01)
    assert not rejected.passed
    assert rejected.rows == len(rows.frame) == 900
    # the gate's champion score is the champion's real score on these rows
    proba = registry.score_version(table_settings, champion.version, rows.frame)
    expected = classification_metrics(labels_to_int(rows.frame[TARGET]), proba)["roc_auc"]
    assert math.isclose(rejected.champion_value, expected)
    tags = registry.describe(table_settings, challenger.version).tags
    assert tags["gate.passed"] == "false" and tags["gate.champion_version"] == champion.version
    assert "REJECTED" in str(registry.GateRejected(rejected))

    reversed_ = registry.evaluate_gate(table_settings, champion, challenger, rows, tolerance=0.0)
    assert reversed_.passed and reversed_.delta > 0
    loose = registry.evaluate_gate(table_settings, challenger, champion, rows, tolerance=1.0)
    assert loose.passed
    assert registry.get_alias(table_settings, CHAMPION).version == champion.version  # the gate moves nothing


def test_gate_direction_for_losses() -> None:
    common = {
        "challenger_version": "2",
        "champion_version": "1",
        "rows": 10,
        "snapshot_id": "1",
        "tolerance": 0.01,
    }
    assert GateResult(metric="test_log_loss", challenger_value=0.30, champion_value=0.295, **common).passed
    assert not GateResult(metric="test_log_loss", challenger_value=0.40, champion_value=0.30, **common).passed
    assert not GateResult(metric="test_roc_auc", challenger_value=0.70, champion_value=0.80, **common).passed


def test_holdout_rows_are_the_test_split_of_the_current_snapshot(spark, sample_table: Settings) -> None:
    from lib.lake import current_snapshot_id

    rows = registry.holdout_rows(spark, sample_table)
    assert rows.snapshot_id == current_snapshot_id(spark, sample_table)
    assert rows.table == sample_table.table_ident
    assert len(rows.frame) == 900
    assert np.isclose(labels_to_int(rows.frame[TARGET]).mean(), 0.117, atol=0.01)


def test_holdout_leaves_out_every_row_the_compared_versions_trained_on(
    spark, sample_table: Settings, train_runs, bank_sample: pd.DataFrame, bank_full: pd.DataFrame
) -> None:
    """After a batch the split of the grown table moves: rows the champion was fitted on land in
    the new test split, and the gate must not score it on them."""
    from lib.features import spark_ddl
    from lib.lake import append, current_snapshot_id

    first = current_snapshot_id(spark, sample_table)
    train_runs(sample_table, sample_table.experiment_name, snapshot_id=first)
    champion = registry.register_best(sample_table, sample_table.experiment_name)
    batch = bank_full.sample(1000, random_state=1)
    append(spark, sample_table, spark.createDataFrame(batch, schema=spark_ddl()))

    everything = registry.holdout_rows(spark, sample_table).frame
    fair = registry.holdout_rows(spark, sample_table, [champion]).frame
    # what 07 does: no session, the small table is read by pyiceberg, and the rows are the same
    jvm_free = registry.holdout_rows(None, sample_table, [champion])
    assert jvm_free.engine == "pyiceberg"
    pd.testing.assert_frame_equal(jvm_free.frame, fair)

    key = list(everything.columns)
    champion_train = split(bank_sample, seed=DEFAULT_SEED)[0][key]
    assert len(everything.merge(champion_train, on=key)) > 100  # the moved split really leaks
    assert fair.merge(champion_train, on=key).empty
    assert len(fair.merge(everything.drop_duplicates(), on=key)) == len(fair) > 300
    assert set(labels_to_int(fair[TARGET])) == {0, 1}


def test_undo_promotion_puts_every_alias_back(registered_model: tuple[Settings, list[str]]) -> None:
    settings, (v1, v2) = registered_model
    assert aliases(settings) == {CHAMPION: v2, PREVIOUS: None, CHALLENGER: None}
    promotion = registry.promote(settings, v1)
    assert aliases(settings) == {CHAMPION: v1, PREVIOUS: v2, CHALLENGER: None}

    registry.undo_promotion(settings, promotion, previous=None)

    assert aliases(settings) == {CHAMPION: v2, PREVIOUS: None, CHALLENGER: v1}
    assert "promotion_undone_at" in registry.describe(settings, v1).tags


def test_list_versions_is_newest_first_with_aliases(registered_model: tuple[Settings, list[str]]) -> None:
    settings, (v1, v2) = registered_model
    registry.promote(settings, v1)  # champion v1, previous v2
    listed = registry.list_versions(settings)
    assert [(i.version, i.aliases) for i in listed] == [(v2, (PREVIOUS,)), (v1, (CHAMPION,))]
    assert all(i.snapshot_id == "0" and i.metric_name == "test_roc_auc" for i in listed)
    assert registry.list_versions(dataclasses.replace(settings, user=f"{settings.user}_none")) == []


def test_deployment_picks_the_best_run_of_the_newest_training(table_settings: Settings, train_runs) -> None:
    """An older, stronger grid must not shadow the training just done (its scores came from another
    split); the gate, not the leaderboard across history, decides whether the new one is good enough."""
    train_runs(table_settings, table_settings.experiment_name, grid=STRONG)
    newest = train_runs(table_settings, table_settings.experiment_name, grid=[*WEAK, {"max_depth": 2}])
    best_new = max(newest, key=lambda r: r.metrics["test_roc_auc"])
    assert registry.best_run_id(table_settings, table_settings.experiment_name) == best_new.run_id


def test_version_holdout_is_the_versions_own_test_split(
    spark, registered_on_table: tuple[Settings, list[str]], bank_sample: pd.DataFrame
) -> None:
    """08 --source table sends these rows: a model trained with --seed 7 must get its own held-out
    rows, not the default seed's (most of which it was fitted on)."""
    from lib.lake import current_snapshot_id

    settings, (_, v2) = registered_on_table
    rows = registry.version_holdout(spark, settings, registry.describe(settings, v2))

    assert (rows.snapshot_id, rows.table) == (current_snapshot_id(spark, settings), settings.table_ident)
    train, test = split(bank_sample, seed=7)
    key = list(test.columns)
    assert len(rows.frame) == len(test) == len(rows.frame.merge(test, on=key))
    assert rows.frame.merge(train, on=key).empty
    default_test = split(bank_sample, seed=DEFAULT_SEED)[1]
    assert len(default_test.merge(train, on=key)) > len(default_test) // 2  # what seed 42 would have sent
