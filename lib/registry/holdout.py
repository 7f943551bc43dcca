"""Held-out rows for the gate and the simulator: test splits rebuilt from the lake, minus rows a model saw.

The rows come from `lib.training.data.load_training_data`: pass a Spark session to read through it,
or None to let the lake choose (pyiceberg without a JVM for a small table, else a short Spark session).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from lib.config import DEFAULT_SEED, Settings
from lib.features import TARGET, labels_to_int
from lib.registry.versions import RegistryError, VersionInfo, _client

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from lib.training.data import DataSlice


@dataclass(frozen=True)
class HoldOut:
    """Rows neither model was trained on, from a named Iceberg snapshot."""

    frame: pd.DataFrame
    snapshot_id: int | str
    table: str
    engine: str = "spark"  # what read the current snapshot's rows: "spark" or "pyiceberg"


MIN_HOLDOUT_ROWS = 100


def _version_data(spark: SparkSession | None, settings: Settings, info: VersionInfo) -> tuple[DataSlice, int]:
    """The data slice and seed a version's run was split with: its snapshot, data mode and seed."""
    from lib.training.data import load_training_data

    run = _client(settings).get_run(info.run_id)
    snapshot = run.data.tags.get("iceberg_snapshot_id")
    if not snapshot:
        raise RegistryError(f"version {info.version} (run {info.run_id}) has no iceberg_snapshot_id tag")
    mode = "incremental" if run.data.tags.get("data_mode") == "incremental" else "full"
    data = load_training_data(spark, settings, mode=mode, snapshot_id=int(snapshot))
    return data, int(run.data.params.get("seed", DEFAULT_SEED))


def _training_rows(spark: SparkSession | None, settings: Settings, info: VersionInfo) -> pd.DataFrame:
    """The exact rows a version was fitted on, rebuilt from its run's snapshot, data mode and seed."""
    from lib.training.data import split

    data, seed = _version_data(spark, settings, info)
    return split(data.df, seed=seed)[0]


def _unseen(frame: pd.DataFrame, seen: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The rows of `frame` that appear in none of `seen` (an identical row counts as seen)."""
    if not seen:
        return frame
    columns = list(frame.columns)
    trained = pd.concat([other[columns] for other in seen]).drop_duplicates()
    marked = frame.merge(trained, on=columns, how="left", indicator=True)
    return marked.loc[marked["_merge"] == "left_only", columns].reset_index(drop=True)


def holdout_rows(spark: SparkSession | None, settings: Settings, versions: Sequence[VersionInfo] = ()) -> HoldOut:
    """The test split of the table's current snapshot, minus every row any of `versions` was fitted on.

    After a batch the split moves, so without this the champion would be scored on rows it trained
    on (and a bootstrapped batch repeats rows); the gate must compare unseen rows.
    """
    from lib.training.data import load_training_data, split

    data = load_training_data(spark, settings, mode="full")
    _, test = split(data.df, seed=DEFAULT_SEED)
    if versions:
        test = _unseen(test, [_training_rows(spark, settings, info) for info in versions])
        labels = set(labels_to_int(test[TARGET]))
        if len(test) < MIN_HOLDOUT_ROWS or labels != {0, 1}:
            names = ", ".join(f"v{info.version}" for info in versions)
            raise RegistryError(
                f"only {len(test)} held-out rows of snapshot {data.snapshot_id} are unseen by {names} "
                f"(need {MIN_HOLDOUT_ROWS} with both classes): append a batch (05_newbatch.py) and retrain"
            )
    return HoldOut(frame=test, snapshot_id=data.snapshot_id, table=data.table, engine=data.engine)


def version_holdout(spark: SparkSession | None, settings: Settings, info: VersionInfo) -> HoldOut:
    """Rebuild the test split `info` was scored on in MLflow, minus any row it was also fitted on.

    The split comes from its run's snapshot, data mode and seed; a bootstrapped batch can put a row
    on both sides. These are the rows to send the served model (08 --source table): whatever seed
    or snapshot it was trained with, it never saw them.
    """
    from lib.training.data import split

    data, seed = _version_data(spark, settings, info)
    train, test = split(data.df, seed=seed)
    return HoldOut(frame=_unseen(test, [train]), snapshot_id=data.snapshot_id, table=data.table, engine=data.engine)
