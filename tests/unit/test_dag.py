"""The Airflow DAG file names the same jobs and dependencies as jobs.yaml, checked without Airflow.

The DAG file is executed for real against a minimal recording stand-in for the Airflow names it
uses (DAG, BashOperator, `>>` and pendulum's timezones), in both the Airflow 2 and Airflow 3 import
layouts. tests/services/test_airflow.py runs it in a real Airflow.
"""

import ast
import runpy
import shlex
import sys
import types
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from lib.config import PROJECT_ROOT
from lib.jobs import JobError, load_spec, next_runs, parse_spec
from lib.jobs.airflow import DAG_PREFIX, TIMEOUT_MARGIN_S, airflow_dags, airflow_tasks

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
    pendulum = modules["pendulum"] = types.ModuleType("pendulum")
    pendulum.timezone = lambda name: ("tz", name)
    pendulum.local_timezone = lambda: ("tz", "local")
    pendulum.datetime = lambda *args, tz: ("datetime", args, tz)
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
    assert sorted(dags) == [DAG_PREFIX, f"{DAG_PREFIX}_score_customers"]
    dag = dags[DAG_PREFIX]
    assert dag.kwargs["schedule"] is None and dag.kwargs["catchup"] is False

    by_task = {job.slug: job for job in spec.jobs}
    assert set(dag.tasks) == set(by_task)
    for task_id, op in dag.tasks.items():
        job = by_task[task_id]
        assert op.upstream == {by_task_name.slug for by_task_name in map(spec.get, job.depends_on)}
        assert op.execution_timeout == timedelta(seconds=job.timeout + TIMEOUT_MARGIN_S)
        cd, _, command = op.bash_command.partition(" && ")
        assert cd == f"cd {shlex.quote(str(PROJECT_ROOT))}"
        spec_file = str(PROJECT_ROOT / "jobs.yaml")
        assert shlex.split(command)[1:] == ["-m", "lib.jobs", "--spec", spec_file, "run", job.name, "--no-deps",
                                            "--trigger", "airflow"]  # fmt: skip
    assert dag.tasks["retrain_models"].upstream == {"new_batch"}
    assert dag.tasks["redeploy_model"].upstream == {"retrain_models"}
    assert dag.tasks["score_customers"].upstream == {"redeploy_model"}


def test_a_scheduled_job_inside_the_chain_gets_a_nightly_dag_of_its_own(monkeypatch: pytest.MonkeyPatch):
    """Score Customers runs after Redeploy Model and, on its cron, alone: as `python -m lib.jobs schedule` runs it."""
    monkeypatch.setenv("PROJECT_ROOT", str(PROJECT_ROOT))
    monkeypatch.delenv("JOBS_SPEC", raising=False)
    spec = load_spec(PROJECT_ROOT / "jobs.yaml")
    job = spec.get("Score Customers")
    assert job.depends_on == ("Redeploy Model",) and job.schedule
    nightly = load_dags(monkeypatch)[f"{DAG_PREFIX}_score_customers"]
    assert nightly.kwargs["schedule"] == job.schedule and nightly.kwargs["catchup"] is False
    assert list(nightly.tasks) == ["score_customers"] and nightly.tasks["score_customers"].upstream == set()
    command = nightly.tasks["score_customers"].bash_command
    assert command.endswith("run 'Score Customers' --no-deps --trigger airflow")  # a row in lib.jobs history
    # the scheduler fires the same job on the same cron, in the same timezone rule
    assert [j.name for _, j in next_runs(spec, datetime(2026, 1, 10, tzinfo=timezone.utc))] == ["Score Customers"]


def test_a_scheduled_job_keeps_its_dependents_in_its_own_dag():
    spec = parse_spec(
        {"jobs": [
            {"name": "Extract", "script": "e.py"},
            {"name": "Score", "script": "s.py", "depends_on": "Extract", "schedule": "0 4 * * *"},
            {"name": "Report", "script": "r.py", "depends_on": "Score"},
        ]},
        path=Path("/srv/jobs.yaml"),
    )  # fmt: skip
    chain, nightly = airflow_dags(spec, python="python")
    assert chain.dag_id == DAG_PREFIX and chain.schedule is None and len(chain.tasks) == 3
    assert nightly.dag_id == f"{DAG_PREFIX}_score" and nightly.schedule == "0 4 * * *"
    assert [(t.task_id, t.upstream) for t in nightly.tasks] == [("score", ()), ("report", ("score",))]


def test_every_root_job_gets_its_own_scheduled_dag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    text = (PROJECT_ROOT / "jobs.yaml").read_text()
    example = "\n".join(line.removeprefix("#") for line in text[text.index("#  - name:") :].splitlines())
    spec_path = tmp_path / "jobs.yaml"
    spec_path.write_text(text + "\n" + example + "\n")
    monkeypatch.setenv("JOBS_SPEC", str(spec_path))
    dags = load_dags(monkeypatch)
    nightly = f"{DAG_PREFIX}_nightly_monitoring_check"
    assert sorted(dags) == sorted([DAG_PREFIX, f"{DAG_PREFIX}_score_customers", nightly])
    assert dags[nightly].kwargs["schedule"] == "0 2 * * *"
    assert list(dags[nightly].tasks) == ["nightly_monitoring_check"]
    command = dags[nightly].tasks["nightly_monitoring_check"].bash_command
    # the runner runs the job in the spec's directory and maps its ok_codes (0, 2) to exit 0
    assert command.endswith(f"--spec {spec_path} run 'Nightly Monitoring Check' --no-deps --trigger airflow")


def test_airflow_tasks_keep_the_graph():
    spec = parse_spec(
        {"jobs": [
            {"name": "Extract", "script": "e.py"},
            {"name": "Load Data", "script": "l.py", "depends_on": "Extract", "args": ["--x", "a b"],
             "timeout": "5m"},
            {"name": "Report", "module": "lib.report", "depends_on": ["Extract", "Load Data"]},
        ]},
        path=Path("/srv/my project/jobs.yaml"),
    )  # fmt: skip
    tasks = {t.task_id: t for t in airflow_tasks(spec, python="/venv/bin/python", code_root=Path("/srv/code"))}
    assert tasks["load_data"].upstream == ("extract",) and tasks["load_data"].timeout_s == 300 + TIMEOUT_MARGIN_S
    assert tasks["load_data"].bash_command == (
        "cd /srv/code && /venv/bin/python -m lib.jobs --spec '/srv/my project/jobs.yaml' run 'Load Data' --no-deps "
        "--trigger airflow"
    )
    assert tasks["report"].upstream == ("extract", "load_data")
    [dag] = airflow_dags(spec, python="python")
    assert dag.dag_id == DAG_PREFIX and [t.task_id for t in dag.tasks] == ["extract", "load_data", "report"]
    with pytest.raises(JobError, match="load the spec from a file"):
        airflow_tasks(parse_spec({"jobs": [{"name": "E", "script": "e.py"}]}))


SCHEDULED = "jobs:\n  - name: Score\n    script: s.py\n    schedule: '30 3 * * *'\n"


def test_the_dag_and_the_scheduler_read_cron_in_the_same_timezone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """jobs.yaml's `timezone` is the one definition: the DAG's start_date carries it, the scheduler fires in it."""
    spec_path = tmp_path / "jobs.yaml"
    spec_path.write_text("timezone: America/New_York\n" + SCHEDULED)
    monkeypatch.setenv("JOBS_SPEC", str(spec_path))
    [dag] = load_dags(monkeypatch).values()
    assert dag.kwargs["schedule"] == "30 3 * * *"
    assert dag.kwargs["start_date"] == ("datetime", (2024, 1, 1), ("tz", "America/New_York"))
    # 03:30 in New York (EST, UTC-5 in January) is 08:30 UTC, whatever the machine's own timezone
    [(when, job)] = next_runs(load_spec(spec_path), datetime(2026, 1, 10, 0, 0, tzinfo=timezone.utc))
    assert job.name == "Score" and when == datetime(2026, 1, 10, 8, 30, tzinfo=timezone.utc)
    [(summer, _)] = next_runs(load_spec(spec_path), datetime(2026, 7, 10, 0, 0, tzinfo=timezone.utc))
    assert summer == datetime(2026, 7, 10, 7, 30, tzinfo=timezone.utc)  # EDT, UTC-4: cron follows DST


def test_without_a_timezone_both_use_local_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    spec_path = tmp_path / "jobs.yaml"
    spec_path.write_text(SCHEDULED)
    monkeypatch.setenv("JOBS_SPEC", str(spec_path))
    [dag] = load_dags(monkeypatch).values()
    assert dag.kwargs["start_date"] == ("datetime", (2024, 1, 1), ("tz", "local"))
    spec = load_spec(spec_path)
    assert spec.tzinfo() is None
    [(when, _)] = next_runs(spec, datetime(2026, 1, 10, 0, 0))  # naive: the machine's local time, like cron
    assert when == datetime(2026, 1, 10, 3, 30)


def test_an_unknown_timezone_is_rejected():
    with pytest.raises(JobError, match="'Mars/Olympus' is not an IANA timezone name"):
        parse_spec({"timezone": "Mars/Olympus", "jobs": [{"name": "E", "script": "e.py"}]})


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
