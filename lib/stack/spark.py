"""A Spark standalone cluster for the stack: one master and one worker.

Both are started with the installed pyspark's own `spark-class`, so the cluster runs the same Spark
as the driver, and executors are separate JVMs as on a real cluster.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from lib.config import child_env
from lib.stack.process import StackError, StackPaths, free_port, spawn, wait_ready

WORKER_CORES = 2
WORKER_MEMORY = "2g"
# Per application, so two participants' drivers share the one worker instead of queueing.
APP_CORES = 1
APP_EXECUTOR_MEMORY = "1g"


def spark_class() -> Path:
    """The launcher script of the installed pyspark, so the cluster runs the same Spark as the driver."""
    import pyspark

    script = Path(pyspark.__file__).parent / "bin" / "spark-class"
    if not script.is_file():
        raise StackError(f"{script} not found: reinstall pyspark (make setup)")
    return script


def _spark_env() -> dict[str, str]:
    from lib.lake import ensure_java

    return child_env(
        {
            "JAVA_HOME": ensure_java(),
            "SPARK_HOME": str(spark_class().parent.parent),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "PYSPARK_PYTHON": sys.executable,
            "SPARK_NO_DAEMONIZE": "1",
        }
    )


def master_json(state: dict[str, Any]) -> dict[str, Any] | None:
    """The master's JSON status page (its state and workers), or None when it does not answer."""
    url = f"http://127.0.0.1:{state['spark_master']['webui_port']}/json/"
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def master_alive(state: dict[str, Any]) -> bool:
    """Whether the master reports itself ALIVE."""
    return (master_json(state) or {}).get("status") == "ALIVE"


def alive_workers(state: dict[str, Any]) -> int:
    """How many workers the master sees ALIVE."""
    info = master_json(state) or {}
    return sum(1 for w in info.get("workers", []) if w.get("state") == "ALIVE")


def start_spark(paths: StackPaths, state: dict[str, Any]) -> None:
    """Start the master, wait until ALIVE, then one worker, and wait until the master sees it."""
    launcher, env = spark_class(), _spark_env()
    port, webui = free_port(), free_port()
    log_path = paths.logs / "spark-master.log"
    master = spawn(
        [
            str(launcher),
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(webui),
        ],  # fmt: skip
        log_path,
        env,
    )
    state["spark_master"] = {"pid": master.pid, "port": port, "webui_port": webui, "log": str(log_path)}
    wait_ready("spark master", lambda: master_alive(state), lambda: master.poll() is None, log_path)
    w_port, w_webui = free_port(), free_port()
    w_log = paths.logs / "spark-worker.log"
    work_dir = paths.root / "spark-work"
    work_dir.mkdir(parents=True, exist_ok=True)
    worker = spawn(
        [
            str(launcher),
            "org.apache.spark.deploy.worker.Worker",
            f"spark://127.0.0.1:{port}",
            "--host",
            "127.0.0.1",
            "--port",
            str(w_port),
            "--webui-port",
            str(w_webui),
            "--cores",
            str(WORKER_CORES),
            "--memory",
            WORKER_MEMORY,
            "--work-dir",
            str(work_dir),
        ],  # fmt: skip
        w_log,
        env,
    )
    state["spark_worker"] = {"pid": worker.pid, "port": w_port, "webui_port": w_webui, "log": str(w_log)}
    wait_ready("spark worker", lambda: alive_workers(state) >= 1, lambda: worker.poll() is None, w_log)
