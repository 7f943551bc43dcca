"""Training a grid: the one entry point of 03_train.py and 06_retrain.py (`train_grid`).

Boosters train in worker threads (XGBoost releases the GIL) while the main thread logs the
finished ones to MLflow, so tracking overhead overlaps with training. The best run also gets the
evaluation figures.
"""

from __future__ import annotations

import logging
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from lib.config import DEFAULT_SEED, Settings
from lib.features import FeatureSet
from lib.metrics import DEFAULT_METRIC, RUN_METRIC_KEYS
from lib.training.data import DataSlice
from lib.training.errors import TrainingError
from lib.training.figures import log_figures
from lib.training.fit import Prepared, cpu_cores, default_workers, fit_booster, prepare_data
from lib.training.grid import DEFAULT_GRID, validate_grid
from lib.training.results import RunResult, TrainResult, pick_best
from lib.training.runs import grid_shared, log_run

log = logging.getLogger(__name__)


def _fit_and_log(
    prep: Prepared, grid: list[dict[str, Any]], settings: Settings, experiment_name: str, workers: int,
    selection_metric: str, progress: bool,
) -> tuple[str, list[RunResult], dict[str, np.ndarray]]:  # fmt: skip
    """Fit the grid in `workers` threads, log each run in grid order; return experiment id, runs, test probas.

    The boosters start first: the MLflow store setup (a new SQLite store runs its migrations),
    the first imports of the model-logging code and the per-grid logging inputs then overlap
    with the first fits instead of delaying them.
    """
    from tqdm.auto import tqdm

    from lib.tracking import ensure_experiment

    nthread = max(1, cpu_cores() // workers)
    runs: list[RunResult] = []
    probas: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="train-") as tmp, ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(fit_booster, prep, entry, nthread) for entry in grid]
        try:
            experiment_id = ensure_experiment(settings, experiment_name)
            shared = grid_shared(prep)
            bar = tqdm(total=len(grid), desc=f"training {experiment_name}", unit="run", disable=not progress)
            with bar:
                for future in futures:
                    fitted = future.result()
                    result = log_run(prep, fitted, experiment_id, shared, Path(tmp))
                    runs.append(result)
                    probas[result.run_id] = fitted.proba_test
                    bar.set_postfix({selection_metric: f"{result.metrics[selection_metric]:.4f}"})
                    bar.update()
        finally:
            for future in futures:
                future.cancel()
    return experiment_id, runs, probas


def train_grid(
    data: DataSlice,
    settings: Settings,
    experiment_name: str,
    *,
    grid: list[dict] | None = None,
    features: FeatureSet = FeatureSet(),  # noqa: B008 - frozen dataclass, safe as a default
    selection_metric: str = DEFAULT_METRIC,
    seed: int = DEFAULT_SEED,
    progress: bool = True,
    workers: int | None = None,
) -> TrainResult:
    """Train and log one MLflow run per grid entry; return all runs and the best by the metric.

    `workers` boosters train at once with `cores // workers` threads each (default: one
    single-threaded booster per core); the main thread logs finished runs in grid order.
    """
    from lib.tracking import quiet_mlflow

    start = time.perf_counter()
    grid = [dict(entry) for entry in (DEFAULT_GRID if grid is None else grid)]
    validate_grid(grid)
    if selection_metric not in RUN_METRIC_KEYS:
        raise TrainingError(
            f"unknown selection metric {selection_metric!r}; choose one of {', '.join(sorted(RUN_METRIC_KEYS))}"
        )
    prep = prepare_data(data, features, seed)
    with quiet_mlflow():
        workers = workers or default_workers(len(grid))
        experiment_id, runs, probas = _fit_and_log(
            prep, grid, settings, experiment_name, workers, selection_metric, progress
        )
        best = pick_best(runs, selection_metric)
        log_figures(best.run_id, prep.y_test, probas[best.run_id])
    seconds = time.perf_counter() - start
    log.info("%d runs in %.1fs; best %s %s=%.4f", len(runs), seconds, best.run_id, selection_metric,
             best.metrics[selection_metric])  # fmt: skip
    return TrainResult(
        experiment_id=experiment_id,
        experiment_name=experiment_name,
        runs=runs,
        best=best,
        selection_metric=selection_metric,
        seconds=seconds,
        data=data,
    )
