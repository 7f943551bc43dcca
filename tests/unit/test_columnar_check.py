"""The column-wise acceptor of the fast path takes only bodies the pydantic path takes, with the same
matrix, the same logged features (names, values and their order) and the same event time."""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import orjson
import pytest

from lib.features import FeatureSet, encode_records
from lib.serving.columnar import BodyChecker
from lib.serving.schemas import build_schemas, record_checker
from lib.serving.scoring import without_target

RECORD = {"age": 41, "job": "technician", "marital": "married", "education": "secondary", "default": "no",
          "balance": 1270, "housing": "yes", "loan": "no", "contact": "cellular", "day": 5, "month": "may",
          "campaign": 1, "pdays": -1, "previous": 0, "poutcome": "unknown"}  # fmt: skip
VALUES = [41, 41.0, 41.5, 17, 18, 95, 121, -1, 0, True, None, "41", "married", "", "x" * 101, "ménagère",
          10**30, 2**64 - 1, [1], {"a": 1}]  # fmt: skip
MAX_BATCH = 5


def records_variants() -> list[list[dict[str, Any]]]:
    many = [{**RECORD, "age": 20 + i, "job": "unknown-job" if i == 2 else "admin."} for i in range(4)]
    out = [[RECORD], many, [dict(reversed(RECORD.items()))], [{**RECORD, "y": "yes"}], [{**RECORD, "duration": 99}],
           [{**RECORD, "y": "maybe"}], [{k: v for k, v in RECORD.items() if k != "age"}], [{**RECORD, "nope": 1}],
           [RECORD] * (MAX_BATCH + 1), [RECORD, {**RECORD, "duration": 5}], [{**RECORD, "y": [1]}],
           [{**RECORD, "duration": 5, "y": "no"}] * 3]  # fmt: skip
    out += [[RECORD, {**RECORD, col: value}] for col, value in itertools.product(("age", "pdays", "job"), VALUES)]
    out += [[{**RECORD, "duration": value}] for value in VALUES]
    return out


def predict_bodies() -> list[Any]:
    out: list[Any] = [{"request": recs if len(recs) > 1 else recs[0]} for recs in records_variants()]
    out += [{"request": [RECORD]}, {"request": []}, {"request": RECORD, "accessKey": "k"},
            {"request": RECORD, "accessKey": 1}, {"request": RECORD, "other": 1}, {"request": "x"},
            [RECORD], None]  # fmt: skip
    for when in ("2024-03-01T12:30:00Z", "2024-03-01T12:30:00+02:00", "2024-03-01T12:30:00", "1999-12-31T00:00:00Z",
                 "2024-02-30T00:00:00Z", 1700000000, None):  # fmt: skip
        out.append({"request": RECORD, "event_time": when})
    return out


def invocations_bodies() -> list[Any]:
    out: list[Any] = []
    for recs in records_variants():
        columns = list(dict.fromkeys(itertools.chain.from_iterable(recs)))
        data = [[r.get(c) for c in columns] for r in recs]
        out.append({"dataframe_split": {"columns": columns, "data": data}})
    cols, row = list(RECORD), list(RECORD.values())
    out += [{"dataframe_split": {"columns": cols, "data": [row], "index": [0]}},
            {"dataframe_split": {"columns": cols, "data": [row[:-1]]}},
            {"dataframe_split": {"columns": cols + ["age"], "data": [[*row, 41]]}},
            {"dataframe_split": {"columns": cols, "data": []}},
            {"dataframe_split": {"columns": cols, "data": [row]}, "accessKey": "k"},
            {"dataframe_split": {"columns": cols, "data": [row]}, "params": {}},
            {"dataframe_split": {"columns": cols, "data": [row]}, "dataframe_records": [RECORD]},
            {"dataframe_records": [RECORD]}, {"dataframe_split": [row]}]  # fmt: skip
    return out


def full_path(model: Any, data: Any, features: FeatureSet, checked: bool) -> tuple | None:
    """What the routes do: pydantic, the record check, encode_records; None if anything refuses."""
    try:
        payload = model.model_validate(json.loads(json.dumps(data)))
        records = payload.records()
        rows = records if checked else [record_checker(features)(r) for r in records]
    except Exception:
        return None
    return encode_records(rows, features), without_target(records), getattr(payload, "event_time", None)


@pytest.mark.parametrize("features", [FeatureSet(), FeatureSet(include_duration=True)], ids=["default", "duration"])
@pytest.mark.parametrize("path", ["/predict", "/invocations"])
def test_the_column_check_accepts_only_what_the_routes_accept(features: FeatureSet, path: str) -> None:
    schemas = build_schemas(features, MAX_BATCH)
    checker = BodyChecker(features, MAX_BATCH)
    predict = path == "/predict"
    bodies = predict_bodies() if predict else invocations_bodies()
    taken = 0
    for body in bodies:
        data = orjson.loads(json.dumps(body))
        got = checker.predict(data) if predict else checker.invocations(data)
        if got is None:
            continue
        taken += 1
        want = full_path(schemas.predict if predict else schemas.invocations, body, features, predict)
        assert want is not None, body
        matrix, logged, event_time = want
        assert np.array_equal(got.matrix, matrix, equal_nan=True), body
        assert [list(dict(zip(got.names, row, strict=True)).items()) for row in got.rows] == [
            list(r.items()) for r in logged
        ], body
        assert got.event_time == event_time, body
    assert taken >= 5  # the common bodies do take this way
