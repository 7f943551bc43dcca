"""Quiet output: third-party INFO lines hidden unless --verbose, our own lines kept."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from lib import logs
from lib.cliargs import ArgumentParser, is_verbose


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    names = ("lib", "__main__", "httpx", "py4j", "mlflow", "alembic.runtime.migration")
    saved = {n: (logging.getLogger(n).level, list(logging.getLogger(n).handlers), logging.getLogger(n).propagate,
                 list(logging.getLogger(n).filters)) for n in names}  # fmt: skip
    yield
    for name, (level, handlers, propagate, filters) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers, logger.propagate, logger.filters = handlers, propagate, filters
    logs._state["verbose"] = False


def _shown(name: str, level: int) -> bool:
    logger = logging.getLogger(name)
    record = logger.makeRecord(name, level, __file__, 0, "x", None, None)
    return logger.isEnabledFor(level) and all(f.filter(record) for f in logger.filters)


def test_quiet_by_default_keeps_our_info_and_third_party_warnings():
    logs.setup_logging(verbose=False)
    assert _shown("lib.training", logging.INFO)
    assert not _shown("httpx", logging.INFO)
    assert not _shown("py4j.clientserver", logging.INFO)
    assert not _shown("alembic.runtime.migration", logging.INFO)
    assert _shown("alembic.runtime.migration", logging.WARNING)
    assert _shown("httpx", logging.WARNING)
    assert logs.spark_java_options().startswith("-Dlog4j2.configurationFile=file:")
    assert logs.LOG4J2_PROPERTIES.is_file()


def test_verbose_brings_third_party_lines_back():
    logs.setup_logging(verbose=True)
    assert _shown("httpx", logging.INFO)
    assert _shown("lib.training", logging.DEBUG)
    assert logs.spark_java_options() == ""


def test_script_level_hides_our_progress_lines_too():
    logs.setup_logging(verbose=False, level=logging.WARNING)
    assert not _shown("lib.training", logging.INFO)
    assert _shown("lib.training", logging.WARNING)


def test_every_parser_takes_verbose_before_or_after_a_subcommand():
    parser = ArgumentParser(prog="x")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status")
    assert is_verbose(parser.parse_args(["-v", "status"]))
    assert is_verbose(parser.parse_args(["status", "--verbose"]))
    assert not is_verbose(parser.parse_args(["status"]))


def test_third_party_quiet_is_scoped(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("MLFLOW_LOGGING_LEVEL", raising=False)
    logging.getLogger("httpx").setLevel(logging.DEBUG)
    logging.getLogger("alembic.runtime.migration").filters = []
    with logs.third_party_quiet():
        assert not _shown("httpx", logging.INFO)
        assert not _shown("alembic.runtime.migration", logging.INFO)
        assert logs.os.environ["MLFLOW_LOGGING_LEVEL"] == "WARNING"
    assert "MLFLOW_LOGGING_LEVEL" not in logs.os.environ
    assert logging.getLogger("httpx").level == logging.DEBUG
    assert logging.getLogger("alembic.runtime.migration").filters == []


def test_third_party_quiet_keeps_a_value_the_caller_set(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MLFLOW_LOGGING_LEVEL", "DEBUG")
    with logs.third_party_quiet():
        assert logs.os.environ["MLFLOW_LOGGING_LEVEL"] == "DEBUG"  # setdefault: the caller's choice wins
    assert logs.os.environ["MLFLOW_LOGGING_LEVEL"] == "DEBUG"
