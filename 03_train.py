"""Step 3: train a grid of XGBoost models on the Iceberg table, tracked in MLflow.

Reads the table through Spark at its current snapshot (or --snapshot-id), splits it 70/30
(stratified, fixed seed), trains one run per grid entry with early stopping on a validation
slice of the training part and logs each to MLflow: params, train/test metrics, lineage tags
(table, Iceberg snapshot, git commit), the dataset, the servable model, feature importance and
the training profile. Prints a leaderboard; the best run also carries ROC/PR/confusion figures.
"""

from __future__ import annotations

import argparse
import logging
import sys

from lib.config import load_settings
from lib.features import FeatureSet
from lib.lake import LakeError, spark_session
from lib.training import (
    DEFAULT_GRID,
    METRIC_NAMES,
    TrainingError,
    format_leaderboard,
    load_grid,
    load_training_data,
    train_grid,
)

METRICS = [f"{part}_{m}" for part in ("test", "train") for m in METRIC_NAMES] + ["val_roc_auc"]


def main(argv: list[str] | None = None) -> int:
    settings = load_settings()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--experiment",
        help=f"MLflow experiment (default: {settings.experiment_name}; with --include-duration "
        f"{settings.experiment_name}-duration, so the leaky benchmark never becomes the deployed best run)",
    )
    parser.add_argument(
        "--grid", help="grid as a JSON list of param objects, or a JSON file (default: 12-run grid)"
    )
    parser.add_argument("--max-runs", type=int, help="train only the first N grid entries")
    parser.add_argument(
        "--metric", default="test_roc_auc", choices=METRICS, help="selection metric (default: %(default)s)"
    )
    parser.add_argument(
        "--include-duration", action="store_true", help="use the leaky `duration` column (benchmark only)"
    )
    parser.add_argument(
        "--snapshot-id", type=int, help="train on this Iceberg snapshot instead of the current one"
    )
    parser.add_argument("--seed", type=int, default=42, help="split and booster seed (default: %(default)s)")
    parser.add_argument("--workers", type=int, help="boosters trained at once (default: one per core)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    if args.max_runs is not None and args.max_runs < 1:
        parser.error("--max-runs must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    features = FeatureSet(include_duration=args.include_duration)
    experiment = args.experiment or settings.experiment_name + ("-duration" if args.include_duration else "")
    try:
        grid = load_grid(args.grid) if args.grid else DEFAULT_GRID
        grid = grid[: args.max_runs] if args.max_runs else grid
        with spark_session(settings) as spark:
            data = load_training_data(spark, settings, mode="full", snapshot_id=args.snapshot_id)
        result = train_grid(
            data,
            settings,
            experiment,
            grid=grid,
            features=features,
            selection_metric=args.metric,
            seed=args.seed,
            progress=not args.no_progress,
            workers=args.workers,
        )
    except (LakeError, TrainingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    best = result.best
    print(format_leaderboard(result))
    print(f"table      : {data.table} @ snapshot {data.snapshot_id} ({len(data.df):,} rows, {data.mode})")
    print(f"experiment : {result.experiment_name} (id {result.experiment_id}), {len(result.runs)} runs")
    print(f"features   : {', '.join(features.columns)}")
    print(f"best run   : {best.run_id}  {args.metric}={best.metrics[args.metric]:.4f}")
    print(f"seconds    : {result.seconds:.1f} (training + MLflow logging)")
    print(f"tracking   : {settings.mlflow_tracking_uri}")
    print("next       : python 04_api_deployment.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
