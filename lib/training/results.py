"""Training results: what a grid returns, picking the best run, reading it back, the leaderboard.

Light (MLflow is imported when `best_run` is called), so the registry can look up the best run
without loading the fitting code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lib.config import Settings
from lib.metrics import DEFAULT_METRIC, higher_is_better
from lib.training.data import DataSlice
from lib.training.errors import TrainingError

LEADERBOARD_METRICS = ("test_roc_auc", "test_pr_auc", "test_f1", "test_accuracy")


@dataclass(frozen=True)
class RunResult:
    """One logged run: its id, params (as MLflow stores them, strings) and metrics."""

    run_id: str
    params: dict
    metrics: dict


@dataclass(frozen=True)
class TrainResult:
    """Every run of one grid, the best by `selection_metric`, and the data it trained on."""

    experiment_id: str
    experiment_name: str
    runs: list[RunResult]
    best: RunResult
    selection_metric: str
    seconds: float
    data: DataSlice


def _rank(run: RunResult, metric: str) -> float:
    """Sort key, larger is better; NaN (undefined metric) ranks last."""
    value = run.metrics[metric]
    return -math.inf if math.isnan(value) else (value if higher_is_better(metric) else -value)


def pick_best(runs: list[RunResult], metric: str) -> RunResult:
    """The first run with the best value of `metric` (NaN never wins)."""
    return max(runs, key=lambda r: _rank(r, metric))


def best_run(
    settings: Settings, experiment_name: str, selection_metric: str = DEFAULT_METRIC, *, latest_grid: bool = False
) -> RunResult:
    """The finished run of an experiment with the best `selection_metric` (max, min for losses).

    latest_grid: only among the runs of the newest grid (one 03/06 invocation), so deploying picks
    the result of the last training, not an older run scored on another snapshot's test split.
    """
    from lib.tracking import configure_mlflow

    client = configure_mlflow(settings)
    experiment = client.get_experiment_by_name(experiment_name)
    missing = TrainingError(f"no runs in experiment {experiment_name}: run 03_train.py first")
    if experiment is None:
        raise missing
    finished = f"attributes.status = 'FINISHED' and metrics.{selection_metric} > -1e300"
    if latest_grid:
        newest = client.search_runs(
            [experiment.experiment_id], filter_string=finished, order_by=["attributes.start_time DESC"], max_results=1
        )
        grid_id = newest[0].data.tags.get("grid_id") if newest else None
        if grid_id:
            finished += f" and tags.grid_id = '{grid_id}'"
    order = "DESC" if higher_is_better(selection_metric) else "ASC"
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=finished,
        order_by=[f"metrics.{selection_metric} {order}", "attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        raise missing
    run = runs[0]
    return RunResult(run_id=run.info.run_id, params=dict(run.data.params), metrics=dict(run.data.metrics))


def format_leaderboard(result: TrainResult) -> str:
    """A plain-text table of the runs, best first by the selection metric (best marked *).

    The params shown are the ones that vary across the runs (the grid's axes).
    """
    keys = sorted({k for r in result.runs for k in r.params if len({x.params.get(k) for x in result.runs}) > 1})
    keys = keys or [k for k in ("max_depth", "learning_rate", "alpha") if k in result.best.params]
    metric = result.selection_metric
    ordered = sorted(result.runs, key=lambda r: _rank(r, metric), reverse=True)
    cols = list(LEADERBOARD_METRICS)
    if metric not in cols:
        cols.insert(0, metric)
    header = f"  {'run_id':32}  " + "  ".join(f"{k:>13}" for k in keys) + "  " + "  ".join(f"{c:>13}" for c in cols)
    lines = [header]
    for r in ordered:
        mark = "*" if r.run_id == result.best.run_id else " "
        values = "  ".join(f"{r.params.get(k, ''):>13}" for k in keys)
        scores = "  ".join(f"{r.metrics[c]:>13.4f}" for c in cols)
        lines.append(f"{mark} {r.run_id:32}  {values}  {scores}")
    return "\n".join(lines)
