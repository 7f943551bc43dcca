"""The fast record check of /invocations accepts and refuses exactly what `check_record` does."""

from __future__ import annotations

import itertools

import pytest

from lib.features import FeatureError, FeatureSet
from lib.serving.schemas import check_record, record_checker

RECORD = {"age": 41, "job": "technician", "marital": "married", "education": "secondary", "default": "no",
          "balance": 1270, "housing": "yes", "loan": "no", "contact": "cellular", "day": 5, "month": "may",
          "campaign": 1, "pdays": -1, "previous": 0, "poutcome": "unknown"}  # fmt: skip
VALUES = [41, 41.0, 41.5, 17, 121, -1, 0, True, None, "41", "married", "", float("nan"), float("inf"), 10**30, [1]]
CASES = [
    RECORD,
    {**RECORD, "y": "yes", "duration": 99},
    {**RECORD, "duration": -5},  # not a feature of the default model: not range-checked
    {**RECORD, "nope": 1},
    {k: v for k, v in RECORD.items() if k != "age"},
    "not a record",
    [RECORD],
    *({**RECORD, col: value} for col, value in itertools.product(("age", "balance", "job", "pdays"), VALUES)),
]


def outcome(fn, record):
    try:
        return "ok", fn(record)
    except FeatureError as exc:
        return "error", str(exc)


@pytest.mark.parametrize("features", [FeatureSet(), FeatureSet(include_duration=True)], ids=["default", "duration"])
def test_the_fast_check_agrees_with_check_record(features: FeatureSet) -> None:
    fast = record_checker(features)
    for record in CASES:
        assert outcome(fast, record) == outcome(lambda r: check_record(r, features), record), record
