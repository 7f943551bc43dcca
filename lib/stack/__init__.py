"""A local stack of the real shared services: PostgreSQL, an MLflow tracking server, a Spark cluster.

The workshop's production is one shared Spark cluster, Iceberg catalog, tracking server and
database for many participants. `up` starts the same servers on this machine, each on a free port,
with all state under one directory (default `<root>/run/stack`, `STACK_DIR`):

- PostgreSQL 15 (`initdb`/`pg_ctl`), socket and data inside the stack dir, databases `mlflow`,
  `iceberg` (the Iceberg JDBC catalog) and `metrics` (prediction log, ground truth, job history);
- `mlflow server` on that PostgreSQL, serving artifacts itself, so clients need only its URL;
- a Spark standalone master and one worker (pyspark's own `spark-class`): executors are separate JVMs.

It writes the environment for clients to `<stack dir>.env` (`run/stack.env`): source it
(`set -a; . run/stack.env; set +a`) and every script runs against the stack. `down` stops exactly
the processes `up` recorded; `status` shows whether each one still answers.

Participants of a workshop share the stack; each also sources `python -m lib.stack user NAME`,
which creates their own metrics database (job history has no owner column) and sets `PROJECT_OWNER`.

  process        StackError, StackPaths, the state file; spawning, waiting for and signalling servers
  postgres       initdb / pg_ctl, databases, URLs
  mlflow_server  `mlflow server` on PostgreSQL with served artifacts
  spark          a standalone master and one worker
  envfile        the settings that point clients at a stack, and the file they are written to
  lifecycle      up / down / status, and the per-participant helpers owner_env / create_database
  __main__       the CLI: `python -m lib.stack up | down | status | user NAME [--dir DIR]`
"""

from __future__ import annotations

from lib.stack.envfile import stack_env
from lib.stack.lifecycle import ServiceStatus, create_database, down, owner_env, status, up
from lib.stack.postgres import pg_bin
from lib.stack.process import StackError, StackPaths, free_port
from lib.stack.spark import spark_class

__all__ = [
    "ServiceStatus",
    "StackError",
    "StackPaths",
    "create_database",
    "down",
    "free_port",
    "owner_env",
    "pg_bin",
    "spark_class",
    "stack_env",
    "status",
    "up",
]
