"""The call list as an Iceberg table: its name, columns, the one-commit write, time travel and the CSV head.

The call list `<catalog>.<namespace>.call_list_<user>` is rewritten by every run as ONE Iceberg
snapshot (created, then `overwrite`), so each earlier list stays readable by time travel.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from lib.config import Settings
from lib.fileio import atomic_write_text

if TYPE_CHECKING:
    from filelock import FileLock
    from pyspark.sql import DataFrame, SparkSession

KEY = "customer_key"
CALL_LIST_COLUMNS = (
    KEY, "probability", "expected_profit", "rank", "decile", "decision", "decision_threshold",
    "model_name", "model_version", "source_snapshot_id", "scored_at",
)  # fmt: skip
LOCK_TIMEOUT_S = 600.0


class ScoringError(RuntimeError):
    """Batch scoring cannot run in this state; the message says what to run or fix."""


def call_list_name(settings: Settings) -> str:
    """Table name of this user's call list, per user like the customer table."""
    return f"call_list_{settings.user}"


def call_list_ident(settings: Settings) -> str:
    """`catalog.namespace.call_list_<user>`: next to the customer table, in the user's namespace."""
    return f"{settings.catalog_name}.{settings.namespace}.{call_list_name(settings)}"


def _lock(settings: Settings) -> FileLock:
    from filelock import FileLock

    path = settings.run_dir / "locks" / f"call-list-{settings.namespace}.{call_list_name(settings)}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path, timeout=LOCK_TIMEOUT_S)


def call_list_snapshot_id(spark: SparkSession, settings: Settings) -> int:
    """The call list's current snapshot id, read after a refresh so it is this run's write."""
    ident = call_list_ident(settings)
    spark.sql(f"REFRESH TABLE {ident}")
    row = spark.sql(f"SELECT snapshot_id FROM {ident}.history ORDER BY made_current_at DESC LIMIT 1").first()
    if row is None:
        raise ScoringError(f"{ident} has no snapshot after the write")
    return int(row.snapshot_id)


def write_call_list(spark: SparkSession, settings: Settings, call_list: DataFrame, properties: dict[str, str]) -> int:
    """Replace the call list's rows in ONE Iceberg commit and return its snapshot (older lists stay readable).

    A file lock keeps two scoring runs on this machine (the chained and the nightly job) from
    committing at the same time.
    """
    from filelock import Timeout
    from pyspark.sql import functions as F

    ident = call_list_ident(settings)
    writer = call_list.writeTo(ident)
    for name, value in properties.items():
        writer = writer.option(f"snapshot-property.{name}", value)
    try:
        with _lock(settings):
            spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {settings.catalog_name}.{settings.namespace}")
            if spark.catalog.tableExists(ident):
                writer.overwrite(F.lit(True))
            else:
                (writer.using("iceberg").tableProperty("format-version", "2")
                 .tableProperty("write.format.default", "parquet").create())  # fmt: skip
            return call_list_snapshot_id(spark, settings)
    except Timeout as exc:
        held = f"{LOCK_TIMEOUT_S:.0f}s"
        raise ScoringError(f"another batch scoring run has held the call-list lock for over {held}") from exc


def read_call_list(spark: SparkSession, settings: Settings, snapshot_id: int | None = None) -> DataFrame:
    """The call list now or, by time travel, as an earlier run wrote it."""
    ident = call_list_ident(settings)
    if not spark.catalog.tableExists(ident):
        raise ScoringError(f"{ident} does not exist: run 10_batch_scoring.py first")
    reader = spark.read.format("iceberg")
    if snapshot_id is not None:
        reader = reader.option("snapshot-id", str(snapshot_id))
    return reader.load(ident)


def call_list_snapshots(spark: SparkSession, settings: Settings) -> list[tuple[int, datetime, dict[str, str]]]:
    """(snapshot id, commit time, summary) of every call list written, oldest first."""
    ident = call_list_ident(settings)
    spark.sql(f"REFRESH TABLE {ident}")
    query = f"SELECT snapshot_id, committed_at, summary FROM {ident}.snapshots ORDER BY committed_at"
    rows = spark.sql(query).collect()
    return [(int(r.snapshot_id), r.committed_at, dict(r.summary or {})) for r in rows]


def export_top(spark: SparkSession, settings: Settings, snapshot_id: int, top: int | None, path: Path) -> int:
    """Write the first `top` rows (all when None) of the call list at `snapshot_id` as CSV, atomically."""
    frame = read_call_list(spark, settings, snapshot_id).orderBy("rank")
    if top is not None:
        frame = frame.limit(top)
    pdf = frame.toPandas()
    atomic_write_text(path, pdf.to_csv(index=False))
    return len(pdf)
