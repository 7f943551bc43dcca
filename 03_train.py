"""Step 3: train a grid of XGBoost models on the Iceberg table, tracked in MLflow.

Reads the table at its current snapshot (or --snapshot-id), with pyiceberg for a small table (no
JVM) or Spark (LAKE_PYICEBERG_MAX_ROWS), splits it 70/30 (stratified, fixed seed), trains one run
per grid entry with early stopping on a validation slice of the training part and logs each to
MLflow: params, train/test metrics, lineage tags (table, Iceberg snapshot, reading engine, git
commit), the dataset, the servable model, feature importance and the training profile. Prints a
leaderboard; the best run also carries ROC/PR/confusion figures.
"""

from __future__ import annotations

import argparse

from lib.cli import add_training_args, training_main
from lib.cliargs import ArgumentParser
from lib.config import Settings, cli_settings
from lib.session import run_main


def build_parser(settings: Settings | None = None) -> ArgumentParser:
    settings = settings or cli_settings()
    parser = ArgumentParser(
        prog="03_train.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_training_args(parser, default_experiment=settings.experiment_name)
    return parser


def main(argv: list[str] | None = None) -> int:
    settings = cli_settings()
    return training_main(build_parser(settings), argv, settings, next_step="python 04_api_deployment.py")


if __name__ == "__main__":
    run_main(main)
