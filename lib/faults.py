"""Named crash points for the crash-safety tests (test-only).

`FAULT_POINT=<name>` makes a process SIGKILL itself when it reaches that point: a real crash with
no `finally`, no atexit and no flushing of anything but stdout/stderr, so a test can stop a script
exactly between two state changes instead of guessing with timers. Unset (the default) every
point is a no-op comparison.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lib.config import Settings

# Every point, in the order a batch -> retrain -> redeploy cycle reaches them.
FAULT_POINTS: tuple[str, ...] = (
    "append.before_commit",  # 05: batch validated and staged, Iceberg commit not yet made
    "append.after_commit",  # 05: Iceberg commit made, batch CSV and latest pointer not yet written
    "training.runs_logged",  # 06 (and 03): every run logged to MLflow, summary not yet printed
    "redeploy.challenger_set",  # 07: @challenger set, gate not yet run
    "promote.previous_set",  # 07/04: @previous moved to the old champion, @champion not yet moved
    "promote.champion_set",  # 07/04: @champion moved, server not yet reloaded
    "redeploy.server_reloaded",  # 07: server reloaded and verified, summary not yet printed
    "redeploy.undo",  # 07: server refused the new version; @champion restored, @previous not yet
)


def reached(settings: Settings, name: str) -> None:
    """Kill this process with SIGKILL if `settings.fault_point` names this point."""
    if name not in FAULT_POINTS:
        raise ValueError(f"unknown fault point {name!r}: add it to lib.faults.FAULT_POINTS")
    if settings.fault_point != name:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)
