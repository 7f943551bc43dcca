"""Tracked XGBoost training on an Iceberg snapshot: the code behind 03_train.py and 06_retrain.py.

One path for both scripts: `load_training_data` reads a slice of the lake table (the whole table,
one snapshot, or only the rows a batch appended; pyiceberg for a small table, no JVM, else Spark)
and records where it came from and which engine read it; `train_grid` trains a grid of boosters
on it and logs every run to MLflow with its params, train/test metrics, lineage tags, the
dataset, the servable model, feature importance and the training profile. The best run also
gets confusion-matrix, ROC and PR figures.

Modules, light ones first (the model server imports the registry, which reads `data` and
`results`; it never loads `fit`, `runs`, `figures` or `train`):

    errors   TrainingError
    data     DataSlice, load_training_data, split (stratified 70/30 in a canonical row order)
    grid     the fixed booster params, DEFAULT_GRID (12 runs), load_grid / validate_grid
    results  RunResult, TrainResult, best_run, format_leaderboard
    lineage  git commit and the lineage tags of a run
    fit      prepare_data, fit_booster (XGBoost)
    runs     log_run: one MLflow run with model, importance and profile
    figures  the best run's confusion matrix, ROC and PR curves (matplotlib)
    train    train_grid

The package re-exports the names scripts and tests use; heavy ones are imported on first access,
so `import lib.training` stays as cheap as `lib.training.data`.
"""

from __future__ import annotations

import importlib
from typing import Any

from lib.training.data import MODES, TEST_FRACTION, DataSlice, load_training_data, split
from lib.training.errors import TrainingError
from lib.training.grid import DEFAULT_GRID, FIXED_PARAMS, first_runs, load_grid, validate_grid
from lib.training.results import RunResult, TrainResult, best_run, format_leaderboard

# name -> module, imported on first access (PEP 562) so the light names above don't pull them in
_LAZY = {
    "train_grid": "lib.training.train",
    "prepare_data": "lib.training.fit",
    "fit_booster": "lib.training.fit",
    "cpu_cores": "lib.training.fit",
    "default_workers": "lib.training.fit",
    "VALIDATION_FRACTION": "lib.training.fit",
    "IMPORTANCE_ARTIFACT": "lib.training.runs",
    "FIGURES": "lib.training.figures",
    "quiet_mlflow": "lib.tracking",  # moved there (monitoring uses it too); kept for old imports
}

__all__ = [
    "DEFAULT_GRID", "FIXED_PARAMS", "MODES", "TEST_FRACTION", "DataSlice", "RunResult", "TrainResult",
    "TrainingError", "best_run", "first_runs", "format_leaderboard", "load_grid", "load_training_data", "split",
    "validate_grid", *_LAZY,
]  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
