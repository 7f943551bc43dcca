"""`make mlflow-ui` (python -m lib.tracking ui): the UI opens the configured store, from anywhere."""

from __future__ import annotations

import sys
from pathlib import Path

from lib.tracking import ensure_store_dir, ui_command
from tests.conftest import make_settings


def test_the_ui_gets_the_configured_absolute_store(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "project")
    cmd = ui_command(settings, "127.0.0.1", 5123)
    assert cmd[:4] == [sys.executable, "-m", "mlflow", "ui"]
    args = dict(zip(cmd[4::2], cmd[5::2], strict=True))
    assert args["--backend-store-uri"] == f"sqlite:///{tmp_path / 'project' / 'mlflow.db'}"
    assert args["--default-artifact-root"] == (tmp_path / "project" / "mlartifacts").as_uri()
    assert (args["--host"], args["--port"], args["--workers"]) == ("127.0.0.1", "5123", "1")
    assert "--registry-store-uri" not in args


def test_a_separate_registry_store_is_passed_on(tmp_path: Path) -> None:
    registry = f"sqlite:///{tmp_path / 'registry' / 'models.db'}"
    cmd = ui_command(make_settings(tmp_path, MLFLOW_REGISTRY_URI=registry), "127.0.0.1", 5000)
    assert cmd[cmd.index("--registry-store-uri") + 1] == registry


def test_a_fresh_project_root_gets_the_store_directories(tmp_path: Path) -> None:
    registry = f"sqlite:///{tmp_path / 'registry' / 'models.db'}"
    ensure_store_dir(make_settings(tmp_path / "fresh" / "root", MLFLOW_REGISTRY_URI=registry))
    assert (tmp_path / "fresh" / "root").is_dir() and (tmp_path / "registry").is_dir()
    assert not (tmp_path / "fresh" / "root" / "mlflow.db").exists()  # the directory only, no database
