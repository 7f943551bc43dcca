"""Headless notebook execution (nbclient), shared by `make demo` and the notebook tests.

CLI: `python -m lib.notebooks NOTEBOOK [--out EXECUTED.ipynb]`. Like every path on the lab's
command lines (05's --from-file, 10's --csv, lib.jobs --spec, lib.stack --dir), NOTEBOOK and
--out are read relative to the current directory; the kernel itself runs in the project root.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from lib.cliargs import EX_FAILURE, EX_OK, ArgumentParser
from lib.config import PROJECT_ROOT
from lib.fileio import atomic_path


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
        with atomic_path(out) as tmp:
            nbformat.write(nb, tmp)
    return nb


def build_parser() -> ArgumentParser:
    """NOTEBOOK [--out PATH] [--timeout S]; usage errors exit 64."""
    parser = ArgumentParser(prog="python -m lib.notebooks", description=__doc__.split("\n")[0])
    parser.add_argument("notebook", type=Path, help="the notebook to run (relative to the current directory)")
    parser.add_argument("--out", type=Path, help="where to save the executed copy (relative to the current directory)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell (default: %(default)s)")
    return parser


def resolve_paths(notebook: Path, out: Path | None) -> tuple[Path, Path | None]:
    """Absolute paths, relative ones read from the current directory (as a shell user expects).

    Raises NotebookError when the notebook does not exist (naming the project's notebook of that
    name when there is one) or when --out would overwrite it: the committed notebook stays as it is.
    """
    notebook = notebook.expanduser().resolve()
    if not notebook.is_file():
        in_project = PROJECT_ROOT / notebook.name
        hint = f"; the project's is {in_project}" if in_project.is_file() else ""
        raise NotebookError(f"notebook {notebook} not found (paths are relative to the current directory){hint}")
    out = None if out is None else out.expanduser().resolve()
    if out == notebook:
        raise NotebookError(f"--out {out} is the notebook itself: save the executed copy elsewhere (e.g. reports/)")
    return notebook, out


def main(argv: list[str] | None = None) -> int:
    """Execute one notebook, optionally into a copy; a failed cell is one `error:` line and exit 1."""
    args = build_parser().parse_args(argv)
    try:
        notebook, out = resolve_paths(args.notebook, args.out)
        execute_notebook(notebook, out, args.timeout)
    except NotebookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EX_FAILURE
    print(f"executed {notebook}" + (f" -> {out}" if out else ""))
    return EX_OK


if __name__ == "__main__":
    sys.exit(main())
