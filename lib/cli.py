"""Command-line options and the summary shared by the training scripts (03_train.py, 06_retrain.py).

Both scripts train with `lib.training.train_grid`; this module gives them the same options (grid,
run count, selection metric, features, snapshot, seed, parallelism) and the same closing summary,
so a flag added here works in both.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from typing import Any

from lib import faults
from lib.batches import BatchError, validate_training_data
from lib.cliargs import is_verbose
from lib.config import DEFAULT_SEED, Settings
from lib.features import FeatureSet
from lib.lake import LakeError
from lib.logs import setup_logging
from lib.metrics import DEFAULT_METRIC, RUN_METRIC_KEYS
from lib.training.data import load_training_data
from lib.training.errors import TrainingError
from lib.training.grid import DEFAULT_GRID, first_runs, load_grid
from lib.training.results import TrainResult, format_leaderboard
from lib.training.train import train_grid


@dataclass(frozen=True)
class TrainingOptions:
    """The parsed training options, ready for `train_grid` and `load_training_data`."""

    experiment: str
    grid: list[dict[str, Any]]
    features: FeatureSet
    selection_metric: str
    seed: int
    workers: int | None
    progress: bool
    snapshot_id: int | None


def add_training_args(parser: argparse.ArgumentParser, default_experiment: str) -> None:
    """Add the grid/metric/feature/snapshot options every training script understands."""
    parser.add_argument(
        "--experiment",
        help=f"MLflow experiment (default: {default_experiment}; with --include-duration "
        f"{default_experiment}-duration, so the leaky benchmark never becomes the deployed best run)",
    )
    parser.set_defaults(default_experiment=default_experiment)
    parser.add_argument(
        "--grid", help=f"grid as a JSON list of param objects, or a JSON file (default: {len(DEFAULT_GRID)}-run grid)"
    )
    parser.add_argument("--max-runs", type=int, metavar="N", help="train only the first N grid entries")
    parser.add_argument(
        "--metric", default=DEFAULT_METRIC, choices=RUN_METRIC_KEYS, help="selection metric (default: %(default)s)"
    )
    parser.add_argument(
        "--include-duration", action="store_true", help="use the leaky `duration` column (benchmark only)"
    )
    parser.add_argument(
        "--snapshot", "--snapshot-id", dest="snapshot_id", type=int, metavar="ID",
        help="train on exactly this Iceberg snapshot, not the current one (python -m lib.lake snapshots)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="split and booster seed (default: %(default)s)")
    parser.add_argument("--workers", type=int, help="boosters trained at once (default: one per core)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def training_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> TrainingOptions:
    """Check and resolve the parsed options (a bad grid raises TrainingError naming the problem)."""
    if args.max_runs is not None and args.max_runs < 1:
        parser.error("--max-runs must be at least 1")
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    grid = first_runs(load_grid(args.grid) if args.grid else DEFAULT_GRID, args.max_runs)
    return TrainingOptions(
        experiment=args.experiment or args.default_experiment + ("-duration" if args.include_duration else ""),
        grid=grid,
        features=FeatureSet(include_duration=args.include_duration),
        selection_metric=args.metric,
        seed=args.seed,
        workers=args.workers,
        progress=not args.no_progress,
        snapshot_id=args.snapshot_id,
    )


def train_from_table(settings: Settings, options: TrainingOptions, mode: str = "full") -> TrainResult:
    """Read the table, refuse data that breaks the feature definition, then train and log the grid.

    A small table is read with pyiceberg (no JVM); otherwise Spark reads it and is stopped
    before training so its JVM frees the cores (`load_training_data` with no session).
    """
    data = load_training_data(None, settings, mode=mode, snapshot_id=options.snapshot_id)
    validate_training_data(data.df, f"{data.table} @ snapshot {data.snapshot_id} ({data.mode})")
    return train_grid(
        data,
        settings,
        options.experiment,
        grid=options.grid,
        features=options.features,
        selection_metric=options.selection_metric,
        seed=options.seed,
        progress=options.progress,
        workers=options.workers,
    )


def training_summary(result: TrainResult, options: TrainingOptions, settings: Settings) -> str:
    """Leaderboard plus what was trained on, where it was logged and which run won."""
    data, best, metric = result.data, result.best, result.selection_metric
    parent = "" if data.parent_id is None else f", parent {data.parent_id}"
    rows = f"{len(data.df):,} rows, {data.mode}"
    return "\n".join(
        [
            format_leaderboard(result),
            f"table      : {data.table} @ snapshot {data.snapshot_id}{parent} ({rows})",
            f"experiment : {result.experiment_name} (id {result.experiment_id}), {len(result.runs)} runs",
            f"features   : {', '.join(options.features.columns)}",
            f"best run   : {best.run_id}  {metric}={best.metrics[metric]:.4f}",
            f"seconds    : {result.seconds:.1f} (training + MLflow logging)",
            f"tracking   : {settings.mlflow_tracking_uri}",
        ]
    )


def training_main(parser: argparse.ArgumentParser, argv: list[str] | None, settings: Settings, next_step: str) -> int:
    """Run the whole of a training script after its parser: parse, train, summarise.

    The parser is built with `add_training_args`. A `--data` option the script added picks full or
    incremental data; every failure is one `error:` line.
    """
    args = parser.parse_args(argv)
    setup_logging(is_verbose(args), level=logging.WARNING)
    try:
        options = training_options(parser, args)
        result = train_from_table(settings, options, mode=getattr(args, "data", "full"))
    except (LakeError, TrainingError, BatchError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    faults.reached(settings, "training.runs_logged")
    print(training_summary(result, options, settings))
    print(f"next       : {next_step}")
    return 0
