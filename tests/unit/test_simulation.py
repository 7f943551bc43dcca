"""The simulator's schedule, time axis, record handling and error accounting."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

import httpx
import numpy as np
import pandas as pd
import pytest

from lib.features import RAW_COLUMNS
from lib.simulation import (
    Reply,
    SimulationConfig,
    SimulationError,
    SimulationResult,
    event_times,
    flip_labels,
    flip_schedule,
    format_summary,
    pick_records,
    request_bodies,
    send_feedback,
    send_predictions,
    simulation_start,
)


def test_flip_schedule_rises_from_start_to_end() -> None:
    rates = flip_schedule(101, 0.0, 0.3)
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.3)
    assert np.all(np.diff(rates) > 0)
    assert flip_schedule(1, 0.1, 0.5).tolist() == [0.1]


def test_flipped_share_rises_across_the_run() -> None:
    n = 20_000
    labels = np.zeros(n, dtype=int)
    flipped = flip_labels(labels, flip_schedule(n, 0.0, 0.4), np.random.default_rng(0))
    first, last = flipped[: n // 4].mean(), flipped[-n // 4 :].mean()
    assert first == pytest.approx(0.05, abs=0.02)  # mean rate over the first quarter
    assert last == pytest.approx(0.35, abs=0.02)
    assert set(np.unique(flipped)) <= {0, 1}


def test_no_flip_keeps_labels() -> None:
    labels = np.array([0, 1, 1, 0, 1])
    assert flip_labels(labels, np.zeros(5), np.random.default_rng(1)).tolist() == labels.tolist()
    assert flip_labels(labels, np.ones(5), np.random.default_rng(1)).tolist() == (1 - labels).tolist()


def test_event_times_spread_over_the_days_in_order() -> None:
    start = datetime(2025, 3, 1, tzinfo=timezone.utc)
    times = event_times(700, start, days=7)
    assert times[0] == start and times[-1] < start + timedelta(days=7)
    assert all(a < b for a, b in zip(times, times[1:], strict=False))
    per_day = pd.Series(pd.to_datetime(times).floor("D")).value_counts()
    assert len(per_day) == 7 and set(per_day) == {100}


def test_first_run_replays_the_days_before_today() -> None:
    now = datetime(2025, 3, 10, 15, 30, tzinfo=timezone.utc)
    assert simulation_start(None, now, days=7) == datetime(2025, 3, 3, tzinfo=timezone.utc)


def test_next_run_continues_after_the_latest_logged_event() -> None:
    now = datetime(2025, 3, 10, 15, 30, tzinfo=timezone.utc)
    latest = datetime(2025, 3, 9, 23, 59, tzinfo=timezone.utc)
    assert simulation_start(latest, now, days=7) == datetime(2025, 3, 10, tzinfo=timezone.utc)
    naive = datetime(2025, 3, 16, 0, 0)  # SQLite hands back naive UTC
    assert simulation_start(naive, now, days=7) == datetime(2025, 3, 17, tzinfo=timezone.utc)


def test_pick_records_is_reproducible_and_samples_with_replacement_only_when_needed(bank_sample) -> None:
    a, b = pick_records(bank_sample, 50, seed=3), pick_records(bank_sample, 50, seed=3)
    pd.testing.assert_frame_equal(a, b)
    small = bank_sample.head(10)
    assert len(pick_records(small, 25, seed=3)) == 25
    assert not pick_records(bank_sample, 100, seed=3).duplicated().any()
    with pytest.raises(SimulationError, match="lack column"):
        pick_records(bank_sample.drop(columns=["age"]), 5, seed=1)


def test_request_bodies_send_raw_inputs_without_the_target(bank_sample) -> None:
    records = bank_sample.head(3)
    times = event_times(3, datetime(2025, 1, 1, tzinfo=timezone.utc), 1)
    bodies = request_bodies(records, times)
    assert list(bodies[0]["request"]) == [c for c in RAW_COLUMNS if c != "y"]
    assert type(bodies[0]["request"]["age"]) is int  # JSON-serialisable Python types
    assert bodies[2]["event_time"] == "2025-01-01T16:00:00+00:00"


@pytest.mark.parametrize(
    ("field", "value"),
    [("requests", 0), ("concurrency", 0), ("source", "s3"), ("flip_end", 1.5), ("days", 0)],
)
def test_config_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(SimulationError, match=field):
        SimulationConfig(**{field: value}).validate()


# --- HTTP accounting. The real server is exercised in tests/integration/test_simulation.py; here
# httpx's MockTransport (test-only) pins how answers and each kind of failure are counted.


def _handler(request: httpx.Request) -> httpx.Response:
    body = request.read()
    if request.url.path == "/predict":
        if b'"age": 99' in body or b'"age":99' in body:
            return httpx.Response(422, json={"detail": "field age out of range"})
        return httpx.Response(
            200,
            json={"uuid": "u-" + str(len(body)), "prediction": 1, "probability": 0.7, "model_version": "3"},
        )
    if request.url.path == "/feedback":
        if b"bad" in body:
            return httpx.Response(422, json={"detail": "feedback[0].uuid: invalid"})
        items = json.loads(body)["feedback"]
        unknown = [i["uuid"] for i in items if i["uuid"] == "ghost"]
        return httpx.Response(200, json={"matched": len(items) - len(unknown), "unknown": unknown})
    return httpx.Response(404)


def test_replies_and_errors_are_counted_per_request() -> None:
    bodies = [{"request": {"age": age}, "event_time": "2025-01-01T00:00:00+00:00"} for age in (30, 99, 40)]
    with httpx.Client(base_url="http://sim.test", transport=httpx.MockTransport(_handler)) as client:
        replies = send_predictions(client, bodies, concurrency=2, progress=False)
    assert [r.index for r in replies] == [0, 1, 2]
    assert [r.error is None for r in replies] == [True, False, True]
    assert replies[1].error == "HTTP 422: field age out of range"
    assert replies[0].model_version == "3" and replies[0].probability == 0.7


def test_connection_failures_are_errors_not_crashes() -> None:
    with httpx.Client(base_url="http://127.0.0.1:9", timeout=2) as client:  # port 9: nothing listens
        replies = send_predictions(client, [{"request": {}}] * 2, concurrency=2, progress=False)
    assert all(r.error and "Connect" in r.error for r in replies)


def test_feedback_batches_and_reports_failed_batches_and_unknown_uuids() -> None:
    items = [{"uuid": f"u{i}", "label": 1} for i in range(5)] + [{"uuid": "bad", "label": 0}]
    items += [{"uuid": f"v{i}", "label": 0} for i in range(3)] + [{"uuid": "ghost", "label": 1}]
    with httpx.Client(base_url="http://sim.test", transport=httpx.MockTransport(_handler)) as client:
        accepted, errors = send_feedback(client, items, batch_size=4, progress=False)
    # batches: u0-u3 stored; u4,bad,v0,v1 rejected as a whole; v2,ghost: one stored, one unknown
    assert accepted == 5
    assert errors == ["HTTP 422: feedback[0].uuid: invalid", "1 uuid(s) unknown to the server, e.g. ghost"]


def test_summary_reports_errors_latency_and_daily_accuracy() -> None:
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    times = event_times(4, start, 2)
    replies = [
        Reply(0, 10.0, "a", 1, 0.9, "1"),
        Reply(1, 20.0, "b", 0, 0.2, "1"),
        Reply(2, 30.0, error="HTTP 500: boom"),
        Reply(3, 40.0, "d", 1, 0.8, "1"),
    ]
    result = SimulationResult("test", "http://x", start, start + timedelta(days=2), replies,
                              np.array([1, 1, 0, 0]), np.array([0.0, 0.1, 0.2, 0.3]), times)  # fmt: skip
    assert result.errors == 1
    assert result.latency_percentiles()["p50"] == pytest.approx(20.0)
    daily = result.daily_accuracy()
    assert daily["accuracy"].tolist() == [0.5, 0.0]  # day 1: a right, b wrong; day 2: d wrong
    assert daily["flip_rate"].tolist() == pytest.approx([0.05, 0.25])
    text = "\n".join(format_summary(result))
    assert "1 errors" in text and "HTTP 500: boom" in text and "v1 (3)" in text
    assert not math.isnan(result.latency_percentiles()["p99"])
