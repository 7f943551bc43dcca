"""Every command the README and the guides (docs/*.md) tell a reader to type exists.

A `make X` names a target the Makefile defines; `python NN_script.py` (also `!python`, `%run`) a
script in the project (and every numbered script, notebook or `lib/` file named at all exists);
`python -m lib.x` a module that runs with -m (a `__main__` guard or a
package `__main__.py`); `python -m tool` an installed module. Renaming a script, a module or a target
then fails here instead of leaving the docs wrong. The command lines in code blocks are also
parsed by the CLI's own `build_parser()`, so a renamed or removed flag fails too (imports only: no
process, no database).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import re
import shlex
from pathlib import Path

import pytest

from lib.config import PROJECT_ROOT, load_settings

DOCS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]

# fenced blocks and inline code spans: where the docs write commands (`python -m lib.…` and
# `benchmarks.bench_*` are placeholders, not commands)
_CODE = re.compile(r"^```[^\n]*\n(.*?)^```|`([^`\n]+)`", re.M | re.S)
_VAR = r"[A-Z_]+=(?:\$\([^)]*\)\S*|\S+)"
_MAKE = re.compile(rf"(?<![\w./-])make((?:[ \t]+{_VAR}|[ \t]+-[-\w]+)*)[ \t]+([a-z][\w-]*)")
_PYTHON = re.compile(
    r"(?:(?<![\w./-])(?:\S*/)?python(?:3(?:\.\d+)?)?|%run)[ \t]+"
    r"(?:-m[ \t]+([A-Za-z_][\w.]*)(?![\w.…*<])|([\w./-]+\.py)\b)"
)


_FILE = re.compile(r"(?<![\w./-])(\d\d_\w+\.(?:py|ipynb)|lib/[\w/]+\.py)\b")


def _code(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return "\n".join(block or span for block, span in _CODE.findall(text))


def _commands(kind: str) -> list[tuple[str, str]]:
    """(doc name, what it names) for every `make`, script or module command in the docs; for
    "file", every numbered script/notebook and `lib/` file they mention."""
    found = set()
    for doc in DOCS:
        code = _code(doc)
        if kind == "make":
            found |= {(doc.name, m.group(2)) for m in _MAKE.finditer(code)}
        else:
            for module, script in _PYTHON.findall(code):
                if kind == "module" and module:
                    found.add((doc.name, module))
                elif kind == "script" and script:
                    found.add((doc.name, script))
            if kind == "file":
                found |= {(doc.name, name) for name in _FILE.findall(code)}
    return sorted(found)


def _make_targets() -> set[str]:
    """Targets the Makefile defines (rules `a b: deps`, not `VAR := value`)."""
    targets = set()
    for line in (PROJECT_ROOT / "Makefile").read_text().splitlines():
        match = re.match(r"^([\w.$() -]+?)\s*::?(?!=)", line)
        if match and not line.startswith(("\t", "#")):
            targets |= set(match.group(1).split())
    return targets


def _runs_with_dash_m(module: str) -> bool:
    """`python -m module` works: a project module with a __main__ guard or package __main__.py,
    or an installed module (found without importing it)."""
    path = PROJECT_ROOT.joinpath(*module.split("."))
    if (path / "__main__.py").is_file():
        return True
    source = path.with_suffix(".py")
    if source.is_file():
        return re.search(r"^if __name__ == .__main__.:", source.read_text(), re.M) is not None
    if module.split(".")[0] in {"lib", "tests", "benchmarks"}:
        return False
    return importlib.util.find_spec(module.split(".")[0]) is not None


def test_the_docs_name_commands_at_all() -> None:
    # the extraction itself works: the README's Quickstart and workflow are full of them
    assert ("README.md", "setup") in _commands("make") and ("README.md", "lab") in _commands("make")
    assert ("README.md", "03_train.py") in _commands("script")
    assert ("README.md", "lib.serving") in _commands("module")
    assert ("README.md", "02_EDA.ipynb") in _commands("file")


@pytest.mark.parametrize(("doc", "target"), _commands("make"))
def test_make_target_exists(doc: str, target: str) -> None:
    assert target in _make_targets(), f"{doc} says `make {target}`, the Makefile has no such target"


@pytest.mark.parametrize(("doc", "script"), _commands("script"))
def test_script_exists(doc: str, script: str) -> None:
    assert (PROJECT_ROOT / script).is_file(), f"{doc} says `python {script}`, there is no such file"


@pytest.mark.parametrize(("doc", "module"), _commands("module"))
def test_module_runs_with_dash_m(doc: str, module: str) -> None:
    assert _runs_with_dash_m(module), f"{doc} says `python -m {module}`, which does not run as a module"


@pytest.mark.parametrize(("doc", "name"), _commands("file"))
def test_named_file_exists(doc: str, name: str) -> None:
    path = PROJECT_ROOT / name
    # a lib module that became a package (lib/x.py -> lib/x/) is still where the reader looks
    assert path.is_file() or path.with_suffix("").is_dir(), f"{doc} names {name}, there is no such file"


# --- flags: argparse accepts what the docs type ---------------------------------------------------

_LINE = re.compile(
    r"^\s*(?:\$\s+)?(?:!|%run\s+)?(?:\S*/)?(?:python(?:3(?:\.\d+)?)?\s+)?(-m\s+lib[\w.]*|\d\d_\w+\.py)(.*)$"
)
# placeholders and usage syntax (`<id>`, `[--limit 20]`, `RUN_ID`, `N`, `$(...)`): not a literal command
_PLACEHOLDER = re.compile(r"[<>…\[\]{}$]|\.\.\.|\b[A-Z][A-Z0-9_]+\b|\bN\b")


_OUTPUT = re.compile(r"^<!-- output: .*?^<!-- /output -->", re.M | re.S)


def _invocations() -> list[tuple[str, str, list[str]]]:
    """(doc, script or module, argv) for every command line in the docs' fenced code blocks."""
    found = set()
    for doc in DOCS:
        # real output (the guides' `<!-- output: … -->` blocks) is not a command, even where a line
        # starts with a script name ("08_model_simulation.py exited with status 1")
        text = _OUTPUT.sub("", doc.read_text(encoding="utf-8"))
        for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, re.M | re.S):
            for line in block.splitlines():
                line = line.split(" #")[0].split("&&")[0].split("|")[0].split(" 2>")[0].split(" >")[0]
                match = _LINE.match(line)
                if not match or _PLACEHOLDER.search(line):
                    continue
                target = match.group(1).removeprefix("-m").strip()
                try:
                    argv = shlex.split(match.group(2))
                except ValueError:
                    continue
                found.add((doc.name, target, tuple(argv)))
    return sorted((doc, target, list(argv)) for doc, target, argv in found)


def _parser(target: str) -> argparse.ArgumentParser:
    if target.endswith(".py"):
        spec = importlib.util.spec_from_file_location(target.removesuffix(".py"), PROJECT_ROOT / target)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        name = (
            target if (PROJECT_ROOT.joinpath(*target.split(".")).with_suffix(".py")).is_file() else f"{target}.__main__"
        )
        module = importlib.import_module(name)
    build = module.build_parser
    return build(load_settings()) if inspect.signature(build).parameters else build()


def test_the_docs_have_command_lines_to_check() -> None:
    targets = {target for _, target, _ in _invocations()}
    assert {"03_train.py", "05_newbatch.py", "lib.jobs", "lib.lake"} <= targets


@pytest.mark.parametrize(("doc", "target", "argv"), _invocations())
def test_argparse_accepts_the_documented_flags(doc: str, target: str, argv: list[str]) -> None:
    parser = _parser(target)
    try:
        parser.parse_args(argv)
    except SystemExit as exc:
        assert exc.code == 0, f"{doc}: `{target} {' '.join(argv)}` is refused by its parser (exit {exc.code})"
