"""The web app's Explain and Models pages in a real headless Chromium, over a small real project."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from tests.browser.conftest import LabRun

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]


def test_fixture_serves_the_project(lab_run: LabRun, lab_app: str) -> None:
    with lab_run.client() as client:
        assert client.version()["model_version"] == lab_run.champion
    assert httpx.get(f"{lab_app}/explain", timeout=10).status_code == 200
