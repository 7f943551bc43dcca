"""`python -m lib.notebooks`: paths on its command line are read from the current directory, as with
every other CLI of the lab; a missing notebook or an --out that would overwrite it is one error line."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib import notebooks
from lib.config import PROJECT_ROOT


def test_relative_paths_are_read_from_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "nb.ipynb").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert notebooks.resolve_paths(Path("nb.ipynb"), Path("reports/nb.ipynb")) == (
        tmp_path / "nb.ipynb",
        tmp_path / "reports" / "nb.ipynb",
    )
    assert notebooks.resolve_paths(Path("nb.ipynb"), None) == (tmp_path / "nb.ipynb", None)


def test_a_missing_notebook_names_the_projects_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    name = "09_model_monitoring_dashboard.ipynb"
    with pytest.raises(notebooks.NotebookError) as exc:
        notebooks.resolve_paths(Path(name), None)
    assert f"{tmp_path / name} not found" in str(exc.value)
    assert str(exc.value).endswith(f"the project's is {PROJECT_ROOT / name}")


def test_out_may_not_overwrite_the_notebook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "nb.ipynb").write_text("{}")
    monkeypatch.chdir(tmp_path / "..")
    code = notebooks.main([str(tmp_path / "nb.ipynb"), "--out", f"{tmp_path.name}/./nb.ipynb"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: --out ") and "is the notebook itself" in err
    assert (tmp_path / "nb.ipynb").read_text() == "{}"
