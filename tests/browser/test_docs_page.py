"""The model server's /docs page in a real headless Chromium, offline: Swagger UI renders every
operation from local assets, and "Try it out" on /predict with the access key gets a 200."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest
from playwright.sync_api import Page

from lib import registry
from lib.config import Settings
from lib.features import TARGET
from lib.serving.app import create_app
from lib.serving.loader import ModelHolder

if TYPE_CHECKING:
    from tests.browser.conftest import PageLog

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

KEY = "browser-test-key"
OPERATIONS = ("/predict", "/invocations", "/explain", "/feedback", "/admin/reload", "/ping", "/version")


@pytest.fixture(scope="module")
def server_url(
    settings: Settings, train_runs, serve: Callable, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The real model server on a live local port, serving a tiny registered champion."""
    s = dataclasses.replace(
        settings,
        user="browser_docs",
        metrics_db_url=f"sqlite:///{tmp_path_factory.mktemp('log') / 'metrics.db'}",
    )
    run = train_runs(s, s.experiment_name)[0]
    registry.promote(s, registry.register_run(s, run.run_id)[0].version)
    holder = ModelHolder(s)
    holder.reload()
    with serve(create_app(s, holder, access_key=KEY)) as url:
        yield url


def test_docs_render_offline_and_try_it_out_predicts(
    page: Page, page_log: PageLog, server_url: str, bank_sample: pd.DataFrame, tmp_path: Path
) -> None:
    page.goto(f"{server_url}/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.locator(".opblock-summary-path").evaluate_all("els => els.map(e => e.dataset.path)")
    assert set(OPERATIONS) <= set(paths), paths

    # Authorize with the access key (the bearer scheme the protected routes name)
    page.locator(".auth-wrapper .authorize").click()
    page.locator(".modal-ux input").first.fill(KEY)
    page.locator(".modal-ux .auth-btn-wrapper .authorize").click()
    page.locator(".modal-ux .btn-done").click()

    record = json.loads(bank_sample.drop(columns=[TARGET]).head(1).to_json(orient="records"))[0]
    operation = page.locator(".opblock-post", has=page.locator('.opblock-summary-path[data-path="/predict"]'))
    operation.locator(".opblock-summary").click()
    operation.locator(".try-out__btn").click()
    operation.locator("textarea.body-param__text").fill(json.dumps({"request": record}))
    with page.expect_response(lambda r: r.url.endswith("/predict") and r.request.method == "POST") as sent:
        operation.locator(".execute").click()
    answer = sent.value
    assert answer.status == 200, answer.text()
    assert answer.request.headers.get("authorization") == f"Bearer {KEY}"
    body = answer.json()
    assert len(body["predictions"]) == 1 and 0.0 < body["predictions"][0]["probability"] < 1.0
    shown = operation.locator(".live-responses-table tbody .response-col_status").first
    shown.wait_for()
    assert shown.inner_text().strip() == "200"

    page.screenshot(path=str(tmp_path / "docs.png"), full_page=True)
    assert (tmp_path / "docs.png").stat().st_size > 0
    assert page_log.problems == []
