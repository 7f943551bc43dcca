"""The web app's Explain and Models pages in a real headless Chromium, over a small real project
(`lab_run`: a lake table, champion + previous, a running model server) served by `lab_app`."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from lib.app.server import create_app
from lib.features import TARGET

if TYPE_CHECKING:
    from tests.browser.conftest import LabRun, PageLog

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

WAIT_MS = 60_000


def shown_number(page: Page, selector: str) -> float:
    return float(page.locator(selector).inner_text())


def test_explain_scores_a_customer_and_an_edit_moves_the_probability(
    page: Page, page_log: PageLog, lab_app: str, lab_run: LabRun, tmp_path: Path
) -> None:
    page.goto(f"{lab_app}/explain")
    champion = page.locator("#champion-probability")
    expect(champion).not_to_have_text("–", timeout=WAIT_MS)
    expect(page.locator("#previous-probability")).not_to_have_text("–", timeout=WAIT_MS)
    expect(page.locator("#champion-version")).to_have_text(f"v{lab_run.champion}")
    expect(page.locator("#previous-version")).to_have_text(f"v{lab_run.previous}")
    expect(page.locator("#source-description")).to_contain_text("held-out split")
    expect(page.locator("#champion-threshold")).to_contain_text("tag decision_threshold")
    assert page.locator("#waterfall-champion .waterfalllayer .point").count() > 3  # plotly drew the bars
    before = shown_number(page, "#champion-probability")
    assert 0.0 < before < 1.0
    expect(page.locator("#champion-delta")).to_have_text("+0.000")

    outcome = page.locator("#field-poutcome")
    outcome.select_option("failure" if outcome.input_value() == "success" else "success")
    expect(champion).not_to_have_text(f"{before:.3f}", timeout=WAIT_MS)
    after = shown_number(page, "#champion-probability")
    delta = shown_number(page, "#champion-delta")
    assert delta == pytest.approx(after - before, abs=0.002)
    page.screenshot(path=str(tmp_path / "explain.png"), full_page=True)

    page.locator("#source").select_option("batch")
    expect(page.locator("#source-description")).to_contain_text("latest batch", timeout=WAIT_MS)
    expect(page.locator("#champion-delta")).to_have_text("+0.000", timeout=WAIT_MS)
    assert (tmp_path / "explain.png").stat().st_size > 0
    assert page_log.problems == []


def test_explain_api_matches_the_server_and_names_a_bad_field(lab_app: str, lab_run: LabRun) -> None:
    record = lab_run.holdout.drop(columns=[TARGET]).astype(object).iloc[0].to_dict()
    with httpx.Client(base_url=lab_app, timeout=60) as http:
        answer = http.post("/api/explain/score", json={"record": record})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        bad = http.post("/api/explain/score", json={"record": {**record, "age": "old"}})
        missing = http.post("/api/explain/score", json={"record": {k: v for k, v in record.items() if k != "balance"}})
        wrong_source = http.get("/api/explain/customers", params={"source": "nowhere"})
    with lab_run.client() as client:
        served = client.predict(record)[0]
    champion = body["champion"]
    assert champion["version"] == lab_run.champion and body["previous"]["version"] == lab_run.previous
    assert champion["probability"] == pytest.approx(served["probability"], abs=1e-6)
    assert champion["decision"] == served["prediction"]
    logit = champion["base"] + sum(c["contribution"] for c in champion["contributions"])
    assert logit == pytest.approx(champion["logit"], abs=1e-6)
    assert 1 / (1 + math.exp(-logit)) == pytest.approx(champion["probability"], abs=1e-4)
    assert (bad.status_code, bad.json()["field"]) == (422, "age")
    assert (missing.status_code, missing.json()["field"]) == (422, "balance")
    assert (wrong_source.status_code, wrong_source.json()["field"]) == (422, "source")


def test_models_lists_versions_and_the_test_button_gets_the_servers_answer(
    page: Page, page_log: PageLog, lab_app: str, lab_run: LabRun, tmp_path: Path
) -> None:
    page.goto(f"{lab_app}/models")
    champion_row = page.locator(f'#versions-table tr[data-version="{lab_run.champion}"]')
    expect(champion_row).to_contain_text("champion", timeout=WAIT_MS)
    expect(champion_row).to_contain_text("passed")  # the gate 07 ran against v1
    expect(page.locator(f'#versions-table tr[data-version="{lab_run.previous}"]')).to_contain_text("previous")
    expect(page.locator("#served-version")).to_have_text(f"v{lab_run.champion}", timeout=WAIT_MS)
    expect(page.locator("#economics-summary")).to_contain_text("cut-off", timeout=WAIT_MS)
    assert page.locator("#gains-chart .main-svg").count() > 0

    body = page.locator("#test-body")
    expect(body).not_to_have_value("", timeout=WAIT_MS)
    assert set(json.loads(body.input_value())["request"]) >= {"age", "job", "poutcome"}
    page.locator("#test-send").click()
    response = page.locator("#test-response")
    expect(response).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#test-status")).to_contain_text("HTTP 200")
    prediction = json.loads(response.inner_text())["predictions"][0]
    assert 0.0 < prediction["probability"] < 1.0 and prediction["model_version"] == lab_run.champion

    page.locator(f'#versions-table tr[data-version="{lab_run.previous}"]').click()
    expect(page.locator("#economics-summary")).to_contain_text("has not run", timeout=WAIT_MS)
    page.screenshot(path=str(tmp_path / "models.png"), full_page=True)
    assert (tmp_path / "models.png").stat().st_size > 0
    assert page_log.problems == []


def test_models_says_when_no_server_runs(lab_run: LabRun, tmp_path: Path) -> None:
    """Same project, a run dir no server wrote to: the page says so and the Test button is refused."""
    settings = dataclasses.replace(lab_run.settings, run_dir=tmp_path / "run")
    with TestClient(create_app(settings, access_key="k")) as client:
        server = client.get("/api/models/server").json()
        tested = client.post("/api/models/test", json={"request": {}})
    assert server["running"] is False and "no model server is running" in server["message"]
    assert tested.status_code == 409 and "04_api_deployment.py" in tested.json()["detail"]
