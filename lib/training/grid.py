"""The hyper-parameter grid: the fixed booster settings, the default 12-run grid, and user grids.

A grid is a list of objects of booster parameters (plus the two round counts); each entry is one
MLflow run. User grids (`--grid`) are checked here before any run starts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lib.training.errors import TrainingError

NUM_BOOST_ROUND = 2000
EARLY_STOPPING_ROUNDS = 100
# Non-grid booster settings, tuned on the real 45,211 rows: row/column subsampling, a minimum
# child weight and gamma regularise the slow-learning runs (+0.003-0.004 test ROC AUC over the
# XGBoost defaults); 2,000 rounds leave lr=0.01 room to converge before early stopping.
FIXED_PARAMS: dict[str, Any] = {
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "tree_method": "hist",
    "min_child_weight": 5,
    "subsample": 0.7,
    "colsample_bytree": 0.8,
    "gamma": 1.0,
}
# The 12 runs of 03_train.py and 06_retrain.py: depth x learning rate x L1 penalty, in run order.
DEFAULT_GRID: list[dict[str, Any]] = [
    {"max_depth": 3, "learning_rate": 0.01, "alpha": 0.0},
    {"max_depth": 3, "learning_rate": 0.01, "alpha": 0.1},
    {"max_depth": 3, "learning_rate": 0.01, "alpha": 1.0},
    {"max_depth": 3, "learning_rate": 0.1, "alpha": 0.0},
    {"max_depth": 3, "learning_rate": 0.1, "alpha": 0.1},
    {"max_depth": 3, "learning_rate": 0.1, "alpha": 1.0},
    {"max_depth": 5, "learning_rate": 0.01, "alpha": 0.0},
    {"max_depth": 5, "learning_rate": 0.01, "alpha": 0.1},
    {"max_depth": 5, "learning_rate": 0.01, "alpha": 1.0},
    {"max_depth": 5, "learning_rate": 0.1, "alpha": 0.0},
    {"max_depth": 5, "learning_rate": 0.1, "alpha": 0.1},
    {"max_depth": 5, "learning_rate": 0.1, "alpha": 1.0},
]
# Keys a grid entry may set: booster parameters plus the two round counts.
GRID_KEYS = frozenset(
    {
        "max_depth", "learning_rate", "eta", "alpha", "lambda", "gamma", "min_child_weight",
        "subsample", "colsample_bytree", "colsample_bylevel", "colsample_bynode", "max_bin",
        "max_cat_to_onehot", "max_cat_threshold", "scale_pos_weight", "max_delta_step",
        "grow_policy", "max_leaves", "num_boost_round", "early_stopping_rounds",
    }
)  # fmt: skip


def load_grid(spec: str) -> list[dict[str, Any]]:
    """A grid from JSON text or a JSON file: a non-empty list of objects of booster params."""
    is_text = spec.lstrip().startswith("[")
    if not is_text and not Path(spec).is_file():
        raise TrainingError(f"grid file {spec} not found (or pass the grid as JSON text: '[{{...}}]')")
    text = spec if is_text else Path(spec).read_text()
    try:
        grid = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TrainingError(f"grid {'text' if is_text else spec} is not valid JSON: {exc}") from exc
    validate_grid(grid)
    return grid


def validate_grid(grid: Any) -> None:
    """Reject grids with unknown keys or non-numeric values before any run starts."""
    if not isinstance(grid, list) or not grid:
        raise TrainingError("grid must be a non-empty JSON list of parameter objects")
    for i, entry in enumerate(grid):
        if not isinstance(entry, dict):
            raise TrainingError(f"grid entry {i} must be an object of parameters, got {entry!r}")
        unknown = sorted(set(entry) - GRID_KEYS)
        if unknown:
            raise TrainingError(
                f"grid entry {i}: unknown parameter(s) {', '.join(unknown)}; allowed: {', '.join(sorted(GRID_KEYS))}"
            )
        for key, value in entry.items():
            if key != "grow_policy" and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise TrainingError(f"grid entry {i}: {key} must be a number, got {value!r}")


def first_runs(grid: list[dict[str, Any]], max_runs: int | None) -> list[dict[str, Any]]:
    """The first `max_runs` entries of `grid` (all of them for None); asking for more is an error."""
    if max_runs is None:
        return list(grid)
    if not 1 <= max_runs <= len(grid):
        raise TrainingError(f"max runs must be between 1 and the grid's {len(grid)} entries, got {max_runs}")
    return grid[:max_runs]


def run_name(entry: Mapping[str, Any]) -> str:
    """The MLflow run name of a grid entry, e.g. `xgb-d3-lr0.1-a0.0`."""
    short = {"max_depth": "d", "learning_rate": "lr", "alpha": "a"}
    return "xgb-" + "-".join(f"{short.get(k, k)}{v}" for k, v in entry.items())


def booster_params(entry: Mapping[str, Any], seed: int, nthread: int) -> tuple[dict[str, Any], int, int]:
    """XGBoost params for one entry (fixed settings overridden by the entry), rounds, early-stop rounds."""
    params = {**FIXED_PARAMS, **entry, "seed": seed, "nthread": nthread}
    rounds = int(params.pop("num_boost_round", NUM_BOOST_ROUND))
    early = int(params.pop("early_stopping_rounds", EARLY_STOPPING_ROUNDS))
    return params, rounds, early
