"""The live Monitoring page's pure helpers and the confusion-count metrics the SQL buckets use."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lib.metrics import classification_metrics, confusion_rates
from lib.monitoring.live import BUCKET_SECONDS, TARGET_BUCKETS, bucket_seconds, json_number, time_text


@pytest.mark.parametrize(("hours", "expected"), [(1, 60), (6, 900), (24, 1800), (168, 3 * 3600), (720, 43200),
                                                 (24 * 365, 86400)])  # fmt: skip
def test_bucket_keeps_about_target_points(hours: float, expected: int) -> None:
    size = bucket_seconds(hours)
    assert size == expected and size in BUCKET_SECONDS
    if size != BUCKET_SECONDS[-1]:
        assert hours * 3600 / size <= TARGET_BUCKETS


def test_json_numbers_have_no_nan_and_counts_stay_ints() -> None:
    assert json_number(float("nan")) is None and json_number(None) is None and json_number(pd.NA) is None
    assert json_number(np.int64(3)) == 3 and isinstance(json_number(np.int64(3)), int)
    assert json_number(np.float64(0.25)) == 0.25 and isinstance(json_number(2.0), float)


def test_time_text_is_naive_utc_for_plotly() -> None:
    assert time_text(pd.Timestamp("2025-06-01 12:30:05.9", tz="UTC")) == "2025-06-01 12:30:05"
    assert time_text(pd.Timestamp("2025-06-01 14:30:05", tz="Europe/Lisbon")) == "2025-06-01 13:30:05"
    assert time_text(None) is None and time_text(pd.NaT) is None


@pytest.mark.parametrize("seed", range(6))
def test_confusion_rates_equal_sklearn_on_the_rows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    labels = (rng.random(n) < rng.random()).astype(int)
    preds = (rng.random(n) < rng.random()).astype(int)
    counts = [int(((labels == a) & (preds == b)).sum()) for a, b in ((1, 1), (0, 1), (1, 0), (0, 0))]
    expected = classification_metrics(labels, preds.astype(float), predictions=preds)
    for name, value in confusion_rates(*counts).items():
        assert (math.isnan(value) and math.isnan(expected[name])) or value == pytest.approx(expected[name]), name


def test_confusion_rates_without_rows_are_nan() -> None:
    assert all(math.isnan(v) for v in confusion_rates(0, 0, 0, 0).values())
    only_negatives = confusion_rates(0, 0, 0, 5)
    assert only_negatives["accuracy"] == 1.0 and math.isnan(only_negatives["precision"])
