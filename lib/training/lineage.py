"""Lineage tags of a training run: which table, snapshot, rows and code version it came from."""

from __future__ import annotations

import subprocess
import uuid

import pandas as pd

from lib.config import PROJECT_ROOT
from lib.features import FeatureSet
from lib.training.data import DataSlice


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_commit() -> str:
    """The code version: `git rev-parse HEAD` of the project, or "unknown" outside a checkout."""
    return _git("rev-parse", "HEAD") or "unknown"


def git_dirty() -> str:
    """Return "true" when tracked files differ from the commit (the commit alone does not pin the code)."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return "unknown" if status is None else str(bool(status)).lower()


def lineage_tags(
    data: DataSlice, features: FeatureSet, train: pd.DataFrame, test: pd.DataFrame, validation_rows: int,
    positive_rates: tuple[float, float],
) -> dict[str, str]:  # fmt: skip
    """The tags every run of one grid shares; `positive_rates` are (train, test) shares of class 1."""
    commit = git_commit()
    return {
        "table": data.table,
        "iceberg_snapshot_id": str(data.snapshot_id),
        "iceberg_parent_id": "" if data.parent_id is None else str(data.parent_id),
        "iceberg_committed_at": data.committed_at or "",
        "data_mode": data.mode,
        "read_engine": data.engine,  # spark or pyiceberg: which engine read the snapshot's rows
        "rows_total": str(len(data.df)),
        "rows_train": str(len(train)),
        "rows_test": str(len(test)),
        "rows_validation": str(validation_rows),
        "positive_rate_train": f"{positive_rates[0]:.4f}",
        "positive_rate_test": f"{positive_rates[1]:.4f}",
        "include_duration": str(features.include_duration).lower(),
        "grid_id": uuid.uuid4().hex,  # the runs of one 03/06 invocation; deployment picks among the newest
        "git_commit": commit,
        "git_dirty": git_dirty(),
        "mlflow.source.git.commit": commit,
    }
