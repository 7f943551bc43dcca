"""Argument parsing with the project's exit-code contract, for every script and `python -m lib.…` CLI.

argparse exits 2 on a usage error, but 2 means "an alert fired" for `python -m lib.monitoring check`
and the job runner counts it as success there. Usage errors therefore exit 64 (`EX_USAGE`, sysexits.h)
everywhere, so a mistyped scheduled command is recorded as failed.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

EX_OK = 0
EX_FAILURE = 1  # the command ran and failed: one `error:` line on stderr
EX_ALERT = 2  # `python -m lib.monitoring check` only: the check ran and an alert fired
EX_USAGE = 64  # bad flags or arguments


class ArgumentParser(argparse.ArgumentParser):
    """argparse with usage errors on exit code 64 instead of 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EX_USAGE, f"error: {message}\n")
