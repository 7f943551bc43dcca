"""lib.stack's pure parts: what a missing server binary says, and the environment it hands out."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib import stack
from lib.config import load_settings, sqlalchemy_catalog_url
from lib.stack import __main__ as stack_cli
from lib.stack import postgres


def test_a_missing_postgresql_binary_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "PG_BIN_DIRS", (Path("/nonexistent"),))
    with pytest.raises(stack.StackError, match="apt-get install postgresql-15"):
        stack.pg_bin("initdb-that-is-not-there")


STATE = {
    "postgres": {"pid": 1, "port": 5555, "password": "pw"},
    "mlflow": {"pid": 2, "port": 5000},
    "spark_master": {"pid": 3, "port": 7077, "webui_port": 8080},
}


def test_the_stack_env_points_every_setting_at_the_stack(tmp_path: Path) -> None:
    paths = stack.StackPaths(tmp_path / "stack")
    env = stack.stack_env(paths, STATE, Path("/usr/share/java/postgresql.jar"))
    settings = load_settings({**env, "PROJECT_ROOT": str(tmp_path)})
    assert settings.spark_master == "spark://127.0.0.1:7077"
    assert settings.catalog_type == "jdbc" and settings.catalog_user == "lab"
    assert sqlalchemy_catalog_url(settings.catalog_uri, settings.catalog_user, settings.catalog_password) == (
        "postgresql+psycopg://lab:pw@127.0.0.1:5555/iceberg"
    )
    assert settings.mlflow_tracking_uri == "http://127.0.0.1:5000"
    assert settings.metrics_db_url == "postgresql+psycopg://lab:pw@127.0.0.1:5555/metrics"
    assert paths.env_file == tmp_path / "stack.env"


def test_a_postgres_only_stack_leaves_spark_and_mlflow_local(tmp_path: Path) -> None:
    env = stack.stack_env(stack.StackPaths(tmp_path), {"postgres": STATE["postgres"]}, Path("x.jar"))
    assert "SPARK_MASTER" not in env and "MLFLOW_TRACKING_URI" not in env
    assert env["METRICS_DB_URL"].endswith("/metrics")


def test_cli_usage_errors_exit_64() -> None:
    with pytest.raises(SystemExit) as exc:
        stack_cli.main(["restart"])
    assert exc.value.code == 64
