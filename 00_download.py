"""Step 0: fetch the UCI Bank Marketing data into data/ and validate it.

Downloads the UCI zip (plain or the newer nested layout), validates bank-full.csv (header,
17 columns, 45,211 rows, y in yes/no) and falls back to the vendored copy in data/vendor/ when
the network is unavailable or --offline is given.
"""

from __future__ import annotations

import argparse
import sys

from lib.cliargs import ArgumentParser, is_verbose
from lib.config import Settings, cli_settings
from lib.dataset import DatasetError, fetch
from lib.logs import setup_logging
from lib.session import run_main


def build_parser(settings: Settings | None = None) -> ArgumentParser:
    settings = settings or cli_settings()
    parser = ArgumentParser(
        prog="00_download.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=settings.download_url, help="zip to download (default: %(default)s)")
    parser.add_argument("--offline", action="store_true", help="skip the download, use the vendored copy")
    parser.add_argument("--force", action="store_true", help="fetch again even if a valid file is present")
    parser.add_argument("--retries", type=int, default=3, help="download attempts (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per attempt (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    settings = cli_settings()
    args = build_parser(settings).parse_args(argv)
    setup_logging(is_verbose(args))
    try:
        result = fetch(
            settings.data_dir, args.url, settings.vendor_zip,
            offline=args.offline, force=args.force, retries=args.retries, timeout=args.timeout,
        )  # fmt: skip
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if result.note:
        print(result.note)
    s = result.summary
    print(f"source    : {result.source}")
    print(f"file      : {s.path}")
    print(f"rows      : {s.rows:,} ({s.positives:,} subscribed, {s.positive_rate:.1%})")
    print(f"sha256    : {s.sha256}")
    print("next      : python 01_write_to_dl.py")
    return 0


if __name__ == "__main__":
    run_main(main)
