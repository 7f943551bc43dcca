"""Valid scoring bodies checked and encoded column by column: the fast path's first try.

Why: per record, the pydantic models, the record check and `encode_records` cost ~12 µs (more
than a millisecond for 100 records), almost all of it Python work per value. Here one body's
values are checked a column at a time with C-level builtins (`set(map(type, ...))`, `min`, `max`)
and the model's matrix is filled a column at a time.

It only ever accepts. A body it does not take in full (another input form, a float, a value out
of range, a field too many: any doubt) gives None and goes the way every body went before (the
pydantic models, then the app with its one definition of every refusal), so no refusal is
defined here. What it accepts, the pydantic path accepts with the same features, matrix and
logged values (tests/integration/test_serving_app.py compares both on the same bodies).
"""

from __future__ import annotations

import math
from datetime import datetime
from itertools import chain, repeat
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np
from pydantic import TypeAdapter, ValidationError

from lib.features import CATEGORIES, NUMERIC_RANGES, RAW_COLUMNS, TARGET, FeatureSet
from lib.serving.schemas import MAX_CATEGORY_LENGTH, EventTime

# JSON values the invocations rows may hold in columns the model does not use, which the pydantic
# path takes unchanged; floats are left to it (orjson reads integers beyond 64 bits as floats).
_PLAIN = frozenset({int, str, bool, type(None)})
_INVOCATIONS_KEYS = frozenset({"dataframe_split", "accessKey"})
_SPLIT_KEYS = frozenset({"columns", "data"})
_PREDICT_KEYS = frozenset({"request", "event_time", "accessKey"})


def _key_text(data: dict[str, Any]) -> bool:
    """No `accessKey`, or a string one (the models' type; the key itself is the guard's business)."""
    return type(data.get("accessKey", "")) is str


class Accepted(NamedTuple):
    """A body taken in full: the model's matrix and what the prediction log keeps of each row."""

    matrix: np.ndarray
    names: tuple[str, ...]  # the logged feature names (the outcome `y` dropped), in logged order
    rows: list[Any]  # per row, its values in `names` order (a list or tuple)
    event_time: datetime | None


class BodyChecker:
    """The column-wise acceptor of one app's /invocations and /predict bodies."""

    def __init__(self, features: FeatureSet, max_batch: int) -> None:
        self.columns = features.columns
        self.max_batch = max_batch
        self.raw = frozenset(RAW_COLUMNS)
        self.model = frozenset(features.columns)
        # pydantic's record model gives the fields in RAW_COLUMNS order: the log keeps them so
        self.order = tuple(c for c in RAW_COLUMNS if c in self.model)
        self.codes = {
            c: {v: float(i) for i, v in enumerate(CATEGORIES[c])} for c in features.columns if c in CATEGORIES
        }  # as lib.features encodes them
        self.numeric = [c for c in features.columns if c not in CATEGORIES]
        self.numeric_at = [features.columns.index(c) for c in self.numeric]
        self.lows = np.array([NUMERIC_RANGES[c][0] for c in self.numeric], dtype=np.int64)
        self.highs = np.array([NUMERIC_RANGES[c][1] for c in self.numeric], dtype=np.int64)
        self.categorical = [c for c in features.columns if c in CATEGORIES]
        self.categorical_at = [features.columns.index(c) for c in self.categorical]
        self.spec = [(c, self.codes.get(c), *NUMERIC_RANGES.get(c, (0, 0))) for c in features.columns]
        self.event_time = TypeAdapter(EventTime)

    def _matrix(self, columns: dict[str, Any], n: int, max_length: int | None) -> np.ndarray | None:
        """The encoded matrix (as `encode_records`), or None unless every value is a valid one."""
        if n == 1:
            return self._row(columns, max_length)
        numeric = [columns[c] for c in self.numeric]
        if set(map(type, chain.from_iterable(numeric))) != {int}:
            return None
        try:
            values = np.array(numeric, dtype=np.int64)
        except OverflowError:
            return None
        if (values.min(axis=1) < self.lows).any() or (values.max(axis=1) > self.highs).any():
            return None
        texts = [columns[c] for c in self.categorical]
        if set(map(type, chain.from_iterable(texts))) != {str}:
            return None
        if max_length is not None and max(map(len, chain.from_iterable(texts))) > max_length:
            return None
        out = np.empty((n, len(self.columns)), dtype=np.float32)
        out[:, self.numeric_at] = values.T
        nan = repeat(math.nan)
        out[:, self.categorical_at] = np.array(
            [list(map(self.codes[c].get, col, nan)) for c, col in zip(self.categorical, texts, strict=True)],
            dtype=np.float32,
        ).T
        return out

    def _row(self, columns: dict[str, Any], max_length: int | None) -> np.ndarray | None:
        """`_matrix` for one row, value by value: numpy's per-column calls cost more than one row's work."""
        out = []
        for col, codes, lo, hi in self.spec:
            [value] = columns[col]
            if codes is not None:
                if type(value) is not str or (max_length is not None and len(value) > max_length):
                    return None
                out.append(codes.get(value, math.nan))
            else:
                if type(value) is not int or not lo <= value <= hi:
                    return None
                out.append(value)
        return np.array([out], dtype=np.float32)

    def invocations(self, data: Any) -> Accepted | None:
        """`{"dataframe_split": {"columns": [...], "data": [[...], ...]}}` (with an optional accessKey)."""
        if type(data) is not dict or not _INVOCATIONS_KEYS.issuperset(data) or not _key_text(data):
            return None
        split = data.get("dataframe_split")
        if type(split) is not dict or not _SPLIT_KEYS.issuperset(split):
            return None
        names, rows = split.get("columns"), split.get("data")
        if type(names) is not list or type(rows) is not list or not 1 <= len(rows) <= self.max_batch:
            return None
        width = len(names)
        if (
            set(map(type, names)) != {str}
            or len(set(names)) != width
            or not self.raw.issuperset(names)
            or not self.model.issubset(names)
            or set(map(type, rows)) != {list}
            or set(map(len, rows)) != {width}
        ):
            return None
        columns = dict(zip(names, zip(*rows, strict=True), strict=True))
        if any(not _PLAIN.issuperset(map(type, columns[c])) for c in names if c not in self.model):
            return None
        matrix = self._matrix(columns, len(rows), None)
        if matrix is None:
            return None
        if TARGET in columns:
            keep = [i for i, c in enumerate(names) if c != TARGET]
            logged = tuple(names[i] for i in keep)
            rows = [tuple(row[i] for i in keep) for row in rows]
        else:
            logged = tuple(names)
        return Accepted(matrix, logged, rows, None)

    def predict(self, data: Any) -> Accepted | None:
        """`{"request": record or [records]}` whose records all hold the same fields."""
        if type(data) is not dict or not _PREDICT_KEYS.issuperset(data) or not _key_text(data):
            return None
        request = data.get("request")
        if type(request) is dict:
            records = [request]
        elif type(request) is list and 1 <= len(request) <= self.max_batch and set(map(type, request)) == {dict}:
            records = request
        else:
            return None
        fields = records[0].keys()
        if (
            not self.raw.issuperset(fields)
            or not self.model.issubset(fields)
            or set(map(len, records)) != {len(fields)}
            or not all(map(fields.__eq__, map(dict.keys, records)))
        ):
            return None  # every record with the same fields, all raw columns, the model's among them
        event_time = data.get("event_time")
        if event_time is not None:
            try:
                event_time = self.event_time.validate_python(event_time)
            except ValidationError:
                return None
        columns = {col: list(map(itemgetter(col), records)) for col in fields}
        if len(fields) != len(self.columns) and not all(self._optional(col, columns[col]) for col in fields):
            return None
        matrix = self._matrix(columns, len(records), MAX_CATEGORY_LENGTH)
        if matrix is None:
            return None
        names = self.order if len(fields) == len(self.columns) else tuple(c for c in RAW_COLUMNS if c in fields)
        names = tuple(c for c in names if c != TARGET)
        rows = list(map(itemgetter(*names), records)) if len(names) > 1 else [(r[names[0]],) for r in records]
        return Accepted(matrix, names, rows, event_time)

    def _optional(self, col: str, values: list[Any]) -> bool:
        """A column of /predict's record model that the model does not use holds valid values only."""
        if col in self.model:
            return True
        if col == TARGET:
            return set(map(type, values)) == {str} and set(values) <= {"yes", "no"}
        if col in CATEGORIES:
            return set(map(type, values)) == {str} and max(map(len, values)) <= MAX_CATEGORY_LENGTH
        lo, hi = NUMERIC_RANGES[col]
        return set(map(type, values)) == {int} and lo <= min(values) and max(values) <= hi
