"""A mistyped scheduled monitoring check is recorded as failed, not as "an alert fired".

`ok_codes: [0, 2]` counts the check's exit 2 (an alert fired) as success; a usage error must exit
64 so the job runner, the scheduler, the job history and `make demo` see a failure and stop.
"""

from __future__ import annotations

import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from lib.cliargs import EX_USAGE
from lib.config import PROJECT_ROOT
from lib.demo import Step, demo_steps, run_demo
from lib.jobs import history, load_spec, run_chain, run_scheduler
from tests.conftest import make_settings

pytestmark = pytest.mark.integration  # real job processes and a SQLite job history

SPEC = """\
jobs:
  - name: Nightly Monitoring Check
    module: lib.monitoring
    args: [check, --window-hours, "24", --trigger-retrain, --windw-hours, "24"]
    schedule: "0 2 * * *"
    timeout: 2m
    ok_codes: [0, 2]
  - name: Alert Follow-up
    script: followup.py
    depends_on: Nightly Monitoring Check
  - name: Alert Fired
    script: alert.py
    ok_codes: [0, 2]
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "jobs.yaml").write_text(SPEC)
    (tmp_path / "followup.py").write_text("print('follow-up ran')\n")
    (tmp_path / "alert.py").write_text(textwrap.dedent("import sys\nsys.exit(2)\n"))
    monkeypatch.setenv("PYTHONPATH", str(PROJECT_ROOT))  # jobs run in the spec's dir, with our env
    return make_settings(tmp_path), load_spec(tmp_path / "jobs.yaml")


@pytest.mark.slow  # starts a real job process (~2-6 s)
def test_scheduled_check_with_a_bad_flag_is_recorded_failed(project) -> None:
    settings, spec = project
    clock = [datetime(2025, 1, 1, 1, 59)]

    def sleep(seconds: float) -> None:
        clock[0] += timedelta(seconds=seconds)

    assert run_scheduler(settings, spec, max_runs=1, sleep=sleep, now=lambda: clock[0]) == 1
    runs = history(settings)
    assert [(r.job, r.trigger, r.status, r.exit_code) for r in runs] == [
        ("Nightly Monitoring Check", "schedule", "failed", EX_USAGE)
    ]  # and the dependent never ran
    log_text = runs[0].log_path.read_text()
    assert "unrecognized arguments: --windw-hours" in log_text and "Traceback" not in log_text


@pytest.mark.slow  # starts real job processes (~2-6 s)
def test_chained_check_with_a_bad_flag_stops_the_chain(project) -> None:
    settings, spec = project
    result = run_chain(settings, "Nightly Monitoring Check", spec=spec)
    assert not result.ok and result.skipped == ("Alert Follow-up",)
    assert (result.failed.status, result.failed.exit_code) == ("failed", EX_USAGE)
    alert = run_chain(settings, "Alert Fired", spec=spec)  # a real exit 2 is in ok_codes
    assert alert.ok and alert.results[0].exit_code == 2
    assert [(r.job, r.status) for r in history(settings)] == [
        ("Alert Fired", "succeeded"),
        ("Nightly Monitoring Check", "failed"),
    ]


def test_demo_stops_on_a_usage_error_where_an_alert_passes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    settings = make_settings(tmp_path)
    check = demo_steps(settings, "balance", 10)[-1]
    assert check.argv[1:] == ["-m", "lib.monitoring", "check"] and check.ok_codes == (0, 2)
    assert all(EX_USAGE not in step.ok_codes for step in demo_steps(settings, "balance", 10))

    def exits(code: int) -> Step:
        return Step(f"exits {code}", [sys.executable, "-c", f"import sys; sys.exit({code})"], ok_codes=(0, 2))

    report = run_demo(settings, [exits(2), exits(EX_USAGE), exits(0)])
    assert [r.returncode for r in report.results] == [2, EX_USAGE]  # stopped at the usage error
    assert "step 'exits 64' failed with exit code 64" in capsys.readouterr().err
