"""Appending a batch to the Iceberg table as ONE commit, and reading the table it grows.

The append validates first, writes the batch's CSV copy before the commit and renames it into
place after, under a file lock per table; a rejected or failed append leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from lib import faults
from lib.batches.files import latest_pointer, write_batch_csv
from lib.batches.validation import BatchError, validate_batch
from lib.config import Settings
from lib.features import RAW_COLUMNS, spark_ddl
from lib.fileio import atomic_write_text

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

APPEND_LOCK_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class AppendResult:
    """What an append committed: row counts around it, the new snapshot, its parent, the batch's saved CSV."""

    rows: int
    rows_before: int
    rows_after: int
    snapshot_id: int
    parent_id: int | None
    csv_path: Path


def _check_table_schema(spark: SparkSession, settings: Settings, frame: DataFrame) -> None:
    """The table must still have the raw schema the batch is written with."""
    expected = [(f.name, f.dataType.simpleString()) for f in frame.schema.fields]
    actual = [(f.name, f.dataType.simpleString()) for f in spark.table(settings.table_ident).schema.fields]
    if actual != expected:
        raise BatchError(
            f"table {settings.table_ident} schema {actual} differs from the feature definition {expected}: "
            "recreate it with 01_write_to_dl.py"
        )


def append_lock_path(settings: Settings) -> Path:
    """The file lock that serializes appends to the table from processes on this machine."""
    return settings.run_dir / "locks" / f"append-{settings.namespace}.{settings.table_name}.lock"


def _append_lock(settings: Settings):  # -> filelock.FileLock (imported lazily)
    from filelock import FileLock

    path = append_lock_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path)


def _write_pointer(
    settings: Settings, csv_path: Path, snapshot_id: int, parent_id: int | None, label: str, rows: int
) -> None:
    pointer = {
        "path": csv_path.name,
        "snapshot_id": snapshot_id,
        "parent_id": parent_id,
        "label": label,
        "rows": rows,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_text(latest_pointer(settings), json.dumps(pointer, indent=2))


def append_batch(
    spark: SparkSession,
    settings: Settings,
    batch: pd.DataFrame,
    label: str,
    *,
    allow_new_categories: bool = False,
    lock_timeout: float = APPEND_LOCK_TIMEOUT_S,
) -> AppendResult:
    """Validate, then append the batch as ONE Iceberg commit and keep a CSV copy of it.

    Appends from several processes on this machine are serialized by a file lock (the Hadoop
    catalog's rename commit is not safe across JVMs); a shared catalog additionally retries
    conflicting commits (`commit.retry.num-retries`), so appends from several machines all land,
    and the result reports the parent the commit really got. The CSV is written before the commit and
    renamed into place after it, so a failed append leaves no batch file behind.
    """
    from filelock import Timeout

    from lib.lake import append, get_snapshot, require_table

    validate_batch(batch, allow_new_categories=allow_new_categories)
    require_table(spark, settings)
    tmp = settings.batches_dir / f".pending-{uuid.uuid4().hex}.csv"
    try:
        write_batch_csv(batch, tmp)
        frame = spark.createDataFrame(batch.loc[:, list(RAW_COLUMNS)], schema=spark_ddl())
        _check_table_schema(spark, settings, frame)
        try:
            with _append_lock(settings).acquire(timeout=lock_timeout):
                faults.reached(settings, "append.before_commit")
                snapshot_id = append(spark, settings, frame)
                faults.reached(settings, "append.after_commit")
                # Parent and counts from the commit itself: on a shared catalog another machine's
                # append may have landed in between, and Iceberg retried ours on top of it.
                committed = get_snapshot(spark, settings, snapshot_id)
                parent_id, rows_after = committed.parent_id, committed.total_records
                rows_before = rows_after - committed.added_records
                csv_path = settings.batches_dir / f"batch_{snapshot_id}_{label}.csv"
                os.replace(tmp, csv_path)
                _write_pointer(settings, csv_path, snapshot_id, parent_id, label, len(batch))
        except Timeout as exc:
            raise BatchError(
                f"another append to {settings.table_ident} held the lock for {lock_timeout:.0f}s; "
                "nothing appended, try again when it has finished"
            ) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("appended %d rows to %s as snapshot %d", len(batch), settings.table_ident, snapshot_id)
    return AppendResult(len(batch), rows_before, rows_after, snapshot_id, parent_id, csv_path)


def check_batch_in_table(settings: Settings) -> None:
    """Refuse to replay the latest batch unless it is still in the table.

    After `lib.lake rollback` past its snapshot, replaying it would send traffic from data the lake
    no longer holds.
    """
    from pyiceberg.table.snapshots import ancestors_of

    from lib.lake import open_table

    snapshot_id = json.loads(latest_pointer(settings).read_text()).get("snapshot_id")
    table = open_table(settings)
    live = {s.snapshot_id for s in ancestors_of(table.current_snapshot(), table.metadata)}
    if snapshot_id not in live:
        raise BatchError(
            f"the latest batch (snapshot {snapshot_id}) was rolled back out of {settings.table_ident}: "
            "append a new one (05_newbatch.py) or use --source table"
        )


def load_source(settings: Settings) -> tuple[pd.DataFrame, int]:
    """The current table as pandas plus its snapshot id, read with pyiceberg (no JVM needed)."""
    from lib.lake import LakeError, open_table

    table = open_table(settings)
    snapshot = table.current_snapshot()
    if snapshot is None:
        raise LakeError(f"table {settings.table_ident} has no snapshot yet: run 01_write_to_dl.py first")
    return table.scan(snapshot_id=snapshot.snapshot_id).to_pandas(), int(snapshot.snapshot_id)
