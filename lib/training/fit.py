"""Fitting boosters: the encoded matrices a grid shares, and one XGBoost fit with early stopping.

Evaluation is honest: the test part of `lib.training.data.split` is never seen while fitting;
early stopping watches a validation slice carved from the training part.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from lib.features import TARGET, FeatureSet, encode_frame, labels_to_int
from lib.training.data import DataSlice, check_classes, split
from lib.training.grid import booster_params
from lib.training.lineage import lineage_tags

VALIDATION_FRACTION = 0.15  # of the training part, for early stopping only


class MatrixPool:
    """The fit and validation `DMatrix` pair of a grid, built once per concurrent fit and reused.

    A `DMatrix` keeps the quantised (histogram) index `tree_method=hist` builds from it, so the
    runs after the first skip that work (the boosters are byte-identical). A pair serves one fit
    at a time: XGBoost does not document training on one `DMatrix` from two threads at once.
    """

    def __init__(self, prep: Prepared) -> None:
        self._prep = prep
        self._free: queue.SimpleQueue[tuple[xgb.DMatrix, xgb.DMatrix]] = queue.SimpleQueue()

    def _build(self) -> tuple[xgb.DMatrix, xgb.DMatrix]:
        prep, names, types = self._prep, list(self._prep.features.columns), self._prep.features.feature_types

        def matrix(x: np.ndarray, y: np.ndarray) -> xgb.DMatrix:
            return xgb.DMatrix(x, label=y, feature_names=names, feature_types=types, enable_categorical=True)

        return matrix(prep.x_fit, prep.y_fit), matrix(prep.x_val, prep.y_val)

    @contextmanager
    def borrow(self) -> Iterator[tuple[xgb.DMatrix, xgb.DMatrix]]:
        """A (fit, validation) pair no other fit is using; returned to the pool afterwards."""
        try:
            pair = self._free.get_nowait()
        except queue.Empty:
            pair = self._build()
        try:
            yield pair
        finally:
            self._free.put(pair)


class BestRoundStopping(xgb.callback.EarlyStopping):
    """XGBoost's early stopping that also keeps the fit and validation rows' probabilities at the best round.

    After every round the booster's prediction cache holds the probabilities of the matrices it
    trains and evaluates on, so reading them is a copy, not a prediction. At the best round they
    are bit for bit what the booster cut to that round predicts (tests/integration/test_training.py
    checks it), so the train metrics need no second pass of every kept tree over the training rows.
    """

    def __init__(self, rounds: int, fit: xgb.DMatrix, val: xgb.DMatrix) -> None:
        super().__init__(rounds=rounds)
        self._matrices = (fit, val)
        self.proba_fit: np.ndarray | None = None
        self.proba_val: np.ndarray | None = None

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: dict) -> bool:
        """Early stopping's decision; on a new best round, copy the cached probabilities."""
        stop = super().after_iteration(model, epoch, evals_log)
        if model.best_iteration == epoch + self.starting_round:
            fit, val = self._matrices
            self.proba_fit = model.predict(fit, validate_features=False)
            self.proba_val = model.predict(val, validate_features=False)
        return stop


@dataclass
class Prepared:
    """Everything the runs of one grid share: splits, matrices, labels, lineage."""

    data: DataSlice
    features: FeatureSet
    seed: int
    train: pd.DataFrame
    test: pd.DataFrame
    x_fit: np.ndarray
    y_fit: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    fit_rows: np.ndarray  # positions of the fit rows in `train` (and `x_train`)
    val_rows: np.ndarray  # positions of the validation rows in `train`
    tags: dict[str, str] = field(default_factory=dict)
    matrices: MatrixPool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.matrices = MatrixPool(self)


@dataclass
class Fitted:
    """One trained booster with its test/train probabilities and how long it took."""

    entry: dict[str, Any]
    params: dict[str, Any]
    booster: xgb.Booster
    best_iteration: int
    val_auc: float
    proba_train: np.ndarray
    proba_test: np.ndarray
    seconds: float


def prepare_data(data: DataSlice, features: FeatureSet, seed: int) -> Prepared:
    """Split, carve the validation slice, encode once and collect the lineage tags for a grid."""
    from sklearn.model_selection import train_test_split

    train, test = split(data.df, seed)
    y_train = labels_to_int(train[TARGET])
    check_classes(y_train, "the training part", minimum=4)
    fit, val = train_test_split(train, test_size=VALIDATION_FRACTION, stratify=y_train, random_state=seed)
    y_test = labels_to_int(test[TARGET])
    tags = lineage_tags(data, features, train, test, len(val), (float(y_train.mean()), float(y_test.mean())))
    return Prepared(
        data=data,
        features=features,
        seed=seed,
        train=train,
        test=test,
        x_fit=encode_frame(fit, features),
        y_fit=labels_to_int(fit[TARGET]),
        x_val=encode_frame(val, features),
        y_val=labels_to_int(val[TARGET]),
        x_train=encode_frame(train, features),
        y_train=y_train,
        x_test=encode_frame(test, features),
        y_test=y_test,
        fit_rows=train.index.get_indexer(fit.index),
        val_rows=train.index.get_indexer(val.index),
        tags=tags,
    )


def fit_booster(prep: Prepared, entry: dict[str, Any], nthread: int) -> Fitted:
    """Train one booster with early stopping on the validation slice (runs in a worker thread).

    The booster is cut to its best round, so the logged model carries only the kept trees. The
    training rows' probabilities are the ones early stopping kept at that round (fit and
    validation rows put back in `train`'s order); the test rows are predicted once, at the end.
    """
    start = time.perf_counter()
    params, rounds, early = booster_params(entry, prep.seed, nthread)
    with prep.matrices.borrow() as (fit, val):
        stopping = BestRoundStopping(early, fit, val)
        booster = xgb.train(
            params, fit, num_boost_round=rounds, evals=[(val, "validation")], verbose_eval=False, callbacks=[stopping]
        )
    best, val_auc = int(booster.best_iteration), float(booster.best_score)
    booster = booster[: best + 1]
    proba_train = np.empty(len(prep.y_train), dtype=np.float32)
    proba_train[prep.fit_rows] = stopping.proba_fit
    proba_train[prep.val_rows] = stopping.proba_val
    return Fitted(
        entry=entry,
        params={**params, "num_boost_round": rounds, "early_stopping_rounds": early},
        booster=booster,
        best_iteration=best,
        val_auc=val_auc,
        proba_train=proba_train,
        proba_test=booster.inplace_predict(prep.x_test, validate_features=False),
        seconds=time.perf_counter() - start,
    )


def cpu_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_workers(n_runs: int) -> int:
    """Parallel boosters: one per core (capped by the number of runs)."""
    return max(1, min(cpu_cores(), n_runs))
