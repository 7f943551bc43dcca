"""The Airflow tasks' bash commands, run for real: each goes through `python -m lib.jobs run`, so
ok_codes map to exit 0 the way Airflow needs and every task run is in the job history.
(The DAG's shape against jobs.yaml is checked without processes in tests/unit/test_dag.py.)"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lib.jobs import history, load_spec
from lib.jobs.airflow import airflow_dags, airflow_tasks
from tests.conftest import make_settings

pytestmark = pytest.mark.integration  # runs bash, the job runner and a Python job process


@pytest.mark.parametrize(("exit_code", "airflow_exit", "status"), [(0, 0, "succeeded"), (2, 0, "succeeded"),
                                                                    (3, 1, "failed")])  # fmt: skip
def test_ok_codes_count_as_success_in_airflow_too(tmp_path: Path, exit_code: int, airflow_exit: int, status: str):
    """Airflow fails a bash task on any non-zero exit; the runner exits 0 exactly for the job's ok_codes."""
    (tmp_path / "job.py").write_text(f"import sys; sys.exit({exit_code})\n")
    spec_path = tmp_path / "jobs.yaml"
    spec_path.write_text('{"jobs": [{"name": "Check", "script": "job.py", "ok_codes": [0, 2]}]}')
    [task] = airflow_tasks(load_spec(spec_path), python=sys.executable)
    settings = make_settings(tmp_path)
    env = {**os.environ, "PROJECT_ROOT": str(tmp_path), "PROJECT_OWNER": settings.user}
    done = subprocess.run(["bash", "-c", task.bash_command], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == airflow_exit, done.stderr
    [run] = history(settings, limit=5)
    assert (run.job, run.trigger, run.status, run.exit_code) == ("Check", "airflow", status, exit_code)


def test_the_nightly_dag_of_a_chained_job_runs_it_alone_into_the_history(tmp_path: Path):
    """A job with depends_on and a schedule (Score Customers) gets a DAG of its own that skips its upstream."""
    (tmp_path / "upstream.py").write_text("raise SystemExit('the nightly DAG must not run the upstream job')\n")
    (tmp_path / "score.py").write_text("print('scored')\n")
    spec_path = tmp_path / "jobs.yaml"
    spec_path.write_text('{"jobs": [{"name": "Redeploy", "script": "upstream.py"}, {"name": "Score Customers", '
                         '"script": "score.py", "depends_on": "Redeploy", "schedule": "30 3 * * *"}]}')  # fmt: skip
    _, nightly = airflow_dags(load_spec(spec_path), python=sys.executable)
    [task] = nightly.tasks
    settings = make_settings(tmp_path)
    env = {**os.environ, "PROJECT_ROOT": str(tmp_path), "PROJECT_OWNER": settings.user}
    done = subprocess.run(["bash", "-c", task.bash_command], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    [run] = history(settings, limit=5)
    assert (run.job, run.trigger, run.status) == ("Score Customers", "airflow", "succeeded")
    shown = subprocess.run([sys.executable, "-m", "lib.jobs", "--spec", str(spec_path), "history"], env=env,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert shown.returncode == 0 and "Score Customers" in shown.stdout, shown.stderr
