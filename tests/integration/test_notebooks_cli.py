"""`python -m lib.notebooks NOTEBOOK --out PATH` run for real on a one-cell notebook: a relative
--out lands under the current directory (as documented), while the kernel runs in the project root."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from lib import notebooks
from lib.config import PROJECT_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_relative_out_is_written_under_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os; print(os.getcwd())")])
    nbformat.write(nb, tmp_path / "cwd.ipynb")
    monkeypatch.chdir(tmp_path)

    assert notebooks.main(["cwd.ipynb", "--out", "reports/cwd.ipynb", "--timeout", "120"]) == 0

    out = tmp_path / "reports" / "cwd.ipynb"
    assert capsys.readouterr().out.strip() == f"executed {tmp_path / 'cwd.ipynb'} -> {out}"
    [cell] = nbformat.read(out, as_version=4).cells
    assert cell.outputs[0]["text"].strip() == str(PROJECT_ROOT)  # the kernel's directory: the project root
    assert not (PROJECT_ROOT / "reports" / "cwd.ipynb").exists()
    assert [p.name for p in out.parent.iterdir()] == ["cwd.ipynb"]  # no temp file left behind
