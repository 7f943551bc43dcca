"""Iceberg table operations through Spark: existence, writes, snapshots, time travel, rollback.

Every write goes through here (one Iceberg commit each); reads of big tables and incremental reads
(`read_added`) too. Small full-table reads have a JVM-free twin in `lib.lake.reader`.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from lib.config import Settings
from lib.lake.types import LakeError, Snapshot

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def table_exists(spark: SparkSession, settings: Settings) -> bool:
    """Whether the campaign table is in the catalog yet."""
    return bool(spark.catalog.tableExists(settings.table_ident))


def require_table(spark: SparkSession, settings: Settings) -> None:
    """Fail with what to run when the table has not been written yet."""
    if not table_exists(spark, settings):
        raise LakeError(f"table {settings.table_ident} does not exist: run 01_write_to_dl.py first")


def create_or_replace(spark: SparkSession, settings: Settings, df: DataFrame) -> int:
    """Write `df` as the table's new content in one commit and return the new snapshot id."""
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {settings.catalog_name}.{settings.namespace}")
    (
        df.writeTo(settings.table_ident)
        .using("iceberg")
        .tableProperty("format-version", "2")
        .tableProperty("write.format.default", "parquet")
        .tableProperty("commit.retry.num-retries", "10")
        .createOrReplace()
    )
    return current_snapshot_id(spark, settings)


# A snapshot summary property naming the commit that made it (`append` finds its own snapshot by it).
COMMIT_ID_PROPERTY = "lab.commit-id"


def append(spark: SparkSession, settings: Settings, df: DataFrame) -> int:
    """Append `df` as one Iceberg commit and return the snapshot it created.

    The commit carries a unique snapshot property, so the snapshot returned is this commit's even
    when another process commits to a shared catalog just before or after it (Iceberg then retries
    the append on top of the other commit, `commit.retry.num-retries`).
    """
    require_table(spark, settings)
    commit_id = uuid.uuid4().hex
    df.writeTo(settings.table_ident).option(f"snapshot-property.{COMMIT_ID_PROPERTY}", commit_id).append()
    mine = [s for s in list_snapshots(spark, settings) if s.summary.get(COMMIT_ID_PROPERTY) == commit_id]
    if len(mine) != 1:
        raise LakeError(f"append to {settings.table_ident} produced {len(mine)} snapshots, expected one")
    return mine[0].snapshot_id


def _refresh(spark: SparkSession, settings: Settings) -> None:
    spark.sql(f"REFRESH TABLE {settings.table_ident}")


def list_snapshots(spark: SparkSession, settings: Settings) -> list[Snapshot]:
    """Snapshots oldest first, with the one the table currently points at marked."""
    require_table(spark, settings)
    _refresh(spark, settings)
    current = current_snapshot_id(spark, settings)
    rows = spark.sql(
        f"SELECT snapshot_id, parent_id, committed_at, operation, summary "
        f"FROM {settings.table_ident}.snapshots ORDER BY committed_at"
    ).collect()
    return [
        Snapshot(
            snapshot_id=r.snapshot_id,
            parent_id=r.parent_id,
            committed_at=r.committed_at,
            operation=r.operation,
            summary=dict(r.summary or {}),
            is_current=r.snapshot_id == current,
        )
        for r in rows
    ]


def current_snapshot_id(spark: SparkSession, settings: Settings) -> int:
    """The snapshot the table points at now (after a rollback this is not the newest one)."""
    _refresh(spark, settings)
    row = spark.sql(
        f"SELECT snapshot_id FROM {settings.table_ident}.history ORDER BY made_current_at DESC LIMIT 1"
    ).first()
    if row is None:
        raise LakeError(f"table {settings.table_ident} has no snapshot yet")
    return int(row.snapshot_id)


def get_snapshot(spark: SparkSession, settings: Settings, snapshot_id: int) -> Snapshot:
    """The snapshot with this id, or a LakeError that says how to list the valid ones."""
    for snap in list_snapshots(spark, settings):
        if snap.snapshot_id == snapshot_id:
            return snap
    raise LakeError(
        f"snapshot {snapshot_id} not found in {settings.table_ident}: list them with `python -m lib.lake snapshots`"
    )


def read_table(spark: SparkSession, settings: Settings, snapshot_id: int | None = None) -> DataFrame:
    """The table at its current snapshot or, for time travel, at `snapshot_id`."""
    require_table(spark, settings)
    reader = spark.read.format("iceberg")
    if snapshot_id is not None:
        get_snapshot(spark, settings, snapshot_id)
        reader = reader.option("snapshot-id", str(snapshot_id))
    return reader.load(settings.table_ident)


def read_known_snapshot(spark: SparkSession, settings: Settings, snapshot_id: int) -> DataFrame:
    """The table at a snapshot already found in its metadata (by pyiceberg): no Spark job looks it up.

    Refreshed first: a session opened earlier must see a snapshot another process committed.
    """
    _refresh(spark, settings)
    return spark.read.format("iceberg").option("snapshot-id", str(snapshot_id)).load(settings.table_ident)


def read_added(spark: SparkSession, settings: Settings, start_id: int, end_id: int) -> DataFrame:
    """Rows appended after snapshot `start_id` up to and including `end_id`."""
    require_table(spark, settings)
    _refresh(spark, settings)  # `end_id` may come from another process's commit
    return (
        spark.read.format("iceberg")
        .option("start-snapshot-id", str(start_id))
        .option("end-snapshot-id", str(end_id))
        .load(settings.table_ident)
    )


def rollback(spark: SparkSession, settings: Settings, snapshot_id: int) -> None:
    """Point the table back at an earlier snapshot (a metadata-only Iceberg commit)."""
    get_snapshot(spark, settings, snapshot_id)
    ident = f"{settings.namespace}.{settings.table_name}"
    spark.sql(f"CALL {settings.catalog_name}.system.rollback_to_snapshot('{ident}', {snapshot_id})")
    _refresh(spark, settings)
