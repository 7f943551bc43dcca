"""One logging setup for every script and CLI: each line a participant reads means something.

Our own loggers (`lib.*`, the script's `__main__`) speak at INFO. Third-party libraries only warn:
no alembic lines on each MLflow store connect, no httpx line per request, no py4j "Closing down
clientserver connection", no pyiceberg "Defaulting to PyArrow FileIO", no MLflow registry chatter
(our summaries say the same), and Spark's JVM logs errors only (see `spark_java_options`).
`--verbose` (every CLI has it, see `lib.cliargs`) brings all of it back.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOG4J2_PROPERTIES = Path(__file__).with_name("log4j2.properties")

# Loggers whose INFO lines mean nothing to a participant. A filter rather than a level where the
# library resets levels itself (MLflow re-applies alembic's logging config on every store it opens).
_CHATTY_LEVELS = ("httpx", "httpcore", "py4j", "pyiceberg", "urllib3", "matplotlib", "filelock")
_CHATTY_FILTERED = ("alembic.runtime.migration", "alembic.runtime.plugins")

_state = {"verbose": False}


class _WarningsOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


_WARNINGS_ONLY = _WarningsOnly()


def setup_logging(
    verbose: bool = False, fmt: str = "%(message)s", datefmt: str | None = None, level: int = logging.INFO
) -> None:
    """Configure logging once per process, before MLflow or Spark are first used.

    Our loggers get their own handler and do not propagate: MLflow's alembic migrations call
    `logging.config.fileConfig`, which replaces the root logger's handlers and format mid-run.
    `level` is the script's own verbosity (some scripts print only their summary).
    """
    _state["verbose"] = verbose
    logging.basicConfig()
    logging.getLogger().setLevel(logging.DEBUG if verbose else logging.WARNING)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(fmt, datefmt))
    for name in ("lib", "__main__"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(logging.DEBUG if verbose else level)
    if verbose:
        logging.getLogger("mlflow").setLevel(logging.INFO)
        for name in _CHATTY_LEVELS:
            logging.getLogger(name).setLevel(logging.NOTSET)
        for name in _CHATTY_FILTERED:
            logging.getLogger(name).removeFilter(_WARNINGS_ONLY)
    else:
        quiet_third_party()


def quiet_third_party() -> None:
    """Third-party loggers warn only; MLflow reads its level from the environment when imported."""
    # MLflow configures its own logger at import (level from MLFLOW_LOGGING_LEVEL, default INFO),
    # so the variable covers a later import and the level covers an earlier one.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    for name in _CHATTY_LEVELS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in _CHATTY_FILTERED:
        logger = logging.getLogger(name)
        if _WARNINGS_ONLY not in logger.filters:
            logger.addFilter(_WARNINGS_ONLY)


@contextmanager
def third_party_quiet() -> Iterator[None]:
    """`quiet_third_party` for one block, for library code that no CLI set up (a notebook, the app).

    Everything it changes (MLFLOW_LOGGING_LEVEL, the chatty loggers' levels and filters) is put back
    on exit, so calling into `lib` never changes the caller's logging or environment for good.
    """
    names = ("mlflow", *_CHATTY_LEVELS)
    levels = {name: logging.getLogger(name).level for name in names}
    filtered = {name: _WARNINGS_ONLY in logging.getLogger(name).filters for name in _CHATTY_FILTERED}
    env = os.environ.get("MLFLOW_LOGGING_LEVEL")
    quiet_third_party()
    try:
        yield
    finally:
        if env is None:
            os.environ.pop("MLFLOW_LOGGING_LEVEL", None)
        else:
            os.environ["MLFLOW_LOGGING_LEVEL"] = env
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        for name, had in filtered.items():
            if not had:
                logging.getLogger(name).removeFilter(_WARNINGS_ONLY)


def verbose() -> bool:
    """Whether the running CLI was asked for `--verbose` (Spark's JVM logging follows it)."""
    return _state["verbose"]


def spark_java_options() -> str:
    """JVM options that keep Spark's console to errors, unless verbose.

    The loopback-hostname and native-hadoop warnings and the "Setting default log level" banner are
    noise on a laptop.
    """
    if verbose():
        return ""
    return f"-Dlog4j2.configurationFile={LOG4J2_PROPERTIES.as_uri()}"
