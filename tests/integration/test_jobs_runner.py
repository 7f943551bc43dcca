"""The job runner with tiny real jobs (python files in a temp project): order, failures, history,
locks, timeouts, scheduling and the CLI. No Spark. (Parsing jobs.yaml: tests/unit/test_jobs_spec.py.)"""

import os
import textwrap
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from filelock import FileLock

from lib import jobs
from lib.config import Settings
from lib.jobs import JobError, history, job_lock_path, load_spec, next_runs, parse_spec, run_chain
from lib.jobs import __main__ as jobs_cli
from tests.conftest import make_settings

pytestmark = pytest.mark.integration  # real job processes and a SQLite job history

RECORD = textwrap.dedent(
    """\
    import sys
    from pathlib import Path
    with Path("order.txt").open("a") as fh:
        fh.write(Path(sys.argv[0]).stem + " " + " ".join(sys.argv[1:]) + "\\n")
    print("hello from", sys.argv[0])
    sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    """
)


def make_project(root: Path, spec_yaml: str, scripts: dict[str, str] | None = None) -> tuple[Settings, Path]:
    """A temp project: jobs.yaml plus small scripts next to it; settings rooted there."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("a.py", "b.py", "c.py", "d.py"):
        (root / name).write_text(RECORD)
    for name, code in (scripts or {}).items():
        (root / name).write_text(textwrap.dedent(code))
    spec = root / "jobs.yaml"
    spec.write_text(textwrap.dedent(spec_yaml))
    return make_settings(root), spec


CHAIN = """\
jobs:
  - name: Job A
    script: a.py
  - name: Job B
    script: b.py
    depends_on: Job A
    args: [0]
  - name: Job C
    script: c.py
    depends_on: [Job B]
  - name: Job D
    script: d.py
    depends_on: Job A
    timeout: 1m
"""


def order(root: Path) -> list[str]:
    path = root / "order.txt"
    return [line.split()[0] for line in path.read_text().splitlines()] if path.exists() else []


def test_chain_order_and_history(tmp_path: Path):
    settings, spec_path = make_project(tmp_path, CHAIN)
    spec = load_spec(spec_path)
    assert [j.name for j in spec.chain("Job A")] == ["Job A", "Job B", "Job C", "Job D"]
    assert [j.name for j in spec.chain("Job B")] == ["Job B", "Job C"]

    result = run_chain(settings, "Job A", spec=spec, progress=False)
    assert result.ok and result.failed is None and result.skipped == ()
    assert [r.job for r in result.results] == ["Job A", "Job B", "Job C", "Job D"]
    assert order(tmp_path) == ["a", "b", "c", "d"]

    runs = history(settings)
    assert [r.job for r in runs] == ["Job D", "Job C", "Job B", "Job A"]  # newest first
    assert [r.trigger for r in runs] == ["dependency", "dependency", "dependency", "manual"]
    assert {r.status for r in runs} == {"succeeded"} and {r.exit_code for r in runs} == {0}
    assert len({r.chain_id for r in runs}) == 1
    for r in runs:
        assert r.ended_at >= r.started_at
        assert r.log_path.parent == settings.jobs_log_dir
        assert "hello from" in r.log_path.read_text()
    assert runs[2].command.endswith("b.py 0")


def test_failure_stops_the_chain(tmp_path: Path):
    settings, spec_path = make_project(tmp_path, CHAIN.replace("args: [0]", "args: [3]"))
    result = run_chain(settings, "Job A", spec=load_spec(spec_path), trigger="alert", progress=False)
    assert not result.ok
    assert result.failed is not None and result.failed.job == "Job B"
    assert result.failed.exit_code == 3 and result.failed.status == "failed"
    assert result.skipped == ("Job C", "Job D")
    assert order(tmp_path) == ["a", "b"]
    assert "Job B" in str(result) and str(result.failed.log_path) in str(result)
    runs = history(settings)
    assert [(r.job, r.trigger, r.status, r.exit_code) for r in runs] == [
        ("Job B", "dependency", "failed", 3),
        ("Job A", "alert", "succeeded", 0),
    ]


def test_no_deps_runs_only_that_job(tmp_path: Path):
    settings, spec_path = make_project(tmp_path, CHAIN)
    result = run_chain(settings, "Job B", spec=load_spec(spec_path), with_dependents=False, progress=False)
    assert [r.job for r in result.results] == ["Job B"] and result.ok
    assert order(tmp_path) == ["b"]


def test_module_jobs_and_ok_codes(tmp_path: Path):
    spec_yaml = """\
    jobs:
      - name: Check
        module: checker
        args: [--flag]
        ok_codes: [0, 2]
    """
    code = "import sys\nprint('checked', sys.argv[1:])\nsys.exit(2)\n"
    settings, spec_path = make_project(tmp_path, spec_yaml, {"checker.py": code})
    result = run_chain(settings, "Check", spec=load_spec(spec_path), progress=False)
    assert result.ok and result.results[0].exit_code == 2
    assert "checked ['--flag']" in result.results[0].log_path.read_text()


def test_a_job_cannot_run_twice_at_once(tmp_path: Path):
    spec_yaml = """\
    jobs:
      - name: Slow
        script: slow.py
    """
    code = "import time\nfrom pathlib import Path\nPath('started').touch()\ntime.sleep(3)\n"
    settings, spec_path = make_project(tmp_path, spec_yaml, {"slow.py": code})
    spec = load_spec(spec_path)
    results = []
    worker = threading.Thread(target=lambda: results.append(run_chain(settings, "Slow", spec=spec, progress=False)))
    worker.start()
    deadline = time.monotonic() + 20
    while not (tmp_path / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(JobError, match="'Slow' is already running"):
        run_chain(settings, "Slow", spec=spec, progress=False)
    worker.join()
    assert results[0].ok
    assert len(history(settings)) == 1  # the refused attempt started nothing

    with (
        FileLock(job_lock_path(settings, spec.get("Slow"))),
        pytest.raises(JobError, match="already running"),
    ):
        run_chain(settings, "Slow", spec=spec, progress=False)


def test_timeout_kills_the_process_group(tmp_path: Path):
    spec_yaml = """\
    jobs:
      - name: Hung
        script: hung.py
        timeout: 1.5
      - name: After
        script: a.py
        depends_on: Hung
    """
    code = """\
    import subprocess, sys, time
    from pathlib import Path
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    Path("child.pid").write_text(str(child.pid))
    print("waiting forever", flush=True)
    time.sleep(120)
    """
    settings, spec_path = make_project(tmp_path, spec_yaml, {"hung.py": code})
    start = time.monotonic()
    result = run_chain(settings, "Hung", spec=load_spec(spec_path), progress=False)
    assert time.monotonic() - start < 60
    assert result.failed is not None and result.failed.status == "timeout"
    assert result.skipped == ("After",)
    assert history(settings)[0].status == "timeout"
    assert "killed after the 2s timeout" in result.failed.log_path.read_text()
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "the job's child process survived the timeout"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")


def test_run_errors_name_the_problem(tmp_path: Path):
    settings, spec_path = make_project(tmp_path, CHAIN.replace("script: c.py", "script: missing.py"))
    spec = load_spec(spec_path)
    with pytest.raises(JobError, match="missing.py not found"):
        run_chain(settings, "Job A", spec=spec, progress=False)
    assert order(tmp_path) == []  # checked before anything ran
    with pytest.raises(JobError, match="no job named 'Nope'.*Job A"):
        run_chain(settings, "Nope", spec=spec, progress=False)
    with pytest.raises(JobError, match="trigger 'cron'"):
        run_chain(settings, "Job D", trigger="cron", spec=spec, progress=False)
    with pytest.raises(JobError, match="not found"):
        load_spec(tmp_path / "nope.yaml")


def test_scheduler_runs_scheduled_chains_when_due(tmp_path: Path):
    spec_yaml = """\
    jobs:
      - name: Nightly
        script: a.py
        schedule: "0 2 * * *"
      - name: Follow
        script: b.py
        depends_on: Nightly
      - name: Hourly
        script: c.py
        schedule: "30 * * * *"
      - name: Manual
        script: d.py
    """
    settings, spec_path = make_project(tmp_path, spec_yaml)
    spec = load_spec(spec_path)
    start = datetime(2025, 1, 1, 1, 0)
    assert [(t, j.name) for t, j in next_runs(spec, start)] == [
        (datetime(2025, 1, 1, 1, 30), "Hourly"),
        (datetime(2025, 1, 1, 2, 0), "Nightly"),
    ]
    clock = [start]

    def sleep(seconds: float) -> None:
        clock[0] += timedelta(seconds=seconds)

    failures = jobs.run_scheduler(settings, spec, max_runs=3, sleep=sleep, now=lambda: clock[0])
    assert failures == 0
    assert order(tmp_path) == ["c", "a", "b", "c"]  # 01:30 hourly, 02:00 nightly chain, 02:30 hourly
    assert [(r.job, r.trigger) for r in reversed(history(settings))] == [
        ("Hourly", "schedule"), ("Nightly", "schedule"), ("Follow", "dependency"), ("Hourly", "schedule"),
    ]  # fmt: skip
    with pytest.raises(JobError, match="no job .* has a schedule"):
        jobs.run_scheduler(settings, parse_spec({"jobs": [{"name": "M", "script": "a.py"}]}), max_runs=1)


def test_cli_run_history_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    settings, spec_path = make_project(tmp_path, CHAIN.replace("args: [0]", "args: [4]"))
    monkeypatch.setenv("PROJECT_ROOT", str(tmp_path))
    monkeypatch.setenv("JOBS_SPEC", str(spec_path))
    assert jobs_cli.main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "Job B" in listing and "python b.py 4" in listing and "manual" in listing

    assert jobs_cli.main(["run", "Job A"]) == 1
    out = capsys.readouterr()
    assert "error: job 'Job B' failed (exit code 4)" in out.err
    assert "not run: Job C, Job D" in out.err and "hello from b.py" in out.err
    failed = history(settings)[0]
    assert str(failed.log_path) in out.err

    assert jobs_cli.main(["history"]) == 0
    table = capsys.readouterr().out
    assert "failed" in table and "succeeded" in table and "manual" in table

    assert jobs_cli.main(["logs", str(failed.run_id)]) == 0
    assert "hello from b.py" in capsys.readouterr().out
    assert jobs_cli.main(["logs", "999"]) == 1
    assert "no job run 999" in capsys.readouterr().err
    assert jobs_cli.main(["run", "Job C", "--no-deps"]) == 0
    assert order(tmp_path)[-1] == "c"
