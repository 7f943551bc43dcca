"""The prediction log on a temp SQLite file: batched background writes, feedback join, time ranges."""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from lib.database import get_engine
from lib.metrics_store import (
    FEATURE_COLUMNS,
    LOG_COLUMNS,
    MetricsStore,
    MetricsStoreError,
    metadata,
    predictions,
)
from lib.serving.log_rows import PredictionRow
from lib.serving.prediction_log import PredictionWriter

pytestmark = pytest.mark.integration  # a SQLite file and the writer process

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
RECORD = {"age": 41, "job": "technician", "marital": "married", "education": "secondary", "default": "no",
          "balance": 1270, "housing": "yes", "loan": "no", "contact": "cellular", "day": 5, "month": "may",
          "campaign": 1, "pdays": -1, "previous": 0, "poutcome": "unknown"}  # fmt: skip


def row(i: int, version: str = "1", day: int = 0) -> PredictionRow:
    event = T0 + timedelta(days=day, minutes=i)
    return PredictionRow(
        uuid=f"00000000-0000-0000-0000-{i:012d}",
        ts=event.timestamp() + 0.5,
        event_ts=event.timestamp(),
        model_name="bank-promo-test",
        model_version=version,
        features={**RECORD, "age": 20 + i},
        probability=i / 100,
        prediction=int(i % 2),
        latency_ms=0.25,
    )


@pytest.fixture
def store(tmp_path: Path) -> MetricsStore:
    return MetricsStore(f"sqlite:///{tmp_path / 'sub' / 'metrics.db'}")


def test_empty_log_has_the_documented_columns(store: MetricsStore) -> None:
    df = store.read_predictions()
    assert df.empty
    assert list(df.columns) == [*LOG_COLUMNS, *FEATURE_COLUMNS]
    assert store.count_predictions() == 0 and store.count_feedback() == 0


def test_sqlite_runs_in_wal_mode(store: MetricsStore) -> None:
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert get_engine(store.url) is store.engine


def test_writer_process_writes_batches_off_the_caller(store: MetricsStore) -> None:
    writer = PredictionWriter(store.url, interval=60).start()  # nothing is sent before flush
    try:
        for i in range(20):
            writer.submit([row(i)])
        writer.submit([row(i) for i in range(20, 30)])
        assert writer.backlog == 30
        assert store.count_predictions() == 0  # queued in memory, not written by the caller
        writer.flush()
        assert store.count_predictions() == 30
        assert writer.written == 30 and writer.backlog == 0
        writer.submit([row(30)])
    finally:
        writer.close()
    assert store.count_predictions() == 31
    assert writer.dropped == 0 and not writer.alive


def test_writer_sends_on_its_interval(store: MetricsStore) -> None:
    writer = PredictionWriter(store.url, interval=0.05).start()
    try:
        writer.submit([row(1), row(2)])
        deadline = time.monotonic() + 30
        while store.count_predictions() < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.count_predictions() == 2
    finally:
        writer.close()


def test_read_expands_features_and_types(store: MetricsStore) -> None:
    store.write_predictions([row(1), row(2, version="2")])
    df = store.read_predictions()
    assert list(df["uuid"]) == [row(1).uuid, row(2).uuid]
    assert df["age"].tolist() == [21, 22]
    assert str(df["age"].dtype) == "Int64"
    assert df["job"].tolist() == ["technician", "technician"]
    assert df["duration"].isna().all()  # not sent by these clients
    assert str(df["event_ts"].dt.tz) == "UTC"
    assert df["event_ts"].iloc[0] == pd.Timestamp(T0 + timedelta(minutes=1))
    assert df["label"].isna().all() and str(df["label"].dtype) == "Int64"
    assert df["model_version"].tolist() == ["1", "2"]


def test_feedback_joins_by_uuid_and_reports_matches(store: MetricsStore) -> None:
    store.write_predictions([row(i) for i in range(4)])
    later = T0 + timedelta(days=1)
    items = [
        {"uuid": row(0).uuid, "label": 1, "event_ts": later},
        {"uuid": row(1).uuid, "label": "no"},
        {"uuid": "not-a-logged-uuid", "label": 1},
    ]
    assert store.unknown_uuids([i["uuid"] for i in items]) == ["not-a-logged-uuid"]
    assert store.record_feedback(items) == 2
    assert store.count_feedback() == 2
    # a second label for the same uuid replaces the first
    assert store.record_feedback([{"uuid": row(0).uuid, "label": "no", "event_ts": later}]) == 1
    df = store.read_predictions().set_index("uuid")
    assert df.loc[row(0).uuid, "label"] == 0
    assert df.loc[row(0).uuid, "label_ts"] == pd.Timestamp(later)
    assert df.loc[row(1).uuid, "label"] == 0
    assert pd.isna(df.loc[row(2).uuid, "label"])
    assert store.count_feedback() == 2


def test_feedback_rejects_bad_labels_before_writing(store: MetricsStore) -> None:
    store.write_predictions([row(0)])
    with pytest.raises(MetricsStoreError, match="label must be"):
        store.record_feedback([{"uuid": row(0).uuid, "label": 1}, {"uuid": row(0).uuid, "label": True}])
    assert store.count_feedback() == 0


def test_time_range_and_version_filters(store: MetricsStore) -> None:
    store.write_predictions([row(i, version=str(1 + d), day=d) for d in range(3) for i in range(5 * d, 5 * d + 5)])
    day1 = T0 + timedelta(days=1)
    df = store.read_predictions(start=day1, end=day1 + timedelta(days=1))
    assert len(df) == 5 and set(df["model_version"]) == {"2"}
    naive = store.read_predictions(start=day1.replace(tzinfo=None))  # naive means UTC
    assert len(naive) == 10
    iso = store.read_predictions(end="2024-05-02T00:00:00+00:00")
    assert len(iso) == 5
    assert len(store.read_predictions(model_version=3)) == 5
    assert df["event_ts"].is_monotonic_increasing


def test_model_name_filter_and_span_run_in_sql(store: MetricsStore) -> None:
    """Two users' models in one database: each reader sees only its own rows, and the span
    aggregate agrees with the rows read back."""
    other = [row(i)._replace(model_name="bank-promo-other", uuid=f"11111111-0000-0000-0000-{i:012d}") for i in range(3)]
    store.write_predictions([row(i, day=1) for i in range(4)] + other)
    store.record_feedback([{"uuid": row(0).uuid, "label": 1}, {"uuid": other[0].uuid, "label": 0}])
    mine = store.read_predictions(model_name="bank-promo-test")
    assert len(mine) == 4 and set(mine["model_name"]) == {"bank-promo-test"}
    span = store.log_span(model_name="bank-promo-test")
    assert (span.rows, span.labelled) == (4, 1)
    assert span.first_event == mine["event_ts"].min().to_pydatetime()
    assert span.last_event == mine["event_ts"].max().to_pydatetime() == T0 + timedelta(days=1, minutes=3)
    assert store.log_span(model_name="bank-promo-test", model_version="2") == (0, 0, None, None)
    assert store.log_span(end=T0 + timedelta(days=1)).rows == 3
    assert len(store.read_predictions(model_name="bank-promo-other", start=T0 + timedelta(minutes=1))) == 2


def test_writer_keeps_rows_while_the_database_fails(store: MetricsStore) -> None:
    writer = PredictionWriter(store.url, interval=60).start()
    try:
        writer.submit([row(0)])
        writer.flush()
        predictions.drop(store.engine)  # the database loses the table under the running writer
        writer.submit([row(1), row(2)])
        with pytest.raises(MetricsStoreError, match="2 logged predictions are not yet written"):
            writer.flush()
        metadata.create_all(store.engine)
        writer.flush()
    finally:
        writer.close()
    assert store.count_predictions() == 2
    assert writer.dropped == 0


def test_a_dead_writer_is_reported_and_counted(store: MetricsStore) -> None:
    writer = PredictionWriter(store.url, interval=0.05).start()
    try:
        writer.submit([row(0)])
        writer.flush()
        os.kill(writer.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while writer.alive and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(MetricsStoreError, match="not running"):
            writer.flush()
        writer.submit([row(1), row(2)])
        while writer.dropped < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert writer.dropped == 2 and writer.written == 1
    finally:
        writer.close()
    assert store.count_predictions() == 1
