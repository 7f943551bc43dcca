"""The prediction log: every served prediction and its delayed ground truth, in one SQL database.

The model server appends a row per prediction (uuid, receive and event time, model version, the
raw features, probability, 0/1 answer, latency); `/feedback` later stores the true label under
the same uuid. Dashboards, monitoring and the traffic simulator read the joined log back as a
DataFrame. Any SQLAlchemy URL works (`METRICS_DB_URL`); the default is SQLite in WAL mode under
the project root so a reader never blocks the server's writer.

The server never writes on the request path: its writer (`lib.serving.prediction_log`) queues rows
and a separate writer process inserts them here in batches, flushing on shutdown.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, NamedTuple, Protocol

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    case,
    delete,
    func,
    insert,
    literal_column,
    select,
)

from lib.database import create_tables, get_engine
from lib.features import NUMERIC, RAW_COLUMNS, TARGET, TARGET_VALUES
from lib.metrics import QUALITY_THRESHOLD, confusion_rates
from lib.metrics_sql import AGGREGATE_COLUMNS, LATENCY_PERCENTILES, EpochBucket, interpolated_percentiles

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


class LogRow(Protocol):
    """A prediction as the writer hands it over (`lib.serving.log_rows.PredictionRow`)."""

    def as_db(self) -> dict[str, Any]:
        """The row as the predictions table's column values."""
        ...


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
        create_tables(self.engine, metadata)

    # --- writes ---------------------------------------------------------------------------------

    def write_predictions(self, rows: Sequence[LogRow]) -> int:
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
        """Rows in the prediction log, counted by the database, not transferred."""
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(predictions)) or 0)

    def count_feedback(self) -> int:
        """Ground-truth labels received, counted by the database, not transferred."""
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
        """How many predictions (and labels) match the filters, and their event-time range.

        One aggregate query, no rows transferred.
        """
        p, g = predictions, ground_truth
        query = select(
            func.count(p.c.uuid), func.count(g.c.uuid), func.min(p.c.event_ts), func.max(p.c.event_ts)
        ).select_from(p.outerjoin(g, p.c.uuid == g.c.uuid))
        query = _where_log(query, start, end, model_version, model_name)
        with self.engine.connect() as conn:
            rows, labelled, first, last = conn.execute(query).one()
        return LogSpan(int(rows or 0), int(labelled or 0), _as_utc(first), _as_utc(last))

    def log_counts(self, model_name: str | None = None) -> list[VersionCount]:
        """Predictions and labels logged per (model name, version).

        One GROUP BY query, so a monitoring scrape never transfers rows. Cumulative: rows are only
        ever added.
        """
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

    def version_spans(self, model_name: str | None = None) -> list[VersionSpan]:
        """When each model version first and last served (event time), in deployment order.

        One GROUP BY query: every version after the first marks a redeploy on a time axis.
        """
        p = predictions
        query = select(
            p.c.model_version, func.count(p.c.uuid), func.min(p.c.event_ts), func.max(p.c.event_ts)
        ).group_by(p.c.model_version)
        query = _where_log(query, None, None, None, model_name)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        spans = [VersionSpan(str(v), int(n), _as_utc(first), _as_utc(last)) for v, n, first, last in rows]
        return sorted(spans, key=lambda s: (s.first_event, s.model_version))

    def aggregate(
        self,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        model_version: str | int | None = None,
        model_name: str | None = None,
        bucket_seconds: int | None = None,
    ) -> pd.DataFrame:
        """Volume, labelled quality and latency percentiles per event-time bucket and model version.

        The database does the work (one GROUP BY over a window function that ranks latencies), so
        a dashboard over months of traffic transfers one row per bucket and version, never the log.
        Works on SQLite and PostgreSQL. Columns (AGGREGATE_COLUMNS): `bucket_start` (aware UTC;
        NaT without buckets), `model_version`, `requests`, `labeled`, confusion counts
        `tp fp fn tn` of the probability at `QUALITY_THRESHOLD` (as `performance.summarize`),
        `accuracy precision recall f1` from the counts (`lib.metrics.confusion_rates`, NaN where
        undefined), `positives` and `positive_rate` of the served answers, and
        `latency_p50_ms/p95/p99` (linear interpolation, as numpy's default percentile).
        Buckets start at multiples of `bucket_seconds` since the Unix epoch; empty ones are absent.
        """
        if bucket_seconds is not None and (int(bucket_seconds) != bucket_seconds or bucket_seconds < 1):
            raise MetricsStoreError(f"bucket_seconds={bucket_seconds!r} must be a positive whole number")
        p, g = predictions, ground_truth
        bucket = (
            EpochBucket(p.c.event_ts, int(bucket_seconds)) if bucket_seconds else literal_column("0", BigInteger)
        ).label("bucket")
        # Group by the expression (not a constant: SQL reads `GROUP BY 0` as a column position).
        keys = [bucket.element, p.c.model_version] if bucket_seconds else [p.c.model_version]
        # One pass: the log joined with its labels, each group's latencies ranked by a window
        # function (SQLite has no PERCENTILE_CONT), then one GROUP BY that counts and keeps the two
        # ranked rows around position (n-1)*q/100 (integer comparisons), interpolated below.
        ranked = _where_log(
            select(
                bucket,
                p.c.model_version,
                p.c.prediction,
                p.c.probability,
                p.c.latency_ms,
                g.c.label,
                func.row_number().over(partition_by=keys, order_by=p.c.latency_ms).label("rn"),
                func.count().over(partition_by=keys).label("n"),
            ).select_from(p.outerjoin(g, p.c.uuid == g.c.uuid)),
            start, end, model_version, model_name,
        ).subquery()  # fmt: skip
        r = ranked.c

        def count_if(condition: Any) -> Any:
            return func.sum(case((condition, 1), else_=0))

        judged = r.probability >= QUALITY_THRESHOLD
        around = []
        for q in LATENCY_PERCENTILES:
            pos = (r.n - 1) * q
            around.append(func.max(case((((r.rn - 1) * 100 <= pos) & (r.rn * 100 > pos), r.latency_ms))))
            around.append(func.max(case((((r.rn - 2) * 100 <= pos) & ((r.rn - 1) * 100 > pos), r.latency_ms))))
        query = select(
            r.bucket if bucket_seconds else func.max(r.bucket),  # a constant is no grouping key on PostgreSQL
            r.model_version,
            func.count(),
            func.count(r.label),
            count_if((r.label == 1) & judged),
            count_if((r.label == 0) & judged),
            count_if((r.label == 1) & ~judged),
            count_if((r.label == 0) & ~judged),
            func.sum(r.prediction),
            *around,
        ).group_by(*([r.bucket, r.model_version] if bucket_seconds else [r.model_version]))
        with self.engine.connect() as conn:
            result = conn.execute(query).all()
        out = []
        for b, version, n, k, tp, fp, fn, tn, positives, *around_rows in result:
            n, k, tp, fp, fn, tn = (int(v or 0) for v in (n, k, tp, fp, fn, tn))
            row = {
                "bucket_start": pd.Timestamp(int(b), unit="s", tz="UTC") if bucket_seconds else pd.NaT,
                "model_version": str(version), "requests": n, "labeled": k,
                "tp": tp, "fp": fp, "fn": fn, "tn": tn, "positives": int(positives or 0),
                **confusion_rates(tp, fp, fn, tn),
                "positive_rate": int(positives or 0) / n if n else math.nan,
            }  # fmt: skip
            row.update(interpolated_percentiles([n, *around_rows]))
            out.append(row)
        frame = pd.DataFrame(out, columns=list(AGGREGATE_COLUMNS))
        frame["bucket_start"] = pd.to_datetime(frame["bucket_start"], utc=True)
        return frame.sort_values(["bucket_start", "model_version"], kind="stable").reset_index(drop=True)


class VersionSpan(NamedTuple):
    """How much one model version served and when (aware UTC): its first event is its deployment."""

    model_version: str
    rows: int
    first_event: datetime | None
    last_event: datetime | None


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
