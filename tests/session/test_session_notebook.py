"""The JupyterLab session path: tests/session/session.ipynb runs 00, 01 and 03 from cells on the
project kernel (`make setup` registers it), both as `%run` and as `!python`, and reads the table back.

The notebook executes headless (nbclient) with PROJECT_ROOT at a temp directory, so it touches no
real state; the kernel inherits that environment like a JupyterLab kernel inherits `make lab`'s.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

from lib.config import PROJECT_ROOT
from lib.notebooks import execute_notebook

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NOTEBOOK = Path(__file__).with_name("session.ipynb")
KERNEL = "bank-mlops"  # the Makefile's KERNEL


def _text(cell: nbformat.NotebookNode, name: str | None = None) -> str:
    """A cell's stream output (stdout, stderr or both), as the participant sees it."""
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and name in (None, o.name))


def _code_cells(nb: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    """Code cells by the command they run (their `%run`/`!` line, else their first line)."""
    cells = {}
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        lines = cell.source.splitlines()
        cells[next((line for line in lines if line.startswith(("%run", "!"))), lines[0])] = cell
    return cells


def test_committed_notebook_is_clean_and_on_the_project_kernel() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert all(not c.outputs and c.execution_count is None for c in nb.cells if c.cell_type == "code")
    assert nb.metadata.kernelspec.name == KERNEL


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> tuple[nbformat.NotebookNode, Path]:
    root = tmp_path_factory.mktemp("session-root")
    with pytest.MonkeyPatch.context() as mp:  # the kernel inherits this environment
        mp.setenv("PROJECT_ROOT", str(root))
        mp.setenv("PROJECT_OWNER", "session")
        mp.setenv("SPARK_MASTER", "local[2]")
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        nb = execute_notebook(NOTEBOOK, out=root / "session.executed.ipynb", timeout=600, kernel_name=KERNEL)
    return nb, root


def test_kernel_is_the_venv_and_imports_lib(executed) -> None:
    nb, root = executed
    first = _text(_code_cells(nb)["import json"])
    venv_python = str(Path(sys.executable).parent / "python")
    assert f"shell python  : {venv_python}" in first  # `!python` is the venv's python, not the system's
    assert f"lib           : {PROJECT_ROOT / 'lib' / '__init__.py'}" in first
    assert f"project root  : {root}" in first


def test_00_and_01_run_as_percent_run_and_as_shell_commands(executed) -> None:
    cells = _code_cells(executed[0])
    assert "rows      : 45,211" in _text(cells["%run 00_download.py --offline"], "stdout")
    assert "existing" in _text(cells["!python 00_download.py --offline"])
    for command in ("%run 01_write_to_dl.py", "!python 01_write_to_dl.py"):
        out = _text(cells[command])
        assert "rows      : 45,211" in out and "next      :" in out, out[-2000:]
        assert "py4j" not in out and "Traceback" not in out
    back = _text(cells["from lib.lake import open_table"])
    assert "Traceback" not in back and "Error while sending" not in back
    assert "rows read back : 45,211" in back and "snapshots      : 2" in back


def test_training_progress_renders_as_a_widget(executed) -> None:
    nb = executed[0]
    cell = _code_cells(nb)["%run 03_train.py --grid {grid_file} --workers 1"]
    assert "best run   :" in _text(cell, "stdout") and "next       :" in _text(cell, "stdout")
    widgets = [o for o in cell.outputs if o.output_type == "display_data" and
               "application/vnd.jupyter.widget-view+json" in o.data]  # fmt: skip
    assert widgets, [o.output_type for o in cell.outputs]
    everything = nbformat.writes(nb)
    assert "IProgress not found" not in everything and "TqdmWarning" not in everything


def test_a_failing_script_ends_with_one_error_line_in_both_forms(executed) -> None:
    cells = _code_cells(executed[0])
    run = cells["%run 01_write_to_dl.py --csv missing.csv"]
    errors = [o for o in run.outputs if o.output_type == "error"]
    assert len(errors) == 1 and errors[0].traceback == ["01_write_to_dl.py exited with status 1"]
    stderr = _text(run, "stderr")
    assert [line for line in stderr.splitlines() if line.startswith("error:")] == [
        line for line in stderr.splitlines() if line.strip()
    ][-1:], stderr
    assert "missing.csv" in stderr and "Traceback" not in stderr
    shell = _text(cells["!python 01_write_to_dl.py --csv missing.csv"])
    assert "error:" in shell and "missing.csv" in shell and "Traceback" not in shell
    assert "exit code : 1" in shell and "clientserver" not in shell
