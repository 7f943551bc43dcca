"""The unit tier's one rule, enforced: a unit test spawns no process and opens no database.

Every way this project starts a process (subprocess, multiprocessing, a Spark JVM) or opens a
database (SQLite directly, or through SQLAlchemy as MLflow and the metrics store do) is made to
fail loudly here, so a test that needs one cannot sit in `tests/unit` unnoticed. Temp files and
in-memory pandas are fine.
"""

from __future__ import annotations

import multiprocessing.process
import os
import platform
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from typing import NoReturn

import pytest

# Two libraries start a helper process once, at import time, to describe the machine: MLflow
# (`platform.processor()` runs `uname -p`) and croniter (`platform.architecture()` runs `file`).
# Doing both here, before any test, keeps that one-off out of the tests; it is not test behaviour.
platform.uname().processor  # noqa: B018  (cached by the stdlib after the first call)
import croniter  # noqa: E402, F401

# Modules that bind `create_engine` by name at import: imported here, before any test patches it,
# so a unit test importing them first cannot leave the refusing stand-in bound for the
# integration tests that run later in the same pytest process.
import lib.metrics_store  # noqa: E402, F401

MESSAGE = "unit tests spawn no process and open no database: move this test to tests/integration"


def _forbidden(what: str) -> Callable[..., NoReturn]:
    def refuse(*args: object, **kwargs: object) -> NoReturn:
        pytest.fail(f"{what} called: {MESSAGE}", pytrace=True)

    return refuse


@pytest.fixture(autouse=True)
def _no_process_no_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """Patch the entry points at their source, so `from x import y` done earlier cannot bypass them."""
    monkeypatch.setattr(subprocess.Popen, "_execute_child", _forbidden("subprocess.Popen"))
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", _forbidden("multiprocessing Process.start"))
    monkeypatch.setattr(os, "fork", _forbidden("os.fork"))
    monkeypatch.setattr(os, "system", _forbidden("os.system"))
    monkeypatch.setattr(sqlite3, "connect", _forbidden("sqlite3.connect"))

    import sqlalchemy
    import sqlalchemy.engine
    import sqlalchemy.engine.create
    import sqlalchemy.pool

    for module in (sqlalchemy, sqlalchemy.engine, sqlalchemy.engine.create):
        monkeypatch.setattr(module, "create_engine", _forbidden("sqlalchemy.create_engine"))
    # An engine created before the test (at import time) still cannot hand out a connection.
    monkeypatch.setattr(sqlalchemy.pool.Pool, "connect", _forbidden("sqlalchemy Pool.connect"))
    # A first Spark session launches its JVM through Popen (refused above); a session an
    # integration test left running in the same pytest run would be reused without one.
    if "pyspark" in sys.modules:
        from pyspark.sql import SparkSession

        monkeypatch.setattr(SparkSession.Builder, "getOrCreate", _forbidden("SparkSession.getOrCreate"))


@pytest.fixture(scope="session")
def spark() -> NoReturn:
    """Overrides the shared session-scoped `spark` (which would start a JVM before any
    function-scoped guard runs): a unit test asking for Spark fails here."""
    pytest.fail(f"the `spark` fixture starts a JVM: {MESSAGE}")
