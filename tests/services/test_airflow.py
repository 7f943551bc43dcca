"""The DAG in a real Airflow (3.3, its own venv from `make airflow-venv`), on a small real project.

The project is prepared as a participant of the session's service stack would (00 -> 01 on a small
sample -> 03 with a tiny grid -> 04 serving the champion); then `airflow dags test bank_marketing_mlops`
runs New Batch -> Retrain Models -> Redeploy Model -> Score Customers for real against the stack
(Spark standalone, the Iceberg JDBC catalog and the job history on PostgreSQL, the MLflow tracking
server), each task through the project's runner and Python. The results are checked where they land:
the job history (trigger "airflow"), the catalog (New Batch's snapshot), the registry (a new
champion) and the served model. Airflow's own metadata DB (SQLite) lives in a temp AIRFLOW_HOME.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from mlflow import MlflowClient

from lib import lake, registry
from lib.config import PROJECT_ROOT, Settings, load_settings
from lib.jobs import history, load_spec, next_runs
from lib.serving.client import ServingClient, endpoint
from tests.services.services_lab import TRAIN_ARGS, ServiceStack, make_owner, write_sample, write_spec
from tests.services.services_lab import run as run_lab

pytestmark = [pytest.mark.services, pytest.mark.slow]

AIRFLOW = PROJECT_ROOT / ".venv-airflow" / "bin" / "airflow"
DAG_ID = "bank_marketing_mlops"
CHAIN = ["New Batch", "Retrain Models", "Redeploy Model", "Score Customers"]
AIRFLOW_KEYS = ("AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__LOAD_EXAMPLES")


def airflow_venv() -> Path:
    """Build (or reuse) Airflow's own venv; a failure names the command."""
    done = subprocess.run(["make", "-s", "airflow-venv"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=1800)  # fmt: skip
    if done.returncode != 0 or not AIRFLOW.exists():
        pytest.fail(
            f"`make airflow-venv` failed (run it in {PROJECT_ROOT}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return AIRFLOW


def run(env: dict[str, str], *cmd: str, timeout: float = 900) -> subprocess.CompletedProcess:
    done = subprocess.run(list(cmd), cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (
        f"{' '.join(cmd[:3])} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Airflow's venv and a migrated metadata DB (SQLite) in a temp AIRFLOW_HOME."""
    airflow = airflow_venv()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path_factory.mktemp("airflow-home")),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }  # fmt: skip
    assert set(AIRFLOW_KEYS) <= set(env)
    run(env, str(airflow), "db", "migrate")
    return env


@pytest.fixture(scope="module")
def project(
    airflow_env: dict[str, str], service_stack: ServiceStack, projects_dir: Path
) -> Iterator[tuple[dict[str, str], Settings]]:
    """A small real project on the session's stack with a served champion, and the environment
    Airflow and its tasks run in: a participant `airflow` with the stack's settings."""
    root = projects_dir / "airflow"
    owner = make_owner(
        service_stack, root, "airflow",
        **{key: airflow_env[key] for key in AIRFLOW_KEYS},
        GATE_TOLERANCE="1.0",  # the tiny retrain must replace the champion whatever its score
        JOBS_SPEC=str(write_spec(root / "jobs.yaml")),
    )  # fmt: skip
    try:
        run_lab(owner, "00_download.py", "--offline")
        run_lab(owner, "01_write_to_dl.py", "--csv", str(write_sample(owner.settings.data_dir)))
        run_lab(owner, "03_train.py", *TRAIN_ARGS)
        run_lab(owner, "04_api_deployment.py")
        yield owner.env, owner.settings
    finally:
        subprocess.run([sys.executable, "-m", "lib.serving", "stop"], cwd=PROJECT_ROOT, env=owner.env,
                       capture_output=True, timeout=120)  # fmt: skip


def test_the_dag_imports_without_errors_in_airflow(project) -> None:
    env, _ = project
    errors = run(env, str(AIRFLOW), "dags", "list-import-errors", "--local", "--output", "json")
    assert json.loads(errors.stdout.strip().splitlines()[-1]) == []
    dags = run(env, str(AIRFLOW), "dags", "list", "--local", "--output", "json")
    assert DAG_ID in {d["dag_id"] for d in json.loads(dags.stdout.strip().splitlines()[-1])}
    # the project's own jobs.yaml: Score Customers also has a nightly DAG of its own, on its cron
    env = {**env, "JOBS_SPEC": str(PROJECT_ROOT / "jobs.yaml")}
    dags = run(env, str(AIRFLOW), "dags", "list", "--local", "--output", "json")
    listed = {d["dag_id"] for d in json.loads(dags.stdout.strip().splitlines()[-1])}
    assert {DAG_ID, f"{DAG_ID}_score_customers"} <= listed


def test_dags_test_runs_the_chain_on_the_stack_and_redeploys(project) -> None:
    env, settings = project
    # the tasks' services: the stack's Spark cluster, tracking server, JDBC catalog and PostgreSQL
    assert settings.spark_master.startswith("spark://") and settings.catalog_type == "jdbc"
    assert settings.mlflow_tracking_uri.startswith("http://")
    assert settings.metrics_db_url.startswith("postgresql+psycopg://")
    champion = registry.require_champion(settings)
    snapshots = len(lake.read_snapshots(settings))

    run(env, str(AIRFLOW), "dags", "test", DAG_ID, timeout=1800)

    runs = {r.job: r for r in history(settings, limit=len(CHAIN))}
    assert sorted(runs) == sorted(CHAIN)
    assert {(r.trigger, r.status) for r in runs.values()} == {("airflow", "succeeded")}
    new_champion = registry.require_champion(settings)
    assert int(new_champion.version) > int(champion.version)
    with ServingClient(endpoint(settings), timeout=30) as client:
        assert client.version()["model_version"] == new_champion.version
    assert len(lake.read_snapshots(settings)) == snapshots + 1  # New Batch's append, in the JDBC catalog
    # the new model's artifacts went to the tracking server, not to a local directory
    assert (
        MlflowClient(settings.mlflow_tracking_uri)
        .get_run(new_champion.run_id)
        .info.artifact_uri.startswith("mlflow-artifacts:")
    )


def test_a_failing_job_fails_the_dag_run_and_stops_the_chain(airflow_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "fail.py").write_text("import sys; print('failing on purpose'); sys.exit(3)\n")
    (tmp_path / "never.py").write_text("raise SystemExit('must not run')\n")
    spec_path = tmp_path / "jobs.yaml"
    jobs = [{"name": "Fail", "script": "fail.py"}, {"name": "Never", "script": "never.py", "depends_on": "Fail"}]
    spec_path.write_text(json.dumps({"jobs": jobs}))
    env = {**airflow_env, "PROJECT_ROOT": str(tmp_path), "PROJECT_OWNER": "airflow", "JOBS_SPEC": str(spec_path)}
    done = subprocess.run([str(AIRFLOW), "dags", "test", DAG_ID], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode != 0, done.stdout[-3000:]
    runs = [(r.job, r.trigger, r.status, r.exit_code) for r in history(load_settings(env), limit=5)]
    assert runs == [("Fail", "airflow", "failed", 3)]


def test_airflow_reads_the_cron_in_the_timezone_of_jobs_yaml(airflow_env: dict[str, str], tmp_path: Path) -> None:
    """A scheduled DAG in real Airflow fires at the same instant as `python -m lib.jobs schedule`."""
    env = {**airflow_env, "PROJECT_ROOT": str(tmp_path)}
    spec_path = tmp_path / "jobs.yaml"
    spec_path.write_text("timezone: Asia/Kolkata\njobs:\n  - name: Nightly\n    script: n.py\n"
                         "    schedule: '30 3 * * *'\n")  # fmt: skip
    probe = (
        "import sys; from datetime import datetime, timezone; from airflow.dag_processing.dagbag import DagBag; "
        "from airflow.timetables.base import TimeRestriction; "
        "from airflow.serialization.encoders import coerce_to_core_timetable; "
        "dag = DagBag(sys.argv[1]).dags['bank_marketing_mlops']; "
        "after = datetime(2026, 1, 10, tzinfo=timezone.utc); "
        "info = coerce_to_core_timetable(dag.timetable).next_dagrun_info(last_automated_data_interval=None, "
        "restriction=TimeRestriction(earliest=after, latest=None, catchup=True)); "
        "print(dag.timezone.name, info.run_after.isoformat())"
    )
    python = str(AIRFLOW.parent / "python")
    out = run({**env, "JOBS_SPEC": str(spec_path)}, python, "-c", probe, str(PROJECT_ROOT / "dags"))
    tz_name, run_after = out.stdout.strip().splitlines()[-1].split()
    [(when, _)] = next_runs(load_spec(spec_path), datetime(2026, 1, 10, tzinfo=timezone.utc))
    assert tz_name == "Asia/Kolkata"
    assert datetime.fromisoformat(run_after) == when  # 03:30 IST = 22:00 UTC
