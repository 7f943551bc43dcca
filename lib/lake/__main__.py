"""The lake from the command line: `python -m lib.lake snapshots | rollback --to ID`.

`snapshots` reads the Iceberg metadata with pyiceberg (no JVM, well under 2 s) for the catalogs
pyiceberg reads here (hadoop, rest, and jdbc through its SQL catalog on the same database); for
hive it uses Spark. Only `rollback`, which writes, always starts Spark.
"""

from __future__ import annotations

import sys

from lib.cliargs import ArgumentParser, is_verbose
from lib.config import cli_settings
from lib.lake.reader import PYICEBERG_CATALOGS, read_snapshots
from lib.lake.spark import spark_session
from lib.lake.tables import list_snapshots, rollback
from lib.lake.types import LakeError, format_snapshots
from lib.logs import setup_logging


def build_parser() -> ArgumentParser:
    """`snapshots` and `rollback --to ID`; usage errors exit 64."""
    parser = ArgumentParser(prog="python -m lib.lake", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "snapshots",
        help="list the table's snapshots (current one marked); no JVM for the hadoop, rest and "
        "jdbc catalogs (pyiceberg), Spark for hive",
    )
    rb = sub.add_parser("rollback", help="point the table back at an earlier snapshot (starts Spark)")
    rb.add_argument("--to", type=int, required=True, metavar="SNAPSHOT_ID")
    return parser


def main(argv: list[str] | None = None) -> int:
    """List the table's snapshots or roll it back; returns the exit code."""
    args = build_parser().parse_args(argv)
    setup_logging(is_verbose(args))
    settings = cli_settings()
    try:
        if args.command == "snapshots" and settings.catalog_type in PYICEBERG_CATALOGS:
            snapshots = read_snapshots(settings)
            print(f"table {settings.table_ident}")
            print(format_snapshots(snapshots))
            return 0
        with spark_session(settings) as spark:
            if args.command == "snapshots":
                print(f"table {settings.table_ident}")
                print(format_snapshots(list_snapshots(spark, settings)))
            else:
                rollback(spark, settings, args.to)
                print(f"rolled {settings.table_ident} back to snapshot {args.to}")
                print(format_snapshots(list_snapshots(spark, settings)))
    except LakeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
