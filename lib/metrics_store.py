"""The prediction log: every served prediction and its delayed ground truth, in one SQL database.

The model server appends a row per prediction (uuid, receive and event time, model version, the
raw features, probability, 0/1 answer, latency); `/feedback` later stores the true label under
the same uuid. Dashboards, monitoring and the traffic simulator read the joined log back as a
DataFrame. Any SQLAlchemy URL works (`METRICS_DB_URL`); the default is SQLite in WAL mode under
the project root so a reader never blocks the server's writer.

The server never writes on the request path: `PredictionWriter` queues rows, and a separate writer
process inserts them in batches (every ~100 ms or N rows), flushing on shutdown.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from lib.cliargs import ArgumentParser
from lib.config import PROJECT_ROOT
from lib.features import NUMERIC, RAW_COLUMNS, TARGET, TARGET_VALUES

log = logging.getLogger(__name__)

FEATURE_COLUMNS: tuple[str, ...] = tuple(c for c in RAW_COLUMNS if c != TARGET)
LOG_COLUMNS: tuple[str, ...] = (
    "uuid", "ts", "event_ts", "model_name", "model_version", "probability", "prediction",
    "latency_ms", "label", "label_ts",
)  # fmt: skip

metadata = MetaData()

predictions = Table(
    "predictions",
    metadata,
    Column("uuid", String(36), primary_key=True),
    Column("ts", DateTime, nullable=False),
    Column("event_ts", DateTime, nullable=False),
    Column("model_name", String(200), nullable=False),
    Column("model_version", String(32), nullable=False),
    Column("features", Text, nullable=False),
    Column("probability", Float, nullable=False),
    Column("prediction", Integer, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Index("ix_predictions_event_ts", "event_ts"),
    Index("ix_predictions_model_version", "model_version"),
)

ground_truth = Table(
    "ground_truth",
    metadata,
    Column("uuid", String(36), primary_key=True),
    Column("label", Integer, nullable=False),
    Column("ts", DateTime, nullable=False),
    Column("event_ts", DateTime, nullable=False),
)


class MetricsStoreError(RuntimeError):
    """The prediction log cannot do what was asked; the message says why."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@functools.cache
def get_engine(url: str) -> Engine:
    """One pooled engine per URL for the process; SQLite gets WAL so readers never block the writer.

    Shared by every table kept in the metrics database (prediction log, jobs history).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def to_utc_naive(value: datetime | str | float | None) -> datetime | None:
    """Timestamps are stored as naive UTC: aware values are converted, naive ones taken as UTC."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, timezone.utc).replace(tzinfo=None)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


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
        return {
            "uuid": self.uuid,
            "ts": to_utc_naive(self.ts),
            "event_ts": to_utc_naive(self.event_ts),
            "model_name": self.model_name,
            "model_version": self.model_version,
            "features": json.dumps(dict(self.features), separators=(",", ":")),
            "probability": float(self.probability),
            "prediction": int(self.prediction),
            "latency_ms": float(self.latency_ms),
        }


def _label(value: Any) -> int:
    if isinstance(value, str) and value in TARGET_VALUES:
        return TARGET_VALUES[value]
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return int(value)
    raise MetricsStoreError(f"label must be 0, 1, 'yes' or 'no', got {value!r}")


class MetricsStore:
    """Read/write access to the prediction log and ground truth at one SQLAlchemy URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = get_engine(url)
        metadata.create_all(self.engine, checkfirst=True)

    # --- writes ---------------------------------------------------------------------------------

    def write_predictions(self, rows: Sequence[PredictionRow]) -> int:
        """Insert prediction rows in one transaction (the writer thread's batch)."""
        if not rows:
            return 0
        with self.engine.begin() as conn:
            conn.execute(insert(predictions), [r.as_db() for r in rows])
        return len(rows)

    def unknown_uuids(self, uuids: Iterable[str]) -> list[str]:
        """The uuids among `uuids` that no logged prediction has, in input order."""
        wanted = list(dict.fromkeys(uuids))
        known: set[str] = set()
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                known.update(conn.scalars(select(predictions.c.uuid).where(predictions.c.uuid.in_(chunk))))
        return [u for u in wanted if u not in known]

    def record_feedback(self, items: Sequence[Mapping[str, Any]]) -> int:
        """Store true labels by prediction uuid; returns how many matched a logged prediction.

        Each item has `uuid`, `label` (0/1 or 'yes'/'no') and optionally `event_ts` (when the
        outcome became known in event time; default now). Labels for unknown uuids are not
        stored; a second label for the same uuid replaces the first.
        """
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        rows = {}
        for item in items:
            uuid = str(item["uuid"])
            event_ts = to_utc_naive(item.get("event_ts")) or now
            rows[uuid] = {"uuid": uuid, "label": _label(item["label"]), "ts": now, "event_ts": event_ts}
        if not rows:
            return 0
        known = set(rows) - set(self.unknown_uuids(rows))
        matched = [rows[u] for u in rows if u in known]
        if not matched:
            return 0
        with self.engine.begin() as conn:
            uuids = [r["uuid"] for r in matched]
            for i in range(0, len(uuids), 500):
                conn.execute(delete(ground_truth).where(ground_truth.c.uuid.in_(uuids[i : i + 500])))
            conn.execute(insert(ground_truth), matched)
        return len(matched)

    # --- reads ----------------------------------------------------------------------------------

    def count_predictions(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(predictions)) or 0)

    def count_feedback(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(ground_truth)) or 0)

    def read_predictions(
        self,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        model_version: str | int | None = None,
        model_name: str | None = None,
    ) -> pd.DataFrame:
        """The log joined with ground truth, oldest event first; `start <= event_ts < end`.

        Every filter runs in SQL (the database may hold several users' models and months of
        traffic). Times come back as tz-aware UTC; `label` is a nullable Int64 (NA until feedback
        arrives); every raw feature is its own column, expanded from the stored JSON.
        """
        p, g = predictions, ground_truth
        query = (
            select(
                p.c.uuid,
                p.c.ts,
                p.c.event_ts,
                p.c.model_name,
                p.c.model_version,
                p.c.probability,
                p.c.prediction,
                p.c.latency_ms,
                g.c.label,
                g.c.event_ts.label("label_ts"),
                p.c.features,
            )  # fmt: skip
            .select_from(p.outerjoin(g, p.c.uuid == g.c.uuid))
            .order_by(p.c.event_ts, p.c.ts)
        )
        query = _where_log(query, start, end, model_version, model_name)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return _log_frame(rows)

    def log_span(
        self,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        model_version: str | int | None = None,
        model_name: str | None = None,
    ) -> LogSpan:
        """How many predictions (and labels) match the filters, and their event-time range: one
        aggregate query, no rows transferred."""
        p, g = predictions, ground_truth
        query = select(
            func.count(p.c.uuid), func.count(g.c.uuid), func.min(p.c.event_ts), func.max(p.c.event_ts)
        ).select_from(p.outerjoin(g, p.c.uuid == g.c.uuid))
        query = _where_log(query, start, end, model_version, model_name)
        with self.engine.connect() as conn:
            rows, labelled, first, last = conn.execute(query).one()
        return LogSpan(int(rows or 0), int(labelled or 0), _as_utc(first), _as_utc(last))

    def log_counts(self, model_name: str | None = None) -> list[VersionCount]:
        """Predictions and labels logged per (model name, version): one GROUP BY query, so a
        monitoring scrape never transfers rows. Cumulative: rows are only ever added."""
        p, g = predictions, ground_truth
        query = (
            select(p.c.model_name, p.c.model_version, func.count(p.c.uuid), func.count(g.c.uuid))
            .select_from(p.outerjoin(g, p.c.uuid == g.c.uuid))
            .group_by(p.c.model_name, p.c.model_version)
            .order_by(p.c.model_name, p.c.model_version)
        )
        query = _where_log(query, None, None, None, model_name)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [VersionCount(str(name), str(version), int(n), int(k)) for name, version, n, k in rows]


class VersionCount(NamedTuple):
    """Predictions and labels logged for one model version."""

    model_name: str
    model_version: str
    rows: int
    labelled: int


class LogSpan(NamedTuple):
    """Size and event-time range (aware UTC; None when empty) of a slice of the prediction log."""

    rows: int
    labelled: int
    first_event: datetime | None
    last_event: datetime | None


def _as_utc(value: datetime | str | None) -> datetime | None:
    """A stored naive-UTC time (SQLite may hand back an aggregate as text) as an aware datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc)


def _where_log(
    query: Select,
    start: datetime | str | None,
    end: datetime | str | None,
    model_version: str | int | None,
    model_name: str | None,
) -> Select:
    """The prediction-log filters, shared by every reader so they cannot disagree."""
    p = predictions
    if start is not None:
        query = query.where(p.c.event_ts >= to_utc_naive(start))
    if end is not None:
        query = query.where(p.c.event_ts < to_utc_naive(end))
    if model_version is not None:
        query = query.where(p.c.model_version == str(model_version))
    if model_name is not None:
        query = query.where(p.c.model_name == model_name)
    return query


def _log_frame(rows: Sequence[Any]) -> pd.DataFrame:
    """Result rows of `read_predictions` as a typed DataFrame, one column per raw feature."""
    base = pd.DataFrame(rows, columns=[*LOG_COLUMNS, "features"])
    feats = pd.DataFrame([json.loads(f) for f in base.pop("features")], index=base.index)
    out = base.astype({"model_name": "object", "model_version": "object"})
    for col in ("ts", "event_ts", "label_ts"):
        out[col] = pd.to_datetime(out[col], utc=True)
    out["probability"] = out["probability"].astype("float64")
    out["prediction"] = out["prediction"].astype("int64")
    out["latency_ms"] = out["latency_ms"].astype("float64")
    out["label"] = pd.array(out["label"], dtype="Int64")
    for col in FEATURE_COLUMNS:
        values = feats[col] if col in feats else pd.Series(pd.NA, index=out.index, dtype="object")
        out[col] = pd.array(values, dtype="Int64") if col in NUMERIC else values.astype("object")
    return out


def serve_writer(url: str, rows_fd: int, acks_fd: int, max_pending: int) -> None:
    """The writer process: for every batch received, insert it and answer (left, written, dropped).

    Rows the database refuses stay pending and are retried with the next message; beyond
    `max_pending` the oldest are dropped and counted. Ends on a "stop" message or when the
    server's end of the pipe closes (server gone), after a last write.
    """
    rows, acks = Connection(rows_fd, writable=False), Connection(acks_fd, readable=False)
    store = MetricsStore(url)
    pending: list[PredictionRow] = []
    written = dropped = failures = 0
    while True:
        try:
            kind, batch = pickle.loads(rows.recv_bytes())
        except EOFError:
            kind, batch = "stop", []
        pending.extend(batch)
        if pending:
            try:
                store.write_predictions(pending)
            except (SQLAlchemyError, OSError):
                failures += 1
                if failures == 1:
                    log.exception("writing %d rows failed; will retry", len(pending))
                overflow = len(pending) - max_pending
                if overflow > 0:
                    del pending[:overflow]
                    dropped += overflow
                    log.error("dropped %d rows (database unavailable)", overflow)
            else:
                if failures:
                    log.info("database writable again after %d failed attempts", failures)
                failures = 0
                written += len(pending)
                pending.clear()
        try:
            acks.send_bytes(pickle.dumps((len(pending), written, dropped)))
        except OSError:  # the server is gone
            return
        if kind == "stop":
            return


class PredictionWriter:
    """Batches prediction rows off the request path into a separate writer process.

    `submit` is one in-memory queue put. A sender thread wakes every `interval` seconds (or once
    `batch_rows` are waiting), pickles what is queued into one message and pipes it to the writer
    process, which does the SQL work: database inserts never compete with request handling for
    this process's GIL. The writer is a
    fresh interpreter started in the code root (`python -m lib.metrics_store`), so it runs this
    project's code whatever a loaded model put on this process's sys.path.
    """

    def __init__(self, url: str, interval: float = 0.1, batch_rows: int = 2000, max_pending: int = 200_000) -> None:
        self.url = url
        self.interval = interval
        self.batch_rows = batch_rows
        self.max_pending = max_pending
        self._sent = 0
        self.submitted = 0
        self.written = 0
        self.dropped = 0
        self._left = 0
        self._queue: queue.SimpleQueue[Sequence[PredictionRow]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._process: subprocess.Popen | None = None
        self._rows: Connection | None = None
        self._acks: Connection | None = None
        self._thread = threading.Thread(target=self._run, name="prediction-sender", daemon=True)

    def start(self) -> PredictionWriter:
        if self._process is not None:
            return self
        rows_r, rows_w = os.pipe()
        acks_r, acks_w = os.pipe()
        cmd = [sys.executable, "-m", "lib.metrics_store", "--url", self.url, "--rows-fd", str(rows_r),
               "--acks-fd", str(acks_w), "--max-pending", str(self.max_pending)]  # fmt: skip
        self._process = subprocess.Popen(cmd, cwd=PROJECT_ROOT, pass_fds=(rows_r, acks_w), stdin=subprocess.DEVNULL)
        os.close(rows_r)
        os.close(acks_w)
        self._rows = Connection(rows_w, readable=False)
        self._acks = Connection(acks_r, writable=False)
        self._thread.start()
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def backlog(self) -> int:
        return self.submitted - self.written - self.dropped

    def submit(self, rows: Sequence[PredictionRow]) -> None:
        """Queue rows from one request; never blocks on the database."""
        self.submitted += len(rows)
        self._queue.put(rows)
        if self.submitted - self._sent >= self.batch_rows:  # a burst: send before the interval ends
            self._wake.set()

    def _exchange(self, kind: str, timeout: float | None) -> None:
        """Send what is queued (with `kind`) and wait for the writer's answer; caller holds the lock."""
        self._wake.clear()
        batch: list[PredictionRow] = []
        while True:
            try:
                batch.extend(self._queue.get_nowait())
            except queue.Empty:
                break
        self._sent += len(batch)
        if not batch and kind == "rows" and not self._left:
            return
        if self._rows is None or self._acks is None:
            raise MetricsStoreError("the prediction writer was never started")
        try:
            self._rows.send_bytes(pickle.dumps((kind, batch), protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            self.dropped += len(batch)
            raise
        if timeout is not None and not self._acks.poll(timeout):
            raise MetricsStoreError(f"prediction log did not answer within {timeout:.0f}s")
        self._left, self.written, self.dropped = pickle.loads(self._acks.recv_bytes())

    def flush(self, timeout: float = 30.0) -> None:
        """Block until everything submitted so far is in the database (feedback needs its uuids there)."""
        if not self._lock.acquire(timeout=timeout):
            raise MetricsStoreError(f"prediction log busy for more than {timeout:.0f}s")
        try:
            if not self.alive:
                raise MetricsStoreError("the prediction writer is not running (see the server log)")
            self._exchange("flush", timeout)
        except (OSError, EOFError) as exc:
            raise MetricsStoreError(f"the prediction writer stopped: {exc}") from exc
        finally:
            self._lock.release()
        if self._left:
            raise MetricsStoreError(f"{self._left} logged predictions are not yet written to {self.url}")

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the sender thread and the writer process (server shutdown)."""
        if self._process is None:
            return
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        with self._lock:
            if self.alive:
                try:
                    self._exchange("stop", timeout)
                except (OSError, EOFError, MetricsStoreError) as exc:
                    log.error("prediction log: the writer did not stop cleanly: %s", exc)
            for conn in (self._rows, self._acks):
                if conn is not None:
                    conn.close()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("prediction writer pid %d did not exit; killing it", self._process.pid)
            self._process.kill()
            self._process.wait()
        if self._left:
            log.error("prediction log: %d rows could not be written before shutdown", self._left)

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.interval)
            with self._lock:
                if self._stopping:
                    return
                try:
                    self._exchange("rows", None)
                except (OSError, EOFError):
                    break
        if self._stopping:
            return
        log.error(
            "prediction writer process died (exit code %s): predictions are no longer logged",
            self._process.poll() if self._process else None,
        )
        while not self._stopping:  # count what can no longer be logged
            self._wake.wait(self.interval)
            self._wake.clear()
            while True:
                try:
                    self.dropped += len(self._queue.get_nowait())
                except queue.Empty:
                    break


def build_parser() -> ArgumentParser:
    """--url URL --rows-fd FD --acks-fd FD [--max-pending N]; usage errors exit 64."""
    parser = ArgumentParser(
        prog="python -m lib.metrics_store",
        description="Prediction-log writer process (started by PredictionWriter, not by hand).",
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--rows-fd", type=int, required=True)
    parser.add_argument("--acks-fd", type=int, required=True)
    parser.add_argument("--max-pending", type=int, default=200_000)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the writer process (started by PredictionWriter, not by hand)."""
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C on a foreground server: the server stops us
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s prediction-writer: %(message)s")
    serve_writer(args.url, args.rows_fd, args.acks_fd, args.max_pending)
    return 0


if __name__ == "__main__":
    sys.exit(main())
