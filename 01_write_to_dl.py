"""Step 1: load data/bank-full.csv into the Apache Iceberg table on the local Spark session.

Reads the CSV with an explicit schema, creates the namespace if needed and writes the table with
create-or-replace semantics: a rerun replaces the data in one new snapshot.
"""

from __future__ import annotations

import argparse
import sys

from lib.cliargs import ArgumentParser, is_verbose
from lib.config import Settings, cli_settings
from lib.ingest import IngestError, check_csv, ingest_csv
from lib.lake import LakeError, spark_session
from lib.logs import setup_logging
from lib.session import run_main


def build_parser(settings: Settings | None = None) -> ArgumentParser:
    settings = settings or cli_settings()
    parser = ArgumentParser(
        prog="01_write_to_dl.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--csv", type=str, default=str(settings.csv_path), help="input CSV (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    settings = cli_settings()
    args = build_parser(settings).parse_args(argv)
    setup_logging(is_verbose(args))
    try:
        check_csv(args.csv)
        with spark_session(settings) as spark:
            result = ingest_csv(spark, settings, args.csv)
            print(f"table     : {settings.table_ident}")
            print("schema    :")
            result.table.printSchema()
            print(f"rows      : {result.rows:,}")
            print(f"snapshot  : {result.snapshot_id}")
            result.table.show(5, truncate=False)
    except (IngestError, LakeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("next      : open 02_EDA.ipynb, then python 03_train.py")
    return 0


if __name__ == "__main__":
    run_main(main)
