"""Step 6: retrain the model grid on the newest data, with the same code as 03_train.py.

--data full (default) trains on the whole table at its current snapshot; --data incremental
only on the rows the latest batch appended (the current snapshot minus its parent); --snapshot ID
trains on exactly that snapshot (with incremental: on the rows that snapshot appended), e.g. to
reproduce the champion after a rollback. The data is checked against the feature definition
first (a batch forced in with --allow-new-categories stops here). Runs go to the retrain
experiment, each tagged with iceberg_snapshot_id, iceberg_parent_id, iceberg_committed_at and the
row counts, so the redeploy step (07) can compare the best of them with the serving champion.
"""

from __future__ import annotations

import argparse
import logging
import sys

from lib.batches import BatchError, validate_training_data
from lib.cli import add_training_args, training_options, training_summary
from lib.config import load_settings
from lib.lake import LakeError, spark_session
from lib.training import TrainingError, load_training_data, train_grid


def main(argv: list[str] | None = None) -> int:
    settings = load_settings()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", choices=["full", "incremental"], default="full",
        help="whole table (default) or only the rows the latest batch appended",
    )  # fmt: skip
    add_training_args(parser, default_experiment=settings.retrain_experiment_name)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        options = training_options(parser, args)
        with spark_session(settings) as spark:
            data = load_training_data(spark, settings, mode=args.data, snapshot_id=options.snapshot_id)
        validate_training_data(data.df, f"{data.table} @ snapshot {data.snapshot_id} ({data.mode})")
        result = train_grid(
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
    except (LakeError, TrainingError, BatchError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(training_summary(result, options, settings))
    print("next       : python 07_api_redeployment.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
