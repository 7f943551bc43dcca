"""The Airflow tasks' bash commands, run for real: ok_codes map to exit 0 the way Airflow needs.
(The DAG's shape against jobs.yaml is checked without processes in tests/unit/test_dag.py.)"""

import subprocess
import sys
from pathlib import Path

import pytest

from lib.jobs import parse_spec
from lib.jobs.airflow import airflow_tasks

pytestmark = pytest.mark.integration  # runs bash and a Python job process


@pytest.mark.parametrize(("exit_code", "airflow_exit"), [(0, 0), (2, 0), (1, 1), (3, 3), (64, 64)])
def test_ok_codes_count_as_success_in_airflow_too(tmp_path: Path, exit_code: int, airflow_exit: int):
    """Airflow fails a bash task on any non-zero exit, so the command itself maps ok_codes to 0."""
    (tmp_path / "job.py").write_text(f"import sys; sys.exit({exit_code})\n")
    spec = parse_spec({"jobs": [{"name": "Check", "script": "job.py", "ok_codes": [0, 2]}]})
    [task] = airflow_tasks(spec, tmp_path, python=sys.executable)
    assert subprocess.run(["bash", "-c", task.bash_command]).returncode == airflow_exit
