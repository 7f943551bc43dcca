"""The Airflow DAG file names the same jobs and dependencies as jobs.yaml, checked without Airflow.

The DAG file is executed for real against a minimal recording stand-in for the three Airflow
names it uses (DAG, BashOperator and `>>`), in both the Airflow 2 and Airflow 3 import layouts.
"""

import ast
import runpy
import shlex
import sys
import types
from datetime import timedelta
from pathlib import Path

import pytest

from lib.config import PROJECT_ROOT
from lib.jobs import load_spec, parse_spec
from lib.jobs.airflow import DAG_PREFIX, airflow_dags, airflow_tasks

DAG_FILE = PROJECT_ROOT / "dags" / "bank_marketing_mlops.py"


class RecordingDag:
    active: "RecordingDag | None" = None

    def __init__(self, dag_id: str, **kwargs) -> None:
        self.dag_id = dag_id
        self.kwargs = kwargs
        self.tasks: dict[str, RecordingBash] = {}

    def __enter__(self) -> "RecordingDag":
        RecordingDag.active = self
        return self

    def __exit__(self, *exc) -> None:
        RecordingDag.active = None


class RecordingBash:
    def __init__(self, task_id: str, bash_command: str, execution_timeout: timedelta) -> None:
        assert RecordingDag.active is not None, "operator created outside a DAG"
        self.task_id = task_id
        self.bash_command = bash_command
        self.execution_timeout = execution_timeout
        self.upstream: set[str] = set()
        RecordingDag.active.tasks[task_id] = self

    def __rshift__(self, other: "RecordingBash") -> "RecordingBash":
        other.upstream.add(self.task_id)
        return other


def install_airflow(monkeypatch: pytest.MonkeyPatch, layout: str) -> None:
    modules = {"airflow": types.ModuleType("airflow")}
    modules["airflow"].DAG = RecordingDag
    bash_module = "airflow.providers.standard.operators.bash" if layout == "airflow3" else "airflow.operators.bash"
    parts = bash_module.split(".")
    for i in range(2, len(parts) + 1):
        modules[".".join(parts[:i])] = types.ModuleType(".".join(parts[:i]))
    modules[bash_module].BashOperator = RecordingBash
    for name, module in modules.items():
        module.__path__ = []  # a package, so submodule imports resolve through sys.modules
        monkeypatch.setitem(sys.modules, name, module)
    if layout == "airflow2":
        monkeypatch.delitem(sys.modules, "airflow.providers", raising=False)


def load_dags(monkeypatch: pytest.MonkeyPatch, layout: str = "airflow3") -> dict[str, RecordingDag]:
    install_airflow(monkeypatch, layout)
    namespace = runpy.run_path(str(DAG_FILE))
    return {v.dag_id: v for v in namespace.values() if isinstance(v, RecordingDag)}


@pytest.mark.parametrize("layout", ["airflow2", "airflow3"])
def test_dag_matches_jobs_yaml(monkeypatch: pytest.MonkeyPatch, layout: str):
    monkeypatch.setenv("PROJECT_ROOT", str(PROJECT_ROOT))
    monkeypatch.delenv("JOBS_SPEC", raising=False)
    spec = load_spec(PROJECT_ROOT / "jobs.yaml")
    dags = load_dags(monkeypatch, layout)
    assert list(dags) == [DAG_PREFIX]
    dag = dags[DAG_PREFIX]
    assert dag.kwargs["schedule"] is None and dag.kwargs["catchup"] is False

    by_task = {job.slug: job for job in spec.jobs}
    assert set(dag.tasks) == set(by_task)
    for task_id, op in dag.tasks.items():
        job = by_task[task_id]
        assert op.upstream == {by_task_name.slug for by_task_name in map(spec.get, job.depends_on)}
        assert op.execution_timeout == timedelta(seconds=job.timeout)
        cd, _, command = op.bash_command.partition(" && ")
        assert cd == f"cd {shlex.quote(str(PROJECT_ROOT))}"
        assert shlex.split(command)[1:] == [job.script, *job.args]
    assert dag.tasks["retrain_models"].upstream == {"new_batch"}
    assert dag.tasks["redeploy_model"].upstream == {"retrain_models"}
    assert dag.tasks["score_customers"].upstream == {"redeploy_model"}


def test_every_root_job_gets_its_own_scheduled_dag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    text = (PROJECT_ROOT / "jobs.yaml").read_text()
    example = "\n".join(line.removeprefix("#") for line in text[text.index("#  - name:") :].splitlines())
    spec_path = tmp_path / "jobs.yaml"
    spec_path.write_text(text + "\n" + example + "\n")
    monkeypatch.setenv("JOBS_SPEC", str(spec_path))
    dags = load_dags(monkeypatch)
    nightly = f"{DAG_PREFIX}_nightly_monitoring_check"
    assert sorted(dags) == [DAG_PREFIX, nightly]
    assert dags[nightly].kwargs["schedule"] == "0 2 * * *"
    assert list(dags[nightly].tasks) == ["nightly_monitoring_check"]
    command = dags[nightly].tasks["nightly_monitoring_check"].bash_command
    assert command.startswith(f"{{ cd {shlex.quote(str(tmp_path))} && ")
    assert "-m lib.monitoring check --window-hours 24 --trigger-retrain" in command
    assert "case $rc in 0|2) exit 0;;" in command  # an alert that started retraining is no failure


def test_airflow_tasks_keep_the_graph():
    spec = parse_spec(
        {"jobs": [
            {"name": "Extract", "script": "e.py"},
            {"name": "Load Data", "script": "l.py", "depends_on": "Extract", "args": ["--x", "a b"],
             "timeout": "5m"},
            {"name": "Report", "module": "lib.report", "depends_on": ["Extract", "Load Data"]},
        ]}
    )  # fmt: skip
    tasks = {t.task_id: t for t in airflow_tasks(spec, Path("/srv/my project"), python="/venv/bin/python")}
    assert tasks["load_data"].upstream == ("extract",) and tasks["load_data"].timeout_s == 300
    assert tasks["load_data"].bash_command == "cd '/srv/my project' && /venv/bin/python l.py --x 'a b'"
    assert tasks["report"].upstream == ("extract", "load_data")
    assert tasks["report"].bash_command.endswith("/venv/bin/python -m lib.report")
    [dag] = airflow_dags(spec, Path("/srv"), python="python")
    assert dag.dag_id == DAG_PREFIX and [t.task_id for t in dag.tasks] == ["extract", "load_data", "report"]


def test_airflow_is_imported_only_by_the_dag_file():
    for path in [*PROJECT_ROOT.glob("lib/**/*.py"), *PROJECT_ROOT.glob("*.py")]:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] == "airflow" for n in names), path
