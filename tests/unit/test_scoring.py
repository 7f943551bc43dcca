"""Batch scoring's pure parts: names, settings and flags of 10 (no Spark, no MLflow)."""

from __future__ import annotations

import importlib.util

import pytest

from lib.cliargs import ArgumentParser
from lib.config import PROJECT_ROOT, ConfigError, load_settings
from lib.scoring import CALL_LIST_COLUMNS, KEY, call_list_ident, call_list_name


def load_script():
    spec = importlib.util.spec_from_file_location("batch_scoring", PROJECT_ROOT / "10_batch_scoring.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_call_list_lives_next_to_the_table_per_owner():
    s = load_settings({"PROJECT_OWNER": "Alice"})
    assert call_list_name(s) == "call_list_alice"
    assert call_list_ident(s) == "lake.bnk_mlops_hol_alice.call_list_alice"
    assert CALL_LIST_COLUMNS[0] == KEY and {"probability", "expected_profit", "rank", "decile"} <= set(
        CALL_LIST_COLUMNS
    )
    assert {"model_name", "model_version", "source_snapshot_id", "decision"} <= set(CALL_LIST_COLUMNS)


def test_campaign_amounts_come_from_settings():
    s = load_settings({})
    assert (s.campaign_cost_per_call, s.campaign_value_per_deposit) == (5.0, 100.0)
    s = load_settings({"CAMPAIGN_COST_PER_CALL": "2.5", "CAMPAIGN_VALUE_PER_DEPOSIT": "80"})
    assert (s.campaign_cost_per_call, s.campaign_value_per_deposit) == (2.5, 80.0)
    for bad in ("0", "-3", "inf", "five"):
        with pytest.raises(ConfigError, match="CAMPAIGN_COST_PER_CALL"):
            load_settings({"CAMPAIGN_COST_PER_CALL": bad})


def test_parser_defaults_to_the_settings(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CAMPAIGN_VALUE_PER_DEPOSIT", "70")
    parser = load_script().build_parser()
    assert isinstance(parser, ArgumentParser)
    args = parser.parse_args([])
    assert (args.cost_per_call, args.value_per_deposit) == (5.0, 70.0)
    assert args.top is None and args.csv is None and args.snapshot is None


@pytest.mark.parametrize(
    "argv",
    [["--top", "5"], ["--top", "0", "--csv", "x.csv"], ["--cost-per-call", "0"], ["--snapshot", "abc"]],
)
def test_usage_errors_exit_64_before_any_work(argv: list[str]):
    with pytest.raises(SystemExit) as exc:
        load_script().main(argv)
    assert exc.value.code == 64


def test_the_executor_side_scores_like_bank_model_and_imports_no_mlflow():
    """lib.batch_worker on an encoded batch gives BankModel.predict's probabilities; it imports no MLflow or lib."""
    import ast
    import types

    import numpy as np
    import pandas as pd
    import xgboost as xgb

    from lib.batch_worker import ROW_HASH, partition_scorer
    from lib.features import CATEGORIES, FeatureSet, encode_frame
    from lib.model import BankModel

    features = FeatureSet()
    rng = np.random.default_rng(7)
    raw = pd.DataFrame({c: rng.choice(CATEGORIES[c], 200) if c in CATEGORIES else rng.integers(0, 90, 200)
                        for c in features.columns})  # fmt: skip
    raw.loc[0, "job"] = "astronaut"  # unknown category: NaN in both encodings
    matrix = encode_frame(raw, features)
    booster = xgb.train({"max_depth": 3}, xgb.DMatrix(matrix, label=rng.integers(0, 2, 200)), num_boost_round=5)
    model = BankModel()
    model.booster, model.features, model.threshold = booster, features, 0.5

    encoded = pd.DataFrame(matrix, columns=list(features.columns)).assign(**{ROW_HASH: [f"h{i}" for i in range(200)]})
    shipped = types.SimpleNamespace(value=bytes(booster.save_raw("ubj")))  # what a Spark broadcast offers
    [out] = list(partition_scorer(shipped, "t/1", features.columns)(iter([encoded])))
    assert out[ROW_HASH].tolist() == encoded[ROW_HASH].tolist()
    assert np.array_equal(out["probability"].to_numpy(), model.predict(None, raw)["probability"].to_numpy())

    tree = ast.parse((PROJECT_ROOT / "lib" / "batch_worker.py").read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"__future__", "collections", "typing", "numpy", "pandas", "xgboost"}
