"""Batch generation, drift scenarios and validation on the real data, without Spark."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lib.batches import (
    DRIFT_SCENARIOS,
    BatchError,
    generate_batch,
    latest_batch_path,
    latest_pointer,
    read_batch_csv,
    validate_batch,
    validate_training_data,
    write_batch_csv,
)
from lib.dataset import read_csv
from lib.features import CATEGORIES, NUMERIC, NUMERIC_RANGES, RAW_COLUMNS, TARGET, pandas_dtypes
from lib.monitoring.drift import categorical_psi, psi
from lib.profile import bin_counts
from tests.conftest import make_settings


def feature_psi(reference: pd.Series, current: pd.Series) -> float:
    """PSI with 10 quantile bins of the reference (numeric) or category shares, via lib.monitoring."""
    if reference.name in CATEGORIES or reference.name == TARGET:
        return categorical_psi(current, reference.value_counts(normalize=True).to_dict())
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, 11)))
    return psi(bin_counts(reference, edges), bin_counts(current, edges))


@pytest.fixture(scope="module")
def batch(bank_sample: pd.DataFrame) -> pd.DataFrame:
    return generate_batch(bank_sample, 4000, seed=11)


@pytest.mark.parametrize("drift", list(DRIFT_SCENARIOS))
def test_generated_batch_is_typed_and_valid(bank_sample: pd.DataFrame, drift: str):
    out = generate_batch(bank_sample, 3000, seed=5, drift=drift)
    validate_batch(out)
    assert len(out) == 3000
    assert list(out.columns) == list(RAW_COLUMNS)
    assert {c: str(t) for c, t in out.dtypes.items()} == pandas_dtypes()
    for col, (low, high) in NUMERIC_RANGES.items():
        assert out[col].between(low, high).all(), col
    assert out["age"].min() >= 18 and out["campaign"].min() >= 1
    assert out["day"].between(1, 31).all()
    for col, values in CATEGORIES.items():
        assert set(out[col]) <= set(values), col
    assert set(out[TARGET]) <= {"yes", "no"}
    never = out["pdays"] == -1
    assert (out.loc[never, "previous"] == 0).all()
    assert (out.loc[~never, "pdays"] >= 1).all() and (out.loc[~never, "previous"] >= 1).all()


def test_rows_and_labels_come_from_source_rows(bank_sample: pd.DataFrame, batch: pd.DataFrame):
    text_cols = [c for c in RAW_COLUMNS if c not in NUMERIC]
    source_keys = set(map(tuple, bank_sample[text_cols].to_numpy()))
    assert set(map(tuple, batch[text_cols].to_numpy())) <= source_keys
    share = batch[TARGET].eq("yes").mean()
    assert abs(share - bank_sample[TARGET].eq("yes").mean()) < 0.03


def test_numbers_move_by_at_most_ten_percent(bank_sample: pd.DataFrame):
    row = bank_sample[(bank_sample["pdays"] > 100) & (bank_sample["balance"] > 1000)].head(1)
    out = generate_batch(row, 500, seed=3)
    for col in ("age", "balance", "duration", "pdays"):
        value = int(row[col].iloc[0])
        low, high = np.floor(value * 0.9) - 1, np.ceil(value * 1.1) + 1
        assert out[col].between(low, high).all(), col
        assert out[col].nunique() > 1, f"{col} is not perturbed"
    assert (out.drop(columns=list(NUMERIC)) == row.drop(columns=list(NUMERIC)).iloc[0]).all().all()


def test_same_seed_same_batch_other_seed_other_batch(bank_sample: pd.DataFrame):
    a = generate_batch(bank_sample, 500, seed=42, drift="balance")
    pd.testing.assert_frame_equal(a, generate_batch(bank_sample, 500, seed=42, drift="balance"))
    assert not a.equals(generate_batch(bank_sample, 500, seed=43, drift="balance"))


def test_no_drift_batch_is_stable(bank_sample: pd.DataFrame, batch: pd.DataFrame):
    for col in RAW_COLUMNS:
        assert feature_psi(bank_sample[col], batch[col]) < 0.1, col


@pytest.mark.parametrize("drift", [d for d in DRIFT_SCENARIOS if d != "none"])
def test_drift_scenario_shifts_what_it_claims(bank_sample: pd.DataFrame, drift: str):
    scenario = DRIFT_SCENARIOS[drift]
    assert scenario.features and scenario.description
    out = generate_batch(bank_sample, 4000, seed=11, drift=drift)
    for col in RAW_COLUMNS:
        value = feature_psi(bank_sample[col], out[col])
        if col in scenario.features:
            assert value > 0.2, f"{drift}: PSI of {col} is only {value:.3f}"
        else:
            assert value < 0.1, f"{drift}: {col} moved too (PSI {value:.3f})"


def test_generate_rejects_unknown_scenario_and_bad_rows(bank_sample: pd.DataFrame):
    with pytest.raises(BatchError, match="unknown drift scenario 'weather'.*age"):
        generate_batch(bank_sample, 10, seed=1, drift="weather")
    with pytest.raises(BatchError, match="at least one row"):
        generate_batch(bank_sample, 0, seed=1)
    with pytest.raises(BatchError, match="01_write_to_dl.py"):
        generate_batch(bank_sample.head(0), 10, seed=1)


def _broken(batch: pd.DataFrame, kind: str) -> pd.DataFrame:
    bad = batch.head(50).copy()
    if kind == "empty":
        return bad.head(0)
    if kind == "missing column":
        return bad.drop(columns=["housing"])
    if kind == "unknown column":
        return bad.assign(score=1)
    if kind == "wrong type float":
        return bad.assign(balance=bad["balance"] + 0.5)
    if kind == "wrong type text":
        return bad.assign(age=bad["age"].astype(str).where(bad.index != bad.index[3], "forty"))
    if kind == "null":
        bad.loc[bad.index[2], "marital"] = None
        return bad
    if kind == "unknown category":
        bad.loc[bad.index[1], "job"] = "astronaut"
        return bad
    if kind == "out of range":
        bad.loc[bad.index[0], "age"] = 17
        bad.loc[bad.index[1], "day"] = 32
        return bad
    if kind == "bad target":
        bad.loc[bad.index[0], TARGET] = "maybe"
        return bad
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("empty", "no rows"),
        ("missing column", "missing column.*housing"),
        ("unknown column", "unknown column.*score"),
        ("wrong type float", "balance: wrong type, expected integer, got float64"),
        ("wrong type text", "age: wrong type, expected integer, got text \\(e.g. 'forty'\\)"),
        ("null", "marital: 1 null"),
        ("unknown category", "job: 1 row.*unknown category.*'astronaut'"),
        ("out of range", "age: 1 value.*outside \\[18, 120\\].*17(.|\\n)*day: 1 value.*32"),
        ("bad target", "y: 1 bad target value.*'maybe'"),
    ],
)
def test_invalid_batches_are_rejected_with_the_problem_named(batch: pd.DataFrame, kind: str, message: str):
    with pytest.raises(BatchError, match=message) as info:
        validate_batch(_broken(batch, kind))
    assert "nothing appended" in str(info.value) or kind == "empty"
    assert info.value.problems


def test_all_problems_are_listed_at_once(batch: pd.DataFrame):
    bad = _broken(_broken(batch, "unknown category"), "bad target").drop(columns=["loan"])
    with pytest.raises(BatchError) as info:
        validate_batch(bad)
    assert len(info.value.problems) == 3


def test_new_categories_only_with_permission(batch: pd.DataFrame):
    bad = _broken(batch, "unknown category")
    with pytest.raises(BatchError, match="--allow-new-categories"):
        validate_batch(bad)
    validate_batch(bad, allow_new_categories=True)
    with pytest.raises(BatchError, match="day"):
        validate_batch(_broken(bad, "out of range"), allow_new_categories=True)


def test_training_data_error_offers_no_flag_retraining_lacks(batch: pd.DataFrame):
    with pytest.raises(BatchError) as info:
        validate_training_data(_broken(batch, "unknown category"), "at snapshot 1")
    assert "unknown category" in str(info.value)
    assert "--allow-new-categories" not in str(info.value)
    assert "rollback" in str(info.value)


def test_csv_round_trip_in_uci_format(tmp_path: Path, batch: pd.DataFrame):
    path = write_batch_csv(batch, tmp_path / "b.csv")
    assert path.read_text().startswith('"age";"job";')
    pd.testing.assert_frame_equal(read_csv(path), batch)
    pd.testing.assert_frame_equal(read_batch_csv(path), batch)
    assert not list(tmp_path.glob(".*"))


def test_read_batch_csv_keeps_bad_values_for_validation(tmp_path: Path, batch: pd.DataFrame):
    path = write_batch_csv(batch.head(20), tmp_path / "b.csv")
    lines = path.read_text().splitlines()
    lines[3] = "x" + lines[3][lines[3].index(";") :]  # age is text
    lines[5] = ";".join(["" if i == 5 else f for i, f in enumerate(lines[5].split(";"))])  # balance empty
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BatchError) as info:
        validate_batch(read_batch_csv(path))
    assert info.value.problems == [
        "age: wrong type, expected integer, got text (e.g. 'x')",
        "balance: 1 null value(s)",
    ]


def test_read_batch_csv_hints_at_the_separator(tmp_path: Path, batch: pd.DataFrame):
    path = tmp_path / "comma.csv"
    batch.head(5).to_csv(path, index=False)
    with pytest.raises(BatchError, match="';'-separated"):
        validate_batch(read_batch_csv(path))
    with pytest.raises(BatchError, match="not found"):
        read_batch_csv(tmp_path / "missing.csv")


def test_latest_batch_path_says_what_to_run(tmp_path: Path):
    settings = make_settings(tmp_path)
    with pytest.raises(BatchError, match="run 05_newbatch.py first"):
        latest_batch_path(settings)
    settings.batches_dir.mkdir(parents=True)
    latest_pointer(settings).write_text('{"path": "batch_1_none.csv"}')
    with pytest.raises(BatchError, match="missing: run 05_newbatch.py first"):
        latest_batch_path(settings)
    (settings.batches_dir / "batch_1_none.csv").write_text("x")
    assert latest_batch_path(settings) == settings.batches_dir / "batch_1_none.csv"
