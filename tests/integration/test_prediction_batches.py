"""A request's rows handed over as one PredictionBatch reach the predictions table exactly as the
per-row PredictionRow path (SQLAlchemy's insert) writes them: same column values, same SQLite text
for times, so readers of the log cannot tell the two apart."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from lib.metrics_store import MetricsStore
from lib.serving.log_rows import PredictionBatch, PredictionRow, db_rows, insert_rows
from lib.serving.prediction_log import PredictionWriter

pytestmark = pytest.mark.integration  # SQLite files and the writer process

RECORD = {"age": 41, "job": "technician", "marital": "married", "education": "secondary", "default": "no",
          "balance": 1270, "housing": "yes", "loan": "no", "contact": "cellular", "day": 5, "month": "may",
          "campaign": 1, "pdays": -1, "previous": 0, "poutcome": "unknown"}  # fmt: skip
NOW = datetime(2026, 11, 23, 14, 0, 0, tzinfo=timezone.utc).timestamp()  # a whole second: .000000 in SQLite


def batch(event: datetime | float, n: int = 4, start: int = 0) -> PredictionBatch:
    return PredictionBatch(
        ts=NOW + start,
        event_ts=event,
        model_name="bank-promo-test",
        model_version="3",
        latency_ms=0.731,
        uuids=[f"00000000-0000-4000-8000-{i:012d}" for i in range(start, start + n)],
        features=[{**RECORD, "age": 20 + i, "job": "ménagère" if i == 1 else "technician"} for i in range(n)],
        probabilities=[0.1 * i + 0.012345678 for i in range(n)],
        predictions=[i % 2 for i in range(n)],
    )


def as_rows(b: PredictionBatch) -> list[PredictionRow]:
    return [
        PredictionRow(u, b.ts, b.event_ts, b.model_name, b.model_version, f, p, y, b.latency_ms)
        for u, f, p, y in zip(b.uuids, b.features, b.probabilities, b.predictions, strict=True)
    ]


def table(store: MetricsStore) -> list[tuple]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT * FROM predictions ORDER BY uuid"))]


def test_batches_write_what_rows_write(tmp_path: Path) -> None:
    aware = datetime(2024, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    batches = [batch(NOW - 3600.25), batch(aware, start=10), batch(NOW + 0.5, n=1, start=20)]
    by_rows, by_batches = (MetricsStore(f"sqlite:///{tmp_path / name}.db") for name in ("rows", "batches"))
    by_rows.write_predictions([r for b in batches for r in as_rows(b)])
    insert_rows(by_batches, db_rows(batches))
    assert table(by_batches) == table(by_rows)
    assert len(table(by_rows)) == 9
    assert by_batches.read_predictions().equals(by_rows.read_predictions())


def test_the_writer_process_takes_batches_and_rows(tmp_path: Path) -> None:
    store = MetricsStore(f"sqlite:///{tmp_path / 'metrics.db'}")
    writer = PredictionWriter(store.url, interval=60).start()
    try:
        writer.submit(batch(NOW, n=5))
        writer.submit(as_rows(batch(NOW, n=2, start=100)))
        assert writer.backlog == 7
        writer.flush()
        assert writer.written == 7 and writer.backlog == 0
    finally:
        writer.close()
    assert store.count_predictions() == 7


def test_value_rows_write_what_mappings_write(tmp_path: Path) -> None:
    """The fast path's hand-off (values in `columns` order) gives the rows a mapping per row gives,
    with json's text for every value (floats, non-ASCII text, huge integers fall back per row)."""
    names = tuple(RECORD)
    odd = [{**RECORD, "age": 41.0}, {**RECORD, "job": "ménagère"}, {**RECORD, "balance": 2**70}, {**RECORD}]
    batches = [batch(NOW, n=3), batch(NOW, n=4, start=10)._replace(features=odd)]
    as_values = [b._replace(features=[[f[c] for c in names] for f in b.features], columns=names) for b in batches]
    by_maps, by_values = (MetricsStore(f"sqlite:///{tmp_path / name}.db") for name in ("maps", "values"))
    insert_rows(by_maps, db_rows(batches))
    insert_rows(by_values, db_rows(as_values))
    assert table(by_values) == table(by_maps) and len(table(by_maps)) == 7
