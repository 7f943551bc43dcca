"""Argument parsing with the project's exit-code contract, for every script and `python -m lib.…` CLI.

argparse exits 2 on a usage error, but 2 means "an alert fired" for `python -m lib.monitoring check`
and the job runner counts it as success there. Usage errors therefore exit 64 (`EX_USAGE`, sysexits.h)
everywhere, so a mistyped scheduled command is recorded as failed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

EX_OK = 0
EX_FAILURE = 1  # the command ran and failed: one `error:` line on stderr
EX_ALERT = 2  # `python -m lib.monitoring check` only: the check ran and an alert fired
EX_USAGE = 64  # bad flags or arguments


class ArgumentParser(argparse.ArgumentParser):
    """argparse with usage errors on exit code 64 instead of 2, and `-v/--verbose` on every CLI.

    `--verbose` turns third-party logging (Spark, MLflow, alembic, httpx) back on; see `lib.logs`.
    Subcommand parsers accept it too, without their default hiding a flag given before them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help="also show third-party logging (Spark, MLflow, alembic, httpx)",
        )

    def error(self, message: str) -> NoReturn:
        """Exit 64 (EX_USAGE) after the usage, not argparse's 2: the monitoring check's 2 = "an alert fired"."""
        self.print_usage(sys.stderr)
        self.exit(EX_USAGE, f"error: {message}\n")


def is_verbose(args: argparse.Namespace) -> bool:
    """Whether `-v/--verbose` was given anywhere on the command line."""
    return bool(getattr(args, "verbose", False))
