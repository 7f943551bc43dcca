"""The web app's Monitoring and Jobs pages in a real headless Chromium, over a small real project
(`lab_run`: champion + previous, a running model server, labelled predictions) served by `lab_app`.

Monitoring must show new traffic after its own refresh (no reload) when real requests reach the
model server; Jobs must refuse to start a chain without the access key and, with it, run a quick
real chain (a temp JOBS_SPEC) whose progress the page shows.
"""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

from lib.features import TARGET
from lib.jobs import JobHistory
from tests.browser.conftest import app_process

if TYPE_CHECKING:
    from tests.browser.conftest import LabRun, PageLog

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

WAIT_MS = 60_000
REFRESH_WAIT_MS = 90_000  # the page refreshes every 15 s; the server's log writer flushes within a second
NEW_REQUESTS = 7


def shown_int(page: Page, selector: str) -> int:
    return int(page.locator(selector).inner_text().replace(",", ""))


def test_monitoring_shows_the_log_and_new_traffic_after_its_refresh(
    page: Page, page_log: PageLog, lab_app: str, lab_run: LabRun, tmp_path: Path
) -> None:
    page.goto(f"{lab_app}/monitoring")
    expect(page.locator("body")).to_have_attribute("data-loaded", "1", timeout=WAIT_MS)
    expect(page.locator("#champion")).to_have_text(f"v{lab_run.champion}")
    before = shown_int(page, "#logged")
    assert before >= lab_run.predictions
    assert shown_int(page, "#requests") >= lab_run.predictions
    assert float(page.locator("#accuracy").inner_text()) >= 0  # labelled rows exist: a number, not "–"
    expect(page.locator("#alerts tbody tr")).to_have_count(4)
    expect(page.locator("#alerts tr[data-rule='accuracy'] td").nth(1)).not_to_have_text("no-data")
    for chart in ("traffic", "latency", "quality", "drift"):
        expect(page.locator(f"#chart-{chart} .main-svg").first).to_be_visible()
    expect(page.locator("#chart-drift .ytick").first).to_be_attached()  # one bar per profiled feature
    page.screenshot(path=str(tmp_path / "monitoring.png"), full_page=True)

    rows = lab_run.holdout.iloc[:NEW_REQUESTS].drop(columns=[TARGET]).astype(object).to_dict("records")
    with lab_run.client() as client:
        answers = client.predict(rows, event_time=datetime.now(timezone.utc))
    assert len(answers) == NEW_REQUESTS
    # No reload: the page's own timer fetches again and the logged total grows by the new requests.
    page.wait_for_function(
        f"Number(document.getElementById('logged').textContent.replace(/,/g, '')) >= {before + NEW_REQUESTS}",
        timeout=REFRESH_WAIT_MS,
    )
    assert int(page.locator("body").get_attribute("data-loaded")) > 1

    page.select_option("#window-hours", "1.0")
    expect(page.locator("body")).to_have_attribute("data-hours", "1", timeout=WAIT_MS)
    assert shown_int(page, "#requests") < shown_int(page, "#logged")  # the last hour only
    page.screenshot(path=str(tmp_path / "monitoring-refreshed.png"), full_page=True)
    assert page_log.problems == []


QUICK_SPEC = """\
jobs:
  - name: Quick Step
    description: prints and sleeps a little, so the page sees it running
    script: quick_step.py
    timeout: 60
  - name: Quick Follow
    script: quick_follow.py
    depends_on: Quick Step
    timeout: 60
"""


def test_jobs_refuses_without_the_key_and_runs_a_chain_with_it(
    page: Page, page_log: PageLog, lab_run: LabRun, tmp_path: Path
) -> None:
    (tmp_path / "quick_step.py").write_text("import time\nprint('quick step: working')\ntime.sleep(3)\n")
    (tmp_path / "quick_follow.py").write_text("print('quick follow: done')\n")
    (tmp_path / "jobs.yaml").write_text(textwrap.dedent(QUICK_SPEC))
    env = {**lab_run.env, "JOBS_SPEC": str(tmp_path / "jobs.yaml"), "JOBS_LOG_DIR": str(tmp_path / "logs")}
    history = JobHistory(lab_run.settings.metrics_db_url)
    ours = lambda: [r for r in history.runs(limit=None) if r.job.startswith("Quick")]  # noqa: E731

    with app_process(env, tmp_path) as url:
        page.goto(f"{url}/jobs")
        expect(page.locator("#spec tbody tr")).to_have_count(2, timeout=WAIT_MS)
        expect(page.locator("#spec tbody")).to_contain_text("python quick_step.py")
        page.select_option("#start-job", "Quick Step")

        page.click("#start-button")  # no key
        expect(page.locator("#start-status")).to_contain_text("needs the access key", timeout=WAIT_MS)
        page.fill("#access-key", "not-the-key")
        page.click("#start-button")
        expect(page.locator("#start-status")).to_contain_text("wrong access key", timeout=WAIT_MS)
        assert ours() == []
        page.screenshot(path=str(tmp_path / "jobs-refused.png"), full_page=True)

        page.fill("#access-key", lab_run.settings.access_key_file.read_text().strip())
        page.click("#start-button")
        expect(page.locator("#progress")).to_be_visible(timeout=WAIT_MS)
        expect(page.locator("#progress-title")).to_contain_text("Quick Step → Quick Follow")
        expect(page.locator("#progress-jobs li").first).to_contain_text("Quick Step: running", timeout=WAIT_MS)
        expect(page.locator("#progress")).to_have_attribute("data-state", "succeeded", timeout=WAIT_MS)
        expect(page.locator("#progress-state")).to_contain_text("2/2 jobs done")
        expect(page.locator("#runs tbody")).to_contain_text("Quick Follow")
        page.locator("#runs tbody tr", has_text="Quick Step").first.click()
        expect(page.locator("#log")).to_contain_text("quick step: working", timeout=WAIT_MS)
        page.screenshot(path=str(tmp_path / "jobs.png"), full_page=True)

    assert [(r.job, r.status, r.trigger) for r in ours()] == [
        ("Quick Follow", "succeeded", "dependency"),
        ("Quick Step", "succeeded", "manual"),
    ]
    # The refused starts answered 401 and 403, which Chromium reports as failed resource loads.
    refused = [e for e in page_log.console_errors if "status of 401" in e or "status of 403" in e]
    assert len(refused) == 2
    assert [p for p in page_log.problems if p not in refused] == []
