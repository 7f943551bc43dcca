"""Customers to explain: the champion's held-out split, or the latest batch appended by 05.

The held-out split is rebuilt the way training made it (`lib.training.data.split` on the table at
the version's Iceberg snapshot with its run's seed), read without a JVM (`lib.lake.read_pandas`),
so these are rows the version was not fitted on. Frames are kept per snapshot / batch file, so
paging through customers does not re-read the lake.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException

from lib.app import AppError
from lib.batches import BatchError, latest_batch_path, read_batch_csv
from lib.config import DEFAULT_SEED, Settings
from lib.features import RAW_COLUMNS, TARGET, pandas_dtypes
from lib.lake import LakeError, read_pandas
from lib.registry import VersionInfo
from lib.tracking import configure_mlflow
from lib.training.data import split
from lib.training.errors import TrainingError

SOURCES = ("holdout", "batch")
MAX_PAGE = 500


@dataclass(frozen=True)
class Customers:
    """Rows of one source (raw columns, target included when known) and where they came from."""

    source: str
    description: str
    frame: pd.DataFrame

    def page(self, offset: int, limit: int) -> list[dict[str, Any]]:
        """Rows `offset`… as JSON-ready records: `row` (position), `label` (yes/no or None), `record`."""
        part = self.frame.iloc[offset : offset + limit]
        inputs = [c for c in RAW_COLUMNS if c != TARGET and c in part.columns]
        labels = part[TARGET].tolist() if TARGET in part.columns else [None] * len(part)
        records = part.loc[:, inputs].astype(object).to_dict("records")
        return [
            {"row": offset + i, "label": label, "record": record}
            for i, (label, record) in enumerate(zip(labels, records, strict=True))
        ]


def _run_lineage(settings: Settings, info: VersionInfo) -> tuple[int, int, str]:
    """(snapshot, seed, data mode) of the run behind `info`."""
    try:
        run = configure_mlflow(settings).get_run(info.run_id)
    except MlflowException as exc:
        raise AppError(f"the run {info.run_id} of v{info.version} is not in the tracking store: {exc}") from exc
    snapshot = info.snapshot_id or run.data.tags.get("iceberg_snapshot_id", "")
    if not snapshot:
        raise AppError(f"v{info.version} has no iceberg_snapshot_id tag: register a run of 03_train.py")
    seed = int(run.data.params.get("seed", DEFAULT_SEED))
    return int(snapshot), seed, run.data.tags.get("data_mode", "full")


def holdout(settings: Settings, info: VersionInfo) -> Customers:
    """The test split of the table at `info`'s snapshot with its run's seed (rows it was not fitted on)."""
    snapshot, seed, mode = _run_lineage(settings, info)
    try:
        frame = read_pandas(settings, snapshot).astype(pandas_dtypes())
        _, test = split(frame, seed=seed)
    except (LakeError, TrainingError) as exc:
        raise AppError(f"cannot rebuild v{info.version}'s held-out split: {exc}") from exc
    note = "" if mode != "incremental" else " (its run trained on the appended rows only; split of the whole table)"
    description = (
        f"held-out split of {settings.table_ident} at snapshot {snapshot}, seed {seed}: "
        f"rows v{info.version} was not fitted on{note}"
    )
    return Customers("holdout", description, test)


def latest_batch(settings: Settings) -> Customers:
    """The CSV of the batch 05_newbatch.py appended last."""
    try:
        path = latest_batch_path(settings)
        frame = read_batch_csv(path)
    except BatchError as exc:
        raise AppError(str(exc)) from exc
    return Customers("batch", f"latest batch {path.name} ({len(frame):,} rows)", frame.reset_index(drop=True))


class CustomerCache:
    """The last few sources read, keyed by what identifies their content (snapshot + seed, or file)."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._frames: OrderedDict[tuple, Customers] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, settings: Settings, source: str, champion: VersionInfo) -> Customers:
        """Customers of `source` ("holdout": `champion`'s held-out split; "batch": the latest batch)."""
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
        if source == "holdout":
            key: tuple = ("holdout", champion.name, champion.version)
        else:
            try:
                path = latest_batch_path(settings)
            except BatchError as exc:
                raise AppError(str(exc)) from exc
            key = ("batch", str(path), path.stat().st_mtime_ns)
        with self._lock:
            found = self._frames.get(key)
            if found is not None:
                self._frames.move_to_end(key)
                return found
            found = holdout(settings, champion) if source == "holdout" else latest_batch(settings)
            self._frames[key] = found
            while len(self._frames) > self.size:
                self._frames.popitem(last=False)
            return found
