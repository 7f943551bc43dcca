"""The web app's pure helpers: SHAP explanations add up, field names in errors, form fields, version rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import xgboost as xgb

from lib.app.customers import Customers
from lib.app.explaining import explain, field_of, form_fields, sigmoid
from lib.app.versions import gate_of, version_row
from lib.features import (
    CATEGORIES,
    NUMERIC_RANGES,
    RAW_COLUMNS,
    TARGET,
    FeatureError,
    FeatureSet,
    encode_frame,
    labels_to_int,
    validate_record,
)
from lib.model import BankModel, save_artifacts
from lib.registry import VersionInfo


@pytest.fixture(scope="module")
def tiny_model(bank_sample: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> BankModel:
    """A real 10-round booster on the sample, saved and loaded the way a logged model is."""
    features = FeatureSet()
    dm = xgb.DMatrix(
        encode_frame(bank_sample, features), label=labels_to_int(bank_sample[TARGET]),
        feature_names=list(features.columns), feature_types=features.feature_types, enable_categorical=True,
    )  # fmt: skip
    booster = xgb.train({"max_depth": 3, "objective": "binary:logistic", "nthread": 1}, dm, num_boost_round=10)
    out: Path = tmp_path_factory.mktemp("model")
    artifacts = save_artifacts(booster, features, 0.5, out)
    model = BankModel()
    model.load(Path(artifacts["booster"]), Path(artifacts["feature_spec"]))
    return model


def record_of(frame: pd.DataFrame, i: int, features: FeatureSet) -> dict:
    return validate_record(frame.drop(columns=[TARGET]).astype(object).iloc[i].to_dict(), features)


def test_contributions_add_up_to_the_probability(tiny_model: BankModel, bank_sample: pd.DataFrame) -> None:
    for i in range(5):
        record = record_of(bank_sample, i, tiny_model.features)
        result = explain(tiny_model, record, threshold=0.2)
        assert sigmoid(result.logit) == pytest.approx(result.probability, abs=1e-5)
        assert result.decision == int(result.probability >= 0.2)
        sizes = [abs(c.contribution) for c in result.contributions]
        assert sizes == sorted(sizes, reverse=True)
        assert {c.feature for c in result.contributions} == set(tiny_model.features.columns)
        assert all(c.value == record[c.feature] for c in result.contributions)
        data = result.to_dict()
        assert data["logit"] == pytest.approx(result.logit) and len(data["contributions"]) == len(sizes)


def test_a_decisive_field_moves_the_probability_in_its_direction(
    tiny_model: BankModel, bank_sample: pd.DataFrame
) -> None:
    record = record_of(bank_sample, 0, tiny_model.features)
    failed = explain(tiny_model, {**record, "poutcome": "failure"}, 0.5)
    succeeded = explain(tiny_model, {**record, "poutcome": "success"}, 0.5)
    assert succeeded.probability > failed.probability
    by_name = {c.feature: c.contribution for c in succeeded.contributions}
    assert by_name["poutcome"] > 0


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("field age must be a number, got str", "age"),
        ("missing field: balance", "balance"),
        ("unknown field(s): agee, foo", "agee"),
        ("field pdays must be between -1 and 10000", "pdays"),
        ("each record must be a JSON object of field: value", None),
    ],
)
def test_field_of_names_the_field(message: str, field: str | None) -> None:
    assert field_of(message) == field


def test_field_of_reads_what_the_feature_definition_raises() -> None:
    features = FeatureSet()
    good = {c: (CATEGORIES[c][0] if c in CATEGORIES else NUMERIC_RANGES[c][0]) for c in features.columns}
    for broken, expected in ((dict(good, job=3), "job"), ({k: v for k, v in good.items() if k != "day"}, "day")):
        with pytest.raises(FeatureError) as caught:
            validate_record(broken, features)
        assert field_of(str(caught.value)) == expected


def test_form_fields_cover_every_input_from_the_feature_definition() -> None:
    fields = {f["name"]: f for f in form_fields()}
    assert list(fields) == [c for c in RAW_COLUMNS if c != TARGET]
    assert fields["month"]["options"] == list(CATEGORIES["month"])
    assert (fields["age"]["min"], fields["age"]["max"]) == NUMERIC_RANGES["age"]


def info_with(tags: dict[str, str], aliases: tuple[str, ...] = ()) -> VersionInfo:
    base = {"selection_metric": "test_roc_auc", "metric.test_roc_auc": "0.8", "metric.test_f1": "0.4",
            "iceberg_snapshot_id": "123", "git_commit": "abc", "table": "lake.ns.t"}  # fmt: skip
    return VersionInfo.from_model_version(
        type("MV", (), {"name": "m", "version": "3", "run_id": "r1", "tags": {**base, **tags}, "aliases": aliases})()
    )


GATE_TAGS = {
    "gate.metric": "test_roc_auc", "gate.challenger_value": "0.790000", "gate.champion_value": "0.795000",
    "gate.champion_version": "2", "gate.tolerance": "0.01", "gate.rows": "900", "gate.snapshot_id": "123",
    "gate.passed": "true",
}  # fmt: skip


def test_gate_is_rebuilt_from_the_tags_07_logs() -> None:
    gate = gate_of(info_with(GATE_TAGS))
    assert gate is not None and gate.passed and gate.delta == pytest.approx(-0.005)
    assert (gate.challenger_version, gate.champion_version, gate.rows) == ("3", "2", 900)
    rejected = gate_of(info_with({**GATE_TAGS, "gate.challenger_value": "0.7"}))
    assert rejected is not None and not rejected.passed
    assert gate_of(info_with({})) is None
    assert gate_of(info_with({**GATE_TAGS, "gate.rows": "many"})) is None


def test_version_row_reads_metrics_lineage_threshold_and_economics() -> None:
    tags = {**GATE_TAGS, "decision_threshold": "0.07", "economics.expected_profit": "123.00", "promoted_at": "t"}
    row = version_row(info_with(tags, aliases=("champion",)), {"data_mode": "incremental", "rows_train": "10"})
    assert row["aliases"] == ["champion"] and row["metrics"] == {"test_f1": 0.4, "test_roc_auc": 0.8}
    assert row["lineage"]["snapshot_id"] == "123" and row["lineage"]["data_mode"] == "incremental"
    assert row["lineage"]["git_commit"] == "abc" and row["lineage"]["git_dirty"] == ""
    assert (row["threshold"], row["threshold_source"]) == (0.07, "decision_threshold")
    assert row["gate"]["passed"] is True and row["economics"] == {"expected_profit": "123.00"}
    assert row["events"] == {"promoted_at": "t"}
    plain = version_row(info_with({}), {})
    assert (plain["threshold"], plain["threshold_source"], plain["gate"]) == (0.5, "default", None)


def test_customer_pages_are_json_ready(bank_sample: pd.DataFrame) -> None:
    customers = Customers("holdout", "sample", bank_sample.head(20))
    page = customers.page(15, 10)
    assert [c["row"] for c in page] == [15, 16, 17, 18, 19]
    first = page[0]
    assert first["label"] in ("yes", "no") and TARGET not in first["record"]
    assert all(type(v) in (int, str) for v in first["record"].values())
    unlabelled = Customers("batch", "batch", bank_sample.drop(columns=[TARGET]).head(3)).page(0, 5)
    assert [c["label"] for c in unlabelled] == [None, None, None]
