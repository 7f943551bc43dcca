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

from lib.cli import training_main
from lib.config import cli_settings
from lib.session import run_main


def main(argv: list[str] | None = None) -> int:
    settings = cli_settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data", choices=["full", "incremental"], default="full",
        help="whole table (default) or only the rows the latest batch appended",
    )  # fmt: skip
    next_step = "python 07_api_redeployment.py"
    return training_main(parser, argv, settings, settings.retrain_experiment_name, next_step=next_step)


if __name__ == "__main__":
    run_main(main)
