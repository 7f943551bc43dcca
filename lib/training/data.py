"""The training data: a slice of the lake table with its lineage, and the canonical train/test split.

Light on purpose: the registry rebuilds a model's split from here (for the redeploy gate and the
simulator's held-out rows) inside the model-server process, which must not load the fitting or
MLflow-logging code. Spark, the lake and scikit-learn are imported only when called.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lib.features import RAW_COLUMNS, TARGET, labels_to_int, pandas_dtypes
from lib.training.errors import TrainingError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from lib.config import Settings

log = logging.getLogger(__name__)

TEST_FRACTION = 0.3
MODES = ("full", "incremental", "snapshot")


@dataclass(frozen=True)
class DataSlice:
    """Rows read from the lake plus where they came from (for lineage tags)."""

    df: pd.DataFrame
    table: str
    snapshot_id: int
    parent_id: int | None
    committed_at: str | None
    mode: str
    engine: str = "spark"  # what read the rows: "spark" or "pyiceberg" (a lineage tag of the runs)


def _to_pandas(spark_df: Any, what: str) -> pd.DataFrame:
    """Spark rows → pandas with the raw dtypes of `lib.features` (nulls are an error)."""
    return _checked(spark_df.select(*RAW_COLUMNS).toPandas(), what)


def _checked(df: pd.DataFrame, what: str) -> pd.DataFrame:
    """The raw columns with the dtypes of `lib.features`, whichever engine read them (nulls are an error)."""
    missing = [c for c in RAW_COLUMNS if c not in df.columns]
    if missing:
        raise TrainingError(f"{what} has no column(s) {', '.join(missing)}")
    df = df.loc[:, list(RAW_COLUMNS)]
    nulls = [c for c in RAW_COLUMNS if df[c].isna().any()]
    if nulls:
        raise TrainingError(f"{what} has missing values in column(s): {', '.join(nulls)}")
    return df.astype(pandas_dtypes())


def _check_mode(mode: str, snapshot_id: int | None) -> None:
    if mode not in MODES:
        raise TrainingError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "snapshot" and snapshot_id is None:
        raise TrainingError("mode 'snapshot' needs a snapshot id (list them: python -m lib.lake snapshots)")


def load_training_data(
    spark: SparkSession | None, settings: Settings, *, mode: str = "full", snapshot_id: int | None = None
) -> DataSlice:
    """Read the training slice of the lake table and record its snapshot lineage and reading engine.

    full: the whole table at its current snapshot (or at `snapshot_id`, reported as "snapshot");
    incremental: only the rows the current snapshot (or `snapshot_id`) appended to its parent.
    With a `spark` session the read goes through Spark. With None the engine is chosen
    (`lib.lake.read_engine`): pyiceberg, no JVM, for a full read of a small table in a catalog it
    reads; otherwise a Spark session is started for the read and stopped after it.
    """
    from lib.lake import read_engine, spark_session

    _check_mode(mode, snapshot_id)
    if spark is not None:
        return _load_with_spark(spark, settings, mode, snapshot_id)
    if mode != "incremental" and read_engine(settings, snapshot_id) == "pyiceberg":
        return _load_with_pyiceberg(settings, snapshot_id)
    with spark_session(settings) as session:
        return _load_with_spark(session, settings, mode, snapshot_id)


def _load_with_pyiceberg(settings: Settings, snapshot_id: int | None) -> DataSlice:
    """The full table at a snapshot, read by pyiceberg: the same rows Spark reads, without a JVM."""
    from lib.lake.reader import snapshot_and_rows

    snap, rows = snapshot_and_rows(settings, snapshot_id)
    what = f"{settings.table_ident} at snapshot {snap.snapshot_id}"
    df = _checked(rows, what)
    if df.empty:
        raise TrainingError(f"no rows to train on: {what} is empty")
    kind = "snapshot" if snapshot_id is not None else "full"
    log.info("read %d rows (%s) from %s with pyiceberg", len(df), kind, what)
    return DataSlice(
        df=df,
        table=settings.table_ident,
        snapshot_id=int(snap.snapshot_id),
        parent_id=None if snap.parent_id is None else int(snap.parent_id),
        committed_at=snap.committed_at.isoformat() if snap.committed_at is not None else None,
        mode=kind,
        engine="pyiceberg",
    )


def _load_with_spark(spark: SparkSession, settings: Settings, mode: str, snapshot_id: int | None) -> DataSlice:
    """Any slice through Spark: the whole table, a snapshot, or the rows one append added."""
    from lib.lake import current_snapshot_id, get_snapshot, read_added, read_table, require_table

    require_table(spark, settings)
    end_id = snapshot_id if snapshot_id is not None else current_snapshot_id(spark, settings)
    snap = get_snapshot(spark, settings, end_id)
    if mode != "incremental":
        what = f"{settings.table_ident} at snapshot {end_id}"
        df = _to_pandas(read_table(spark, settings, snapshot_id=end_id), what)
        kind = "snapshot" if snapshot_id is not None else "full"
    else:
        if snap.parent_id is None:
            raise TrainingError(
                f"snapshot {end_id} of {settings.table_ident} has no parent, nothing was appended: "
                "use mode full (python 03_train.py)"
            )
        if snap.operation != "append":
            raise TrainingError(
                f"snapshot {end_id} of {settings.table_ident} is an {snap.operation!r}, not an append: "
                "incremental mode needs a batch from 05_newbatch.py; use mode full otherwise"
            )
        what = f"rows appended to {settings.table_ident} by snapshot {end_id}"
        df = _to_pandas(read_added(spark, settings, snap.parent_id, end_id), what)
        kind = "incremental"
    if df.empty:
        raise TrainingError(f"no rows to train on: {what} is empty")
    log.info("read %d rows (%s) from %s", len(df), kind, what)
    return DataSlice(
        df=df,
        table=settings.table_ident,
        snapshot_id=int(end_id),
        parent_id=None if snap.parent_id is None else int(snap.parent_id),
        committed_at=snap.committed_at.isoformat() if snap.committed_at is not None else None,
        mode=kind,
        engine="spark",
    )


def split(df: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified 70/30 train/test split, independent of the order the rows were read in.

    Rows are first sorted on every raw column (identical rows are interchangeable), so Spark,
    pyiceberg or a CSV reader all get the same held-out rows for the same snapshot and seed.
    """
    from sklearn.model_selection import train_test_split

    missing = [c for c in RAW_COLUMNS if c not in df.columns]
    if missing:
        raise TrainingError(f"cannot split: missing column(s) {', '.join(missing)}")
    ordered = df.sort_values(list(RAW_COLUMNS), kind="mergesort").reset_index(drop=True)
    y = labels_to_int(ordered[TARGET])
    check_classes(y, "the data", minimum=4)
    train, test = train_test_split(ordered, test_size=TEST_FRACTION, stratify=y, random_state=seed)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def check_classes(y: np.ndarray, what: str, minimum: int) -> None:
    """Refuse data with fewer than `minimum` rows of either class (no stratified split possible)."""
    positives = int(y.sum())
    negatives = len(y) - positives
    if min(positives, negatives) < minimum:
        raise TrainingError(
            f"{what} has {len(y)} rows with {positives} subscribed and {negatives} not: need at least "
            f"{minimum} of each class to split and evaluate; train on more data (mode full)"
        )
