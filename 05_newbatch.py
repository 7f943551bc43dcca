"""Step 5: append a batch of new customers to the Iceberg table as one snapshot.

By default a batch is generated from the current table: rows are bootstrapped and their numbers
perturbed by about ±10% (kept valid: integers, ranges, known categories), labels come from the
source rows, and an optional --drift scenario shifts the batch for the monitoring demo.
--from-file appends an external UCI-format CSV instead. Either way the batch is validated against
the table schema and the feature definition first: a bad batch is rejected and nothing is
appended. The batch is also saved as CSV under data/batches/ (the latest one feeds 08's traffic).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lib.batches import (
    DRIFT_SCENARIOS,
    BatchError,
    append_batch,
    generate_batch,
    load_source,
    read_batch_csv,
    validate_batch,
)
from lib.cliargs import ArgumentParser, is_verbose
from lib.config import cli_settings
from lib.lake import LakeError, spark_session
from lib.logs import setup_logging
from lib.session import run_main


def build_parser() -> ArgumentParser:
    epilog = "drift scenarios:\n" + "\n".join(f"  {k:9} {s.description}" for k, s in DRIFT_SCENARIOS.items())
    parser = ArgumentParser(
        prog="05_newbatch.py", description=__doc__, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000, help="rows to generate (default: %(default)s)")
    parser.add_argument(
        "--seed", type=int, default=None,
        help="random seed (default: the current snapshot id, so the same table state gives the same batch)",
    )  # fmt: skip
    parser.add_argument("--drift", choices=list(DRIFT_SCENARIOS), default="none", help="shift the batch (see below)")
    parser.add_argument("--from-file", type=Path, metavar="CSV", help="append this ';'-separated UCI-format CSV")
    parser.add_argument(
        "--allow-new-categories", action="store_true",
        help="accept categories the feature definition does not know (failure drill only)",
    )  # fmt: skip
    parser.add_argument("--dry-run", action="store_true", help="generate/read and validate, append nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    settings = cli_settings()
    args = build_parser().parse_args(argv)
    setup_logging(is_verbose(args))
    try:
        if args.from_file is not None:
            batch, label = read_batch_csv(args.from_file), "file"
            print(f"batch     : {args.from_file} ({len(batch):,} rows)")
        else:
            source, snapshot_id = load_source(settings)
            seed = args.seed if args.seed is not None else snapshot_id % 2**32
            batch, label = generate_batch(source, args.rows, seed, args.drift), args.drift
            print(f"batch     : {len(batch):,} rows from snapshot {snapshot_id} (seed {seed}, drift {label})")
        validate_batch(batch, allow_new_categories=args.allow_new_categories)
        print("validation: ok" + (" (new categories allowed)" if args.allow_new_categories else ""))
        if args.dry_run:
            print("dry run   : nothing appended")
            return 0
        with spark_session(settings) as spark:
            result = append_batch(spark, settings, batch, label, allow_new_categories=args.allow_new_categories)
    except (BatchError, LakeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"table     : {settings.table_ident}")
    print(f"rows      : {result.rows_before:,} -> {result.rows_after:,} (+{result.rows:,})")
    print(f"snapshot  : {result.snapshot_id} (parent {result.parent_id})")
    print(f"saved     : {result.csv_path}")
    print("next      : python 06_retrain.py (or python -m lib.jobs run 'Retrain Models')")
    return 0


if __name__ == "__main__":
    run_main(main)
