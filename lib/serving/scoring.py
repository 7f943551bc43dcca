"""The one scoring path behind /predict and /invocations: check, score, log.

The model scores validated records with numpy (no pandas); the prediction is `probability >=` the
served version's decision threshold; every row goes to the prediction-log writer (one queue put,
never a database wait) and the records-scored counter.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from lib.features import TARGET
from lib.serving import schemas
from lib.serving.columnar import Accepted
from lib.serving.loader import LoadedModel
from lib.serving.log_rows import PredictionBatch
from lib.serving.prediction_log import PredictionWriter
from lib.serving.prometheus import Metrics


@dataclass(frozen=True)
class Scored:
    """What one request's records got: their log uuids, probabilities and 0/1 predictions."""

    ids: list[str]
    proba: np.ndarray
    pred: np.ndarray


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def uuid7_strings(n: int, now_ns: int | None = None) -> list[str]:
    """`n` RFC 9562 version-7 uuids as text: a millisecond timestamp, then 74 random bits.

    Why not version 4: the prediction log's primary key is this text, and a random key puts every
    insert at a random place of its B-tree (about 15 µs a row in SQLite once the log outgrows the
    page cache, against 6 µs for keys that grow with time). The ids stay unique and opaque to
    clients; from one `os.urandom` call.
    """
    ms = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
    stamp = f"{ms & 0xFFFFFFFFFFFF:012x}"
    head = f"{stamp[:8]}-{stamp[8:]}-7"
    hexed = os.urandom(10 * n).hex()
    out = []
    for i in range(0, 20 * n, 20):
        h = hexed[i : i + 20]
        out.append(f"{head}{h[:3]}-{_VARIANT[h[3]]}{h[4:7]}-{h[7:19]}")
    return out


@dataclass(frozen=True)
class Prepared:
    """Records scored but not yet logged: what `Scorer.commit` logs."""

    records: list[dict[str, Any]]
    proba: np.ndarray
    pred: np.ndarray


def without_target(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The raw features to log (a client may send the outcome `y` along; it is not a feature)."""
    return [{k: v for k, v in r.items() if k != TARGET} if TARGET in r else r for r in records]


class Scorer:
    """Scores with a loaded model and hands every row to the prediction log."""

    def __init__(self, writer: PredictionWriter, metrics: Metrics) -> None:
        self.writer = writer
        self.metrics = metrics

    def score(
        self,
        loaded: LoadedModel,
        records: list[dict[str, Any]],
        *,
        event_time: datetime | None,
        t0: float,
        checked: bool,
    ) -> Scored:
        """Score `records` (already typed by the schema if `checked`) and log every row."""
        return self.commit(loaded, self.prepare(loaded, records, checked=checked), event_time=event_time, t0=t0)

    def prepare(self, loaded: LoadedModel, records: list[dict[str, Any]], *, checked: bool) -> Prepared:
        """Check (unless `checked`) and score `records`; no side effect, so a refusal logs nothing."""
        if checked:
            rows = records
        else:
            check = schemas.record_checker(loaded.features)
            rows = [check(r) for r in records]
        proba, pred = loaded.predict_records(rows)
        return Prepared(records, proba, pred)

    def commit(self, loaded: LoadedModel, prepared: Prepared, *, event_time: datetime | None, t0: float) -> Scored:
        """Log the scored rows (prediction log and counter) and give them their uuids."""
        ids = self.log(loaded, without_target(prepared.records), prepared.proba, prepared.pred, event_time, t0)
        return Scored(ids, prepared.proba, prepared.pred)

    def score_accepted(self, loaded: LoadedModel, accepted: Accepted, *, t0: float) -> Scored:
        """Score and log a body `BodyChecker` took in full (its matrix is already encoded)."""
        proba, pred = loaded.predict_matrix(accepted.matrix)
        ids = self.log(loaded, accepted.rows, proba, pred, accepted.event_time, t0, columns=accepted.names)
        return Scored(ids, proba, pred)

    def log(
        self,
        loaded: LoadedModel,
        records: list[Any],
        proba: np.ndarray,
        pred: np.ndarray,
        event_time: datetime | None,
        t0: float,
        columns: tuple[str, ...] | None = None,
    ) -> list[str]:
        """Hand the scored rows to the prediction-log writer and count them; returns their new uuids.

        `records` are feature dicts, or value rows in `columns` order.
        """
        now = time.time()
        latency = (time.perf_counter() - t0) * 1000.0
        event = event_time if event_time is not None else now
        ids = uuid7_strings(len(records))
        batch = PredictionBatch(
            now, event, loaded.name, loaded.version, latency, ids, records, proba.tolist(), pred.tolist(), columns
        )
        self.writer.submit(batch)
        self.metrics.scored(loaded.version, len(records))
        return ids
