"""The numbered scripts' exit, the same in a terminal and in a JupyterLab cell.

In a terminal (and from a cell as `!python 03_train.py`) a script ends with `sys.exit(code)`.
In a cell as `%run 03_train.py` IPython catches that SystemExit and, for a failure, adds
"An exception has occurred, use %tb to see the full traceback." and `SystemExit: 1` under the
script's own `error:` line, which sends participants looking for a traceback that does not exist.
`run_main` keeps the exit code for the shell and, inside IPython, ends a failed script with one
short `exit status N` line instead.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable


class ScriptFailed(Exception):
    """A script run with `%run` failed; its `error:` line is already on stderr."""

    def __init__(self, script: str, code: int) -> None:
        super().__init__(f"{script} exited with status {code}")
        self.code = code

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback: the error itself was printed by the script
        return [str(self)]


def _in_ipython() -> bool:
    """True inside an IPython shell or Jupyter kernel (`%run`); False for `python script.py`."""
    ipython = sys.modules.get("IPython")
    return ipython is not None and ipython.get_ipython() is not None


# the loggers a script's logging setup configures: the root, our own, the script's
_SCRIPT_LOGGERS = ("", "lib", "__main__")


def _logger_state(logger: logging.Logger) -> tuple[logging.Logger, int, list[logging.Handler], bool]:
    return logger, logger.level, logger.handlers[:], logger.propagate


def _restore_logger(logger: logging.Logger, level: int, handlers: list[logging.Handler], propagate: bool) -> None:
    for handler in logger.handlers[:]:
        if handler not in handlers:
            logger.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in logger.handlers:
            logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = propagate


def run_main(main: Callable[[], int | None], script: str | None = None) -> None:
    """Run a script's `main()` and exit with its code (usage errors included).

    Outside IPython this is `sys.exit(main())`. Under `%run` a success returns quietly and a failure
    raises `ScriptFailed`, which IPython renders as one line (no traceback, no `%tb` hint). The
    script's logging setup (`lib.logs.setup_logging`) is undone afterwards: under `%run` it would
    configure the kernel's loggers for good, so later cells print with the script's format and level.
    """
    saved = [_logger_state(logging.getLogger(name)) for name in _SCRIPT_LOGGERS]
    try:
        code = main()
    except SystemExit as exc:  # argparse's usage errors and cli_settings' `error:` exits
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            code = 1
        else:
            code = exc.code
    finally:
        if _in_ipython():
            for state in saved:
                _restore_logger(*state)
    code = code or 0
    if not _in_ipython():
        sys.exit(code)
    if code:
        raise ScriptFailed(script or sys.argv[0].rsplit("/", 1)[-1], code)
    return None
