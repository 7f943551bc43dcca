"""The Monitoring and Jobs pages' JSON API in-process (TestClient) over real stores: a logged week of
two registered versions, and a temp jobs.yaml whose quick chain really runs in the background."""

from __future__ import annotations

import dataclasses
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from lib.app.server import create_app
from lib.config import Settings
from lib.jobs import JobHistory
from lib.monitoring.report import build_report
from tests.integration.test_dashboard_notebook import PER_VERSION, fill_log

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # registered models, a logged week, job processes

KEY = "test-key-0123456789"


@pytest.fixture
def logged(registered_model: tuple[Settings, list[str]], bank_sample: pd.DataFrame) -> Settings:
    settings, versions = registered_model
    fill_log(settings, versions, bank_sample)
    return settings


def test_monitoring_overview_matches_the_report(logged: Settings) -> None:
    client = TestClient(create_app(logged, access_key=KEY))
    page = client.get("/monitoring")
    assert page.status_code == 200 and "monitoring.start(" in page.text

    data = client.get("/api/monitoring/overview", params={"hours": 24 * 30}).json()
    assert data["champion"] == "2" and data["logged"] == 2 * PER_VERSION
    assert sum(t["requests"] for t in data["totals"]) == 2 * PER_VERSION
    assert [v["version"] for v in data["versions"]] == ["1", "2"]
    assert [r["version"] for r in data["redeploys"]] == ["2"]
    assert sum(sum(s["requests"]) for s in data["series"]) == 2 * PER_VERSION
    assert data["range"]["bucket_seconds"] == 43200  # 30 days in ~60 buckets

    day = client.get("/api/monitoring/overview", params={"hours": 24}).json()
    report = build_report(logged, window_hours=24)
    assert day["window"]["requests"] == len(report.window)
    assert {a["rule"]: a["status"] for a in day["alerts"]} == {a.name: a.status for a in report.alerts}
    psi = {d["feature"]: d["psi"] for d in day["drift"]}
    assert psi["balance"] == pytest.approx(report.drift.set_index("feature").loc["balance", "psi"])

    assert client.get("/api/monitoring/overview", params={"hours": 0}).status_code == 422


def test_monitoring_without_traffic_is_a_409_naming_the_script(table_settings: Settings) -> None:
    client = TestClient(create_app(table_settings, access_key=KEY))
    answer = client.get("/api/monitoring/overview")
    assert answer.status_code == 409 and "08_model_simulation.py" in answer.json()["detail"]


@pytest.fixture
def quick_jobs(table_settings: Settings, tmp_path: Path) -> Settings:
    (tmp_path / "first.py").write_text("import time\nprint('first job ran')\ntime.sleep(1)\n")
    (tmp_path / "second.py").write_text("print('second job ran')\n")
    (tmp_path / "jobs.yaml").write_text(textwrap.dedent("""\
        jobs:
          - name: First
            script: first.py
            timeout: 60
          - name: Second
            script: second.py
            depends_on: First
            timeout: 60
        """))  # fmt: skip
    return dataclasses.replace(table_settings, jobs_spec=tmp_path / "jobs.yaml", jobs_log_dir=tmp_path / "logs",
                               metrics_db_url=f"sqlite:///{tmp_path / 'metrics.db'}")  # fmt: skip


def test_jobs_start_needs_the_key_and_runs_the_chain_in_the_background(quick_jobs: Settings) -> None:
    client = TestClient(create_app(quick_jobs, access_key=KEY))
    assert client.get("/jobs").status_code == 200
    spec = client.get("/api/jobs/spec").json()
    assert [j["name"] for j in spec["jobs"]] == ["First", "Second"]
    assert spec["chains"]["First"] == ["First", "Second"]

    missing = client.post("/api/jobs/start", json={"job": "First"})
    assert missing.status_code == 401 and "access key" in missing.json()["detail"]
    assert "Authorization: Bearer" in missing.json()["detail"]
    wrong = client.post("/api/jobs/start", json={"job": "First"}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and "wrong access key" in wrong.json()["detail"]
    assert JobHistory(quick_jobs.metrics_db_url).runs() == []

    unknown = client.post("/api/jobs/start", json={"job": "Nope", "accessKey": KEY})
    assert unknown.status_code == 409 and "no job named 'Nope'" in unknown.json()["detail"]

    started = client.post("/api/jobs/start", json={"job": "First"}, headers={"Authorization": f"Bearer {KEY}"})
    assert started.status_code == 202, started.text
    launched = started.json()
    assert launched["chain"] == ["First", "Second"] and launched["after_run_id"] == 0

    deadline = time.monotonic() + 120
    runs: list[dict] = []
    while time.monotonic() < deadline:
        runs = client.get("/api/jobs/runs", params={"after": launched["after_run_id"]}).json()["runs"]
        if len(runs) == 2 and all(r["status"] != "running" for r in runs):
            break
        time.sleep(0.5)
    assert [(r["job"], r["status"], r["trigger"]) for r in runs] == [
        ("Second", "succeeded", "dependency"),
        ("First", "succeeded", "manual"),
    ]
    log = client.get(f"/api/jobs/runs/{runs[1]['run_id']}/log", params={"tail": 5}).json()
    assert "first job ran" in log["lines"] and not log["missing"]
    assert client.get("/api/jobs/runs/9999/log").status_code == 404


def test_a_chain_with_a_running_job_is_refused_before_starting(quick_jobs: Settings) -> None:
    from filelock import FileLock

    from lib.jobs import job_lock_path, load_spec

    client = TestClient(create_app(quick_jobs, access_key=KEY))
    second = load_spec(quick_jobs.jobs_spec).get("Second")
    quick_jobs.jobs_log_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(job_lock_path(quick_jobs, second)):
        answer = client.post("/api/jobs/start", json={"job": "First", "accessKey": KEY})
    assert answer.status_code == 409 and "'Second' is already running" in answer.json()["detail"]
    assert JobHistory(quick_jobs.metrics_db_url).runs() == []
