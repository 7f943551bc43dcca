"""The prediction log's feature text is exactly what json.dumps writes, whichever encoder writes it."""

from __future__ import annotations

import json

import pytest

from lib.serving.log_rows import features_json

RECORD = {"age": 41, "job": "technician", "marital": "married", "education": "secondary", "default": "no",
          "balance": 1270, "housing": "yes", "loan": "no", "contact": "cellular", "day": 5, "month": "may",
          "campaign": 1, "pdays": -1, "previous": 0, "poutcome": "unknown"}  # fmt: skip
VALUES = [41, -1, 0, 41.0, 1e-05, 1e16, 1e22, 0.1, 2**63 - 1, 2**64, -(2**63), 10**30, True, None, "", "ménagère",
          "a\"b\\c\n\t", "\u2028", "\x7f", "\x01\x08\x0c\x1f", "\ud800", [1, 2.5], {"x": 1}]  # fmt: skip


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_features_json_is_json_dumps(value: object) -> None:
    record = {**RECORD, "job": value}
    assert features_json(record) == json.dumps(record, separators=(",", ":"))


def test_key_order_is_kept() -> None:
    record = dict(reversed(RECORD.items()))
    assert features_json(record) == json.dumps(record, separators=(",", ":"))
