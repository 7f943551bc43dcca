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

from lib.cli import add_training_args, training_main
from lib.cliargs import ArgumentParser
from lib.config import Settings, cli_settings
from lib.session import run_main


def build_parser(settings: Settings | None = None) -> ArgumentParser:
    settings = settings or cli_settings()
    parser = ArgumentParser(
        prog="06_retrain.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", choices=["full", "incremental"], default="full",
        help="whole table (default) or only the rows the latest batch appended",
    )  # fmt: skip
    add_training_args(parser, default_experiment=settings.retrain_experiment_name)
    return parser


def main(argv: list[str] | None = None) -> int:
    settings = cli_settings()
    next_step = "python 07_api_redeployment.py"
    return training_main(build_parser(settings), argv, settings, next_step=next_step)


if __name__ == "__main__":
    run_main(main)
