"""The settings that point every script at a stack, and the file they are written to.

The names are lib/config's; the file is `<stack dir>.env`, for `set -a; . run/stack.env; set +a`.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from lib.fileio import atomic_write_text
from lib.stack.mlflow_server import mlflow_url
from lib.stack.postgres import PG_SUPERUSER, pg_url
from lib.stack.process import StackPaths
from lib.stack.spark import APP_CORES, APP_EXECUTOR_MEMORY


def stack_env(paths: StackPaths, state: dict[str, Any], jdbc_driver_jar: Path) -> dict[str, str]:
    """The settings (lib/config names) that point every script at this stack (at the services it runs)."""
    pg = state["postgres"]
    env = {"STACK_DIR": str(paths.root)}
    if "spark_master" in state:
        env |= {
            "SPARK_MASTER": f"spark://127.0.0.1:{state['spark_master']['port']}",
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_CONF_SPARK_DRIVER_HOST": "127.0.0.1",
            "SPARK_CONF_SPARK_CORES_MAX": str(APP_CORES),
            "SPARK_CONF_SPARK_EXECUTOR_MEMORY": APP_EXECUTOR_MEMORY,
            "SPARK_CONF_SPARK_PYSPARK_PYTHON": sys.executable,
        }
    env |= {
        "ICEBERG_CATALOG_TYPE": "jdbc",
        "ICEBERG_CATALOG_URI": f"jdbc:postgresql://127.0.0.1:{pg['port']}/iceberg",
        "ICEBERG_CATALOG_USER": PG_SUPERUSER,
        "ICEBERG_CATALOG_PASSWORD": pg["password"],
        "ICEBERG_WAREHOUSE": str(paths.warehouse),
        "ICEBERG_JDBC_DRIVER_JAR": str(jdbc_driver_jar),
    }
    if "mlflow" in state:
        env["MLFLOW_TRACKING_URI"] = mlflow_url(state)
    env["METRICS_DB_URL"] = pg_url(state, "metrics")
    return env


def shell_exports(env: dict[str, str]) -> list[str]:
    """`export KEY=value` lines, quoted for a POSIX shell."""
    return [f"export {key}={shlex.quote(value)}" for key, value in env.items()]


def write_env_file(paths: StackPaths, env: dict[str, str]) -> None:
    """Write the stack's settings to `<stack dir>.env` (mode 0600: it holds the database password)."""
    lines = [
        "# Written by `python -m lib.stack up`; removed by `down`. Use: set -a; . run/stack.env; set +a",
        *shell_exports(env),
    ]
    atomic_write_text(paths.env_file, "\n".join(lines) + "\n", mode=0o600)
