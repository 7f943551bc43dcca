"""Fitting boosters: the encoded matrices a grid shares, and one XGBoost fit with early stopping.

Evaluation is honest: the test part of `lib.training.data.split` is never seen while fitting;
early stopping watches a validation slice carved from the training part.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lib.features import TARGET, FeatureSet, encode_frame, labels_to_int
from lib.training.data import DataSlice, check_classes, split
from lib.training.grid import booster_params
from lib.training.lineage import lineage_tags

if TYPE_CHECKING:
    import xgboost as xgb

VALIDATION_FRACTION = 0.15  # of the training part, for early stopping only


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
    tags: dict[str, str] = field(default_factory=dict)


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
        tags=tags,
    )


def fit_booster(prep: Prepared, entry: dict[str, Any], nthread: int) -> Fitted:
    """Train one booster with early stopping on the validation slice (runs in a worker thread)."""
    import xgboost as xgb

    start = time.perf_counter()
    params, rounds, early = booster_params(entry, prep.seed, nthread)
    names, types = list(prep.features.columns), prep.features.feature_types

    def matrix(x: np.ndarray, y: np.ndarray) -> xgb.DMatrix:
        return xgb.DMatrix(x, label=y, feature_names=names, feature_types=types, enable_categorical=True)

    booster = xgb.train(
        params,
        matrix(prep.x_fit, prep.y_fit),
        num_boost_round=rounds,
        evals=[(matrix(prep.x_val, prep.y_val), "validation")],
        early_stopping_rounds=early,
        verbose_eval=False,
    )
    best, val_auc = int(booster.best_iteration), float(booster.best_score)
    booster = booster[: best + 1]
    return Fitted(
        entry=entry,
        params={**params, "num_boost_round": rounds, "early_stopping_rounds": early},
        booster=booster,
        best_iteration=best,
        val_auc=val_auc,
        proba_train=booster.inplace_predict(prep.x_train, validate_features=False),
        proba_test=booster.inplace_predict(prep.x_test, validate_features=False),
        seconds=time.perf_counter() - start,
    )


def cpu_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_workers(n_runs: int) -> int:
    """Parallel boosters: one per core (capped by the number of runs)."""
    return max(1, min(cpu_cores(), n_runs))
