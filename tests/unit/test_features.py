"""The one feature definition: schema helpers, encoders and record validation."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest

from lib.features import (
    CATEGORIES,
    LEAKY,
    NUMERIC,
    RAW_COLUMNS,
    TARGET,
    FeatureError,
    FeatureSet,
    encode_frame,
    encode_records,
    input_example,
    labels_to_int,
    pandas_dtypes,
    spark_ddl,
    validate_record,
)

RECORD = {
    "age": 41, "job": "technician", "marital": "married", "education": "secondary", "default": "no",
    "balance": 1200, "housing": "yes", "loan": "no", "contact": "cellular", "day": 15, "month": "may",
    "duration": 180, "campaign": 2, "pdays": -1, "previous": 0, "poutcome": "unknown",
}  # fmt: skip


def test_schema_helpers_agree_on_columns_and_types() -> None:
    ddl = [part.split() for part in spark_ddl().split(", ")]
    assert [name.strip("`") for name, _ in ddl] == list(RAW_COLUMNS)
    assert {name.strip("`"): kind for name, kind in ddl} == {
        c: ("int" if c in NUMERIC else "string") for c in RAW_COLUMNS
    }
    dtypes = pandas_dtypes()
    assert list(dtypes) == list(RAW_COLUMNS)
    assert {c for c, t in dtypes.items() if t == "int64"} == set(NUMERIC)
    assert set(CATEGORIES) | set(NUMERIC) | {TARGET} == set(RAW_COLUMNS)


def test_csv_round_trip_with_pandas_dtypes(bank_sample: pd.DataFrame) -> None:
    text = bank_sample.head(50).to_csv(sep=";", index=False)
    back = pd.read_csv(io.StringIO(text), sep=";", dtype=pandas_dtypes())
    pd.testing.assert_frame_equal(back, bank_sample.head(50))


@pytest.mark.parametrize("include_duration", [False, True])
def test_encode_frame_matches_encode_records(bank_sample: pd.DataFrame, include_duration: bool) -> None:
    fs = FeatureSet(include_duration=include_duration)
    frame = bank_sample.head(200)
    records = frame.to_dict(orient="records")
    np.testing.assert_array_equal(encode_frame(frame, fs), encode_records(records, fs))
    assert encode_frame(frame, fs).shape == (200, len(fs.columns))


def test_categories_encode_to_vocabulary_codes_and_unseen_to_nan() -> None:
    fs = FeatureSet()
    frame = pd.DataFrame([RECORD, {**RECORD, "job": "astronaut", "month": "May"}])
    matrix = encode_frame(frame, fs)
    job, month = fs.columns.index("job"), fs.columns.index("month")
    assert matrix[0, job] == CATEGORIES["job"].index("technician")
    assert matrix[0, month] == CATEGORIES["month"].index("may")
    assert math.isnan(matrix[1, job]) and math.isnan(matrix[1, month])
    assert math.isnan(encode_records([{**RECORD, "job": "astronaut"}], fs)[0, job])


def test_missing_column_is_named() -> None:
    frame = pd.DataFrame([RECORD]).drop(columns=["balance"])
    with pytest.raises(FeatureError, match="balance"):
        encode_frame(frame, FeatureSet())


def test_duration_is_only_a_feature_when_asked_for() -> None:
    assert LEAKY not in FeatureSet().columns
    assert LEAKY in FeatureSet(include_duration=True).columns
    with_duration = FeatureSet(include_duration=True)
    assert len(with_duration.columns) == len(FeatureSet().columns) + 1
    assert [c for c in RAW_COLUMNS if c in with_duration.columns] == list(with_duration.columns)
    assert with_duration.feature_types == ["c" if c in CATEGORIES else "q" for c in with_duration.columns]
    assert FeatureSet.from_dict(with_duration.to_dict()) == with_duration
    assert list(input_example(pd.DataFrame([RECORD]), FeatureSet()).columns) == list(FeatureSet().columns)


def test_validate_record_keeps_model_columns_only() -> None:
    clean = validate_record({**RECORD, "y": "no"}, FeatureSet())
    assert list(clean) == list(FeatureSet().columns)
    assert "duration" in validate_record(RECORD, FeatureSet(include_duration=True))


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"age": "41"}, "age", "must be a number"),
        ({"age": True}, "age", "must be a number"),
        ({"balance": float("nan")}, "balance", "finite"),
        ({"balance": 10.5}, "balance", "integer"),
        ({"job": 3}, "job", "must be a string"),
        ({"salary": 100}, "salary", "unknown field"),
    ],
)
def test_validate_record_errors_name_the_field(change: dict, field: str, message: str) -> None:
    with pytest.raises(FeatureError, match=message) as info:
        validate_record({**RECORD, **change}, FeatureSet())
    assert field in str(info.value)


def test_validate_record_missing_field_and_non_mapping() -> None:
    record = dict(RECORD)
    del record["pdays"]
    with pytest.raises(FeatureError, match="missing field: pdays"):
        validate_record(record, FeatureSet())
    with pytest.raises(FeatureError, match="JSON object"):
        validate_record([1, 2, 3], FeatureSet())  # type: ignore[arg-type]


def test_labels_to_int_rejects_anything_but_yes_no() -> None:
    assert labels_to_int(["yes", "no", "no"]).tolist() == [1, 0, 0]
    with pytest.raises(FeatureError, match="'maybe'"):
        labels_to_int(["yes", "maybe"])
