"""A served prediction's rows as they travel to the writer process and land in the predictions table.

Split from `lib.serving.prediction_log` (the writer and its process): these are the values both
ends agree on, a `PredictionRow` or one request's `PredictionBatch`, and how they become table rows
(feature JSON text exactly as `json.dumps` writes it, times as naive UTC, SQLite's DATETIME text).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from itertools import chain, repeat
from typing import Any, NamedTuple

import orjson
from sqlalchemy import insert

from lib.metrics_store import MetricsStore, predictions, to_utc_naive


class PredictionRow(NamedTuple):
    """One served prediction as the server hands it to the writer (a tuple: cheap to make and pickle).

    `ts` is the receive time in epoch seconds; `event_ts` an aware datetime or epoch seconds.
    """

    uuid: str
    ts: float
    event_ts: datetime | float
    model_name: str
    model_version: str
    features: Mapping[str, Any]
    probability: float
    prediction: int
    latency_ms: float

    def as_db(self) -> dict[str, Any]:
        """The row as the predictions table's column values, times as naive UTC."""
        return {
            "uuid": self.uuid,
            "ts": to_utc_naive(self.ts),
            "event_ts": to_utc_naive(self.event_ts),
            "model_name": self.model_name,
            "model_version": self.model_version,
            "features": features_json(self.features),
            "probability": float(self.probability),
            "prediction": int(self.prediction),
            "latency_ms": float(self.latency_ms),
        }


class PredictionBatch(NamedTuple):
    """One request's scored rows as the server hands them to the writer: shared fields once, per-row lists."""

    ts: float
    event_ts: datetime | float
    model_name: str
    model_version: str
    latency_ms: float
    uuids: list[str]
    features: list[Any]  # per row a mapping of its raw features, or its values in `columns` order
    probabilities: list[float]
    predictions: list[int]
    columns: tuple[str, ...] | None = None  # the feature names when `features` holds value rows


Item = PredictionBatch | Sequence[PredictionRow]


def row_count(item: Item) -> int:
    """How many prediction rows a queued item holds."""
    return len(item.uuids) if isinstance(item, PredictionBatch) else len(item)


COLUMNS = ("uuid", "ts", "event_ts", "model_name", "model_version", "features", "probability", "prediction",
           "latency_ms")  # fmt: skip


_JSON = json.JSONEncoder(separators=(",", ":")).encode  # json.dumps with these arguments, one encoder for all


_PLAIN = frozenset({str, int, bool, type(None)})  # values orjson writes exactly as json does (ASCII text aside)


def features_json(features: Mapping[str, Any]) -> str:
    """A row's raw features as the log stores them: `json.dumps(features, separators=(",", ":"))`.

    orjson writes the same text for string, integer, boolean and null values when it is ASCII, at
    a thirtieth of the cost (it counts once per logged row); anything else (a float, which orjson
    spells differently, non-ASCII text, an integer beyond 64 bits) goes through json.
    """
    if _PLAIN.issuperset(map(type, features.values())):
        text = _orjson_ascii(features)
        if text is not None:
            return text
    return _JSON(dict(features))


def _orjson_ascii(features: Mapping[str, Any]) -> str | None:
    try:
        text = orjson.dumps(features)
    except TypeError:  # not a plain dict, or an integer beyond 64 bits: json writes it
        return None
    return text.decode("ascii") if text.isascii() and b"\x7f" not in text else None  # json escapes DEL too


def rows_json(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """`features_json` of every value row of one batch (values in `names` order), checked once per batch."""
    width = len(names)
    if set(map(len, rows)) <= {width} and _PLAIN.issuperset(map(type, chain.from_iterable(rows))):
        texts = _orjson_texts(names, rows)
        if texts is not None:
            return texts
    return [features_json(dict(zip(names, row, strict=True))) for row in rows]


def _orjson_texts(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str] | None:
    try:
        texts = list(map(orjson.dumps, map(dict, map(zip, repeat(names), rows))))
    except TypeError:  # an integer beyond 64 bits: json writes it
        return None
    joined = b"".join(texts)
    if not joined.isascii() or b"\x7f" in joined:
        return None
    return list(map(bytes.decode, texts))


def db_rows(items: Sequence[Item]) -> list[tuple[Any, ...]]:
    """The predictions table's values (COLUMNS order, times as naive UTC datetimes) of queued items."""
    out: list[tuple[Any, ...]] = []
    for item in items:
        if isinstance(item, PredictionBatch):
            ts = to_utc_naive(item.ts)
            event = ts if item.event_ts == item.ts else to_utc_naive(item.event_ts)  # no event time sent
            name, version, latency = item.model_name, item.model_version, float(item.latency_ms)
            if item.columns is not None:  # value rows: their JSON text is made here, off the server's GIL
                n = len(item.uuids)
                if not len(item.features) == len(item.probabilities) == len(item.predictions) == n:
                    raise ValueError(f"a prediction batch of {n} uuids has other numbers of rows")
                texts = rows_json(item.columns, item.features)
                out.extend(
                    zip(item.uuids, repeat(ts), repeat(event), repeat(name), repeat(version), texts,
                        map(float, item.probabilities), map(int, item.predictions), repeat(latency))
                )  # fmt: skip
                continue
            out.extend(
                (u, ts, event, name, version, features_json(f), float(p), int(y), latency)
                for u, f, p, y in zip(item.uuids, item.features, item.probabilities, item.predictions, strict=True)
            )
        else:
            out.extend(tuple(r.as_db()[c] for c in COLUMNS) for r in item)
    return out


def _sqlite_time(value: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME text (its default storage format), so readers see the same values."""
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}"
    )


def insert_rows(store: MetricsStore, rows: list[tuple[Any, ...]]) -> None:
    """Insert `db_rows` output in one transaction.

    SQLite gets a driver-level executemany of plain tuples (no per-row bind processing); other
    databases go through SQLAlchemy's insert.
    """
    if not rows:
        return
    if store.engine.dialect.name != "sqlite":
        with store.engine.begin() as conn:
            conn.execute(insert(predictions), [dict(zip(COLUMNS, r, strict=True)) for r in rows])
        return
    times: dict[datetime, str] = {}  # a request's rows share their two times

    def text(value: datetime) -> str:
        got = times.get(value)
        if got is None:
            got = times[value] = _sqlite_time(value)
        return got

    values = [(u, text(ts), text(ev), n, v, f, p, y, lat) for u, ts, ev, n, v, f, p, y, lat in rows]
    sql = f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    with store.engine.begin() as conn:
        conn.exec_driver_sql(sql, values)
