"""lib.session.run_main: the exit code in a terminal, one line under %run, no logging left behind."""

from __future__ import annotations

import logging

import pytest

from lib import session
from lib.logs import setup_logging
from lib.session import ScriptFailed, run_main


def test_outside_ipython_the_exit_code_is_mains() -> None:
    with pytest.raises(SystemExit) as exc:
        run_main(lambda: 3)
    assert exc.value.code == 3
    with pytest.raises(SystemExit) as exc:
        run_main(lambda: None)
    assert exc.value.code == 0


def test_a_string_exit_is_printed_and_becomes_status_1(capsys: pytest.CaptureFixture[str]) -> None:
    def main() -> int:
        raise SystemExit("error: PROJECT_ROOT is not a directory; create it")

    with pytest.raises(SystemExit) as exc:
        run_main(main)
    assert exc.value.code == 1
    assert capsys.readouterr().err == "error: PROJECT_ROOT is not a directory; create it\n"


def test_under_percent_run_a_failure_is_one_line_and_logging_is_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "_in_ipython", lambda: True)
    root, ours = logging.getLogger(), logging.getLogger("lib")
    before = [(lg.level, lg.handlers[:], lg.propagate) for lg in (root, ours)]

    def main() -> int:
        setup_logging()  # what every script does first
        root.addHandler(logging.NullHandler())  # and a stray basicConfig
        return 1

    with pytest.raises(ScriptFailed) as exc:
        run_main(main, "01_write_to_dl.py")
    assert exc.value._render_traceback_() == ["01_write_to_dl.py exited with status 1"]
    assert exc.value.code == 1
    assert [(lg.level, lg.handlers, lg.propagate) for lg in (root, ours)] == before
    assert run_main(lambda: 0) is None  # success returns quietly: no SystemExit in the cell
