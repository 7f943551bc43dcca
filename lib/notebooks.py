"""Headless notebook execution (nbclient), shared by `make demo` and the notebook tests.

CLI: `python -m lib.notebooks NOTEBOOK [--out EXECUTED.ipynb]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from lib.cliargs import ArgumentParser
from lib.config import PROJECT_ROOT


class NotebookError(RuntimeError):
    """A cell failed; the message carries the cell's error."""


def execute_notebook(
    path: Path, out: Path | None = None, timeout: int = 600, kernel_name: str = "python3"
) -> nbformat.NotebookNode:
    """Run every cell top to bottom in a fresh kernel started in the project root.

    The kernel inherits this process's environment, so PROJECT_ROOT/PROJECT_OWNER select the data.
    `kernel_name` picks the Jupyter kernel (`bank-mlops` is the project kernel `make setup` registers).
    A cell tagged `raises-exception` may fail; any other failing cell raises NotebookError.
    The committed notebook is never modified; an executed copy goes to `out` if given.
    """
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name=kernel_name, resources={"metadata": {"path": str(PROJECT_ROOT)}}
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        raise NotebookError(f"{path.name}: {str(exc).strip().splitlines()[-1]}") from exc
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".ipynb.part")
        nbformat.write(nb, tmp)
        tmp.replace(out)
    return nb


def build_parser() -> ArgumentParser:
    """NOTEBOOK [--out PATH] [--timeout S]; usage errors exit 64."""
    parser = ArgumentParser(prog="python -m lib.notebooks", description=__doc__.split("\n")[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--out", type=Path, help="where to save the executed copy")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Execute one notebook, optionally into a copy; a failed cell is one `error:` line and exit 1."""
    args = build_parser().parse_args(argv)
    try:
        execute_notebook(args.notebook, args.out, args.timeout)
    except NotebookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"executed {args.notebook}" + (f" -> {args.out}" if args.out else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
