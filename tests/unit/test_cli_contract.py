"""Every command-line entry point follows the exit-code contract: usage errors exit 64 (EX_USAGE),
never argparse's 2, which `python -m lib.monitoring check` uses for "an alert fired"."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from lib.cliargs import EX_USAGE, ArgumentParser
from lib.config import PROJECT_ROOT

SCRIPTS = sorted(p.name for p in PROJECT_ROOT.glob("[0-9][0-9]_*.py"))
# module -> a valid subcommand (None: no subcommands)
MODULES = {
    "lib.app.__main__": None,
    "lib.demo": None,
    "lib.jobs.__main__": "list",
    "lib.lake.__main__": "snapshots",
    "lib.monitoring.__main__": "check",
    "lib.notebooks": None,
    "lib.serving.__main__": "status",
    "lib.serving.prediction_log": None,  # the prediction-writer process the server starts with pipe fds
    "lib.stack.__main__": "status",
    "lib.tracking": "ui",  # make mlflow-ui
}
BENCHMARKS = sorted(f"benchmarks.{p.stem}" for p in (PROJECT_ROOT / "benchmarks").glob("bench_*.py"))


def load(name: str) -> ModuleType:
    if name.endswith(".py"):
        spec = importlib.util.spec_from_file_location(f"script_{Path(name).stem}", PROJECT_ROOT / name)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # `if __name__ == "__main__"` keeps main() from running
        return module
    return importlib.import_module(name)


def exit_code(parser: ArgumentParser, argv: list[str], capsys: pytest.CaptureFixture) -> int:
    with pytest.raises(SystemExit) as info:
        parser.parse_args(argv)
    assert "error:" in capsys.readouterr().err
    return info.value.code


def test_the_lists_name_every_cli() -> None:
    """A new script or `lib` module with a main() must join the lists (and so the contract)."""
    found = set()
    for path in (PROJECT_ROOT / "lib").rglob("*.py"):
        if re.search(r"^def main\(", path.read_text(), re.MULTILINE):
            found.add(".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts))
    assert found == set(MODULES)
    assert SCRIPTS[0] == "00_download.py" and len(SCRIPTS) == 9  # 00-08 and 10 (02 and 09 are notebooks)


def test_no_parser_bypasses_the_contract() -> None:
    """Only lib/cliargs.py builds a plain argparse parser; every other one exits 64 on usage errors."""
    plain = re.compile(r"argparse\.ArgumentParser\(|from argparse import\b.*\bArgumentParser\b")
    offenders = [
        str(path.relative_to(PROJECT_ROOT))
        for folder in ("lib", "benchmarks", "dags", "tests")
        for path in (PROJECT_ROOT / folder).rglob("*.py")
        if path != PROJECT_ROOT / "lib" / "cliargs.py" and plain.search(path.read_text())
    ] + [name for name in SCRIPTS if plain.search((PROJECT_ROOT / name).read_text())]
    assert offenders == []


@pytest.mark.parametrize("name", SCRIPTS + list(MODULES) + BENCHMARKS)
def test_build_parser_exits_64_on_an_unknown_flag(name: str, capsys: pytest.CaptureFixture) -> None:
    module = load(name)
    parser = module.build_parser()
    assert isinstance(parser, ArgumentParser)
    assert exit_code(parser, ["--no-such-flag"], capsys) == EX_USAGE
    command = MODULES.get(name)
    if command is not None:
        assert exit_code(parser, [command, "--no-such-flag"], capsys) == EX_USAGE
        assert exit_code(parser, ["no-such-command"], capsys) == EX_USAGE
        assert exit_code(parser, [], capsys) == EX_USAGE  # a subcommand is required


def test_monitoring_check_keeps_2_for_alerts_only(capsys: pytest.CaptureFixture) -> None:
    """A bad window value is a usage error (64), distinct from an alert (2) and a failure (1)."""
    from lib.monitoring.__main__ import EXIT_FIRING, build_parser

    assert EXIT_FIRING == 2 != EX_USAGE
    parser = build_parser()
    assert exit_code(parser, ["check", "--window-hours", "abc"], capsys) == EX_USAGE
    assert exit_code(parser, ["check", "--window-hours", "24", "--last", "5"], capsys) == EX_USAGE
