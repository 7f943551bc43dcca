"""02_EDA.ipynb runs headless (nbclient, fresh kernel) against a small table in the test warehouse."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from lib.config import PROJECT_ROOT, Settings
from lib.notebooks import execute_notebook

pytestmark = pytest.mark.integration

NOTEBOOK = PROJECT_ROOT / "02_EDA.ipynb"


def test_committed_notebook_has_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert nb.metadata.kernelspec.name == "python3"


@pytest.mark.slow  # executes the notebook in a kernel
def test_eda_notebook_executes_on_the_sample_table(
    sample_table: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the kernel inherits this environment: it selects the test warehouse and the private table
    monkeypatch.setenv("PROJECT_ROOT", str(sample_table.root))
    monkeypatch.setenv("PROJECT_OWNER", sample_table.user)
    executed = execute_notebook(NOTEBOOK, out=tmp_path / "02_EDA.executed.ipynb", timeout=300)

    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert sample_table.table_ident in text and "rows     : 3,000" in text
    assert "ROC AUC of duration alone" in text and "pdays = -1" in text
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(images) >= 6  # target, histograms, rates by category, heatmap, pdays, duration
    assert (tmp_path / "02_EDA.executed.ipynb").is_file()
    assert not nbformat.read(NOTEBOOK, as_version=4).cells[1].outputs  # the committed file is untouched
