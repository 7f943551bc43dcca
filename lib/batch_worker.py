"""The executor side of batch scoring (lib.scoring.scorer): what each Spark Python worker imports.

Kept apart from `lib.scoring` so that a worker imports only numpy, pandas and xgboost, not MLflow
and the rest of the package: on a busy 2-core machine a fresh worker's imports cost seconds, and
every run of 10 starts fresh workers. The booster is built from the broadcast bytes once per worker,
with one thread (as `lib.model.BankModel.load` does), and scores the matrix the driver's Spark SQL
encoding built: the same `inplace_predict` call as BankModel on the same float32 values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

ROW_HASH = "row_hash"
_BOOSTERS: dict[str, Any] = {}


def worker_booster(key: str, booster_bytes: bytes) -> Any:
    """This worker's booster (xgboost.Booster), built once per model `key` and reused by every later task."""
    booster = _BOOSTERS.get(key)
    if booster is None:
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(bytearray(booster_bytes))
        booster.set_param({"nthread": 1})
        _BOOSTERS.clear()  # one model per worker: a new champion replaces the old one
        _BOOSTERS[key] = booster
    return booster


def partition_scorer(
    broadcast: Any, key: str, columns: tuple[str, ...]
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The mapInPandas function: encoded batches in, (row hash, probability) out."""

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        booster = worker_booster(key, broadcast.value)
        for batch in batches:
            matrix = np.ascontiguousarray(batch[list(columns)].to_numpy(dtype=np.float32))
            proba = booster.inplace_predict(matrix, validate_features=False)
            yield pd.DataFrame({ROW_HASH: batch[ROW_HASH].to_numpy(), "probability": proba.astype(np.float64)})

    return score
