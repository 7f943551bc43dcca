"""The web app opens MLflow's stores once, safely, when several request threads need them at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lib import registry
from lib.app.stores import open_mlflow
from tests.conftest import make_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # MLflow creates a fresh store: ~7 s


def test_first_use_from_many_threads_opens_the_stores_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, user="stores")  # a fresh MLflow database: its schema check runs now
    start = threading.Barrier(4)
    failures: list[BaseException] = []

    def first_request() -> None:
        start.wait()
        try:
            open_mlflow(settings)
            assert registry.list_versions(settings) == []
        except BaseException as exc:  # collected: the test reports every thread's failure
            failures.append(exc)

    threads = [threading.Thread(target=first_request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    assert (tmp_path / "mlflow.db").is_file()
