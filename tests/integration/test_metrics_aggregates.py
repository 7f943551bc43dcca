"""The SQL aggregations of the prediction log on a real SQLite store, against the pandas definitions
(`lib.monitoring.performance`) computed on the same rows read back."""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lib.metrics_store import AGGREGATE_COLUMNS, MetricsStore, MetricsStoreError
from lib.monitoring.performance import performance_by_window, summarize
from lib.serving.log_rows import PredictionRow

pytestmark = pytest.mark.integration  # a SQLite file

T0 = datetime(2025, 6, 1, 0, 0, 0, 250000, tzinfo=timezone.utc)
RECORD = {"age": 41, "job": "technician", "marital": "married", "education": "secondary", "default": "no",
          "balance": 1270, "housing": "yes", "loan": "no", "contact": "cellular", "day": 5, "month": "may",
          "campaign": 1, "pdays": -1, "previous": 0, "poutcome": "unknown"}  # fmt: skip
QUALITY = ("requests", "labeled", "accuracy", "precision", "recall", "f1", "positive_rate")
LATENCY = ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms")


@pytest.fixture
def store(tmp_path: Path) -> MetricsStore:
    """An empty SQLite store (tests/services shadows it with a PostgreSQL one)."""
    return MetricsStore(f"sqlite:///{tmp_path / 'metrics.db'}")


@pytest.fixture
def filled(store: MetricsStore) -> MetricsStore:
    """Three versions over ~10 hours at uneven times; v1 half labelled, v2 a third, v3 unlabelled;
    another model's rows in the same database must never count."""
    rng = np.random.default_rng(5)
    s = store
    rows = []
    for i in range(700):
        version = "1" if i < 400 else "2" if i < 650 else "3"
        event = T0 + timedelta(seconds=float(i * 53 + rng.integers(0, 40)))
        rows.append(PredictionRow(str(uuid.uuid4()), event.timestamp() + 1, event.timestamp(), "bank-promo-a",
                                  version, RECORD, float(rng.random()), int(rng.random() < 0.3),
                                  float(rng.gamma(2.0, 4.0))))  # fmt: skip
    other = [PredictionRow(str(uuid.uuid4()), T0.timestamp(), T0.timestamp(), "bank-promo-b", "1", RECORD,
                           0.9, 1, 999.0) for _ in range(30)]  # fmt: skip
    s.write_predictions(rows + other)
    labelled = [r for r in rows if (r.model_version == "1" and rng.random() < 0.5)
                or (r.model_version == "2" and rng.random() < 0.33)]  # fmt: skip
    s.record_feedback([{"uuid": r.uuid, "label": int(rng.random() < 0.4)} for r in labelled + other])
    return s


def close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize(("seconds", "freq"), [(3600, "1h"), (900, "15min"), (86400, "1D")])
def test_buckets_match_the_pandas_performance_table(filled: MetricsStore, seconds: int, freq: str) -> None:
    agg = filled.aggregate(model_name="bank-promo-a", bucket_seconds=seconds)
    ref = performance_by_window(filled.read_predictions(model_name="bank-promo-a"), freq=freq)
    assert list(agg.columns) == list(AGGREGATE_COLUMNS)
    assert len(agg) == len(ref) and agg["requests"].sum() == 700
    assert agg["bucket_start"].tolist() == ref["window_start"].tolist()
    assert agg["model_version"].tolist() == ref["model_version"].tolist()
    for col in (*QUALITY, *LATENCY):
        for a, b in zip(agg[col], ref[col], strict=True):
            assert close(float(a), float(b)), (col, a, b)
    assert agg.loc[agg["model_version"] == "3", "accuracy"].isna().all()  # no labels yet: NaN, not 0


def test_each_bucket_width_gets_its_own_sql(filled: MetricsStore) -> None:
    """One engine, several widths one after the other (the Monitoring page's window selector)."""
    for seconds in (1800, 10800, 1800, 7200):
        starts = filled.aggregate(bucket_seconds=seconds)["bucket_start"].drop_duplicates()
        steps = {int(d.total_seconds()) for d in starts.diff().dropna()}
        assert steps and all(step % seconds == 0 for step in steps), (seconds, sorted(steps))
        assert all(int(t.timestamp()) % seconds == 0 for t in starts)


def test_a_time_range_and_a_version_filter_in_sql(filled: MetricsStore) -> None:
    start, end = T0 + timedelta(hours=2), T0 + timedelta(hours=7)
    agg = filled.aggregate(start=start, end=end, model_version="1", model_name="bank-promo-a")
    window = filled.read_predictions(start=start, end=end, model_version="1", model_name="bank-promo-a")
    assert len(agg) == 1 and pd.isna(agg["bucket_start"].iloc[0])
    expected = summarize(window)
    for col in (*QUALITY, *LATENCY):
        assert close(float(agg[col].iloc[0]), float(expected[col])), col


def test_empty_selection_and_bad_bucket(filled: MetricsStore) -> None:
    empty = filled.aggregate(model_name="nobody", bucket_seconds=60)
    assert empty.empty and list(empty.columns) == list(AGGREGATE_COLUMNS)
    with pytest.raises(MetricsStoreError, match="bucket_seconds"):
        filled.aggregate(bucket_seconds=0)


def test_version_spans_are_the_deployments(filled: MetricsStore) -> None:
    spans = filled.version_spans(model_name="bank-promo-a")
    log = filled.read_predictions(model_name="bank-promo-a")
    assert [s.model_version for s in spans] == ["1", "2", "3"]
    for s in spans:
        part = log[log["model_version"] == s.model_version]
        assert s.rows == len(part)
        assert s.first_event == part["event_ts"].min().to_pydatetime()
        assert s.last_event == part["event_ts"].max().to_pydatetime()
