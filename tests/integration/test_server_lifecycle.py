"""The deployment lifecycle against a real server process on a free port, while a client thread
keeps sending requests: deploy (04), rerun, promote + hot reload, a rejected challenger (07 exits
3), a gated redeploy, rollback (07 --rollback), status/logs/stop. No request may fail."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest

from lib import registry
from lib.config import PROJECT_ROOT, Settings
from lib.features import TARGET
from lib.metrics_store import MetricsStore
from lib.registry import CHALLENGER, PREVIOUS
from lib.serving import deploy, service
from lib.serving.client import EndpointError, ServingClient, endpoint, log_path

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # ~1 min: trains, deploys, redeploys under load

WEAK = [{"max_depth": 1, "num_boost_round": 3, "early_stopping_rounds": 3}]
MEDIUM = [{"max_depth": 3, "num_boost_round": 15}]
STRONG = [{"max_depth": 4, "learning_rate": 0.05, "num_boost_round": 200, "early_stopping_rounds": 30}]


def run_script(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ, "PROJECT_ROOT": str(settings.root), "PROJECT_OWNER": settings.user, "SERVE_PORT": "0",
        "SPARK_MASTER": "local[1]", "SPARK_CONF_SPARK_DRIVER_MEMORY": "1g",
    }  # fmt: skip
    return subprocess.run(
        [sys.executable, *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600
    )


class Traffic(threading.Thread):
    """One client sending single-record predictions back to back until stopped."""

    def __init__(self, url: str, key: str, record: dict) -> None:
        super().__init__(daemon=True)
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        self.body = {"request": record}
        self.halt = threading.Event()
        self.versions: Counter[str] = Counter()
        self.order: list[str] = []
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                answer = self.http.post("/predict", json=self.body)
            except httpx.HTTPError as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
                continue
            if answer.status_code != 200:
                self.failures.append(f"{answer.status_code}: {answer.text[:200]}")
                continue
            version = answer.json()["predictions"][0]["model_version"]
            self.versions[version] += 1
            if not self.order or self.order[-1] != version:
                self.order.append(version)

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=60)
        self.http.close()


def served_version(settings: Settings) -> str:
    with ServingClient(endpoint(settings)) as client:
        return client.version()["model_version"]


def champion(settings: Settings) -> str:
    return registry.require_champion(settings).version


@pytest.fixture
def lifecycle(sample_table: Settings):
    yield sample_table
    service.stop(sample_table)


def test_deploy_redeploy_rollback_under_load(spark, lifecycle: Settings, train_runs, bank_sample: pd.DataFrame):
    s = lifecycle
    from lib.lake import current_snapshot_id

    snapshot = current_snapshot_id(spark, s)
    train_runs(s, s.experiment_name, grid=WEAK, snapshot_id=snapshot)

    # 04: register, champion, start the detached server
    first = run_script(s, "04_api_deployment.py")
    assert first.returncode == 0, first.stderr
    v1 = champion(s)
    ep = endpoint(s)
    assert f"server    : started, {ep.url}" in first.stdout
    assert f"$(cat {s.access_key_file})" in first.stdout
    assert ep.key and ep.key not in first.stdout + first.stderr
    assert stat.S_IMODE(s.access_key_file.stat().st_mode) == 0o600
    assert served_version(s) == v1

    # the server and the pyfunc flavour of the champion agree on probabilities
    records = json.loads(bank_sample.drop(columns=[TARGET]).head(20).to_json(orient="records"))
    with ServingClient(ep) as client:
        answers = client.predict(records)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{s.model_name}@champion")
    np.testing.assert_allclose(
        [a["probability"] for a in answers], pyfunc.predict(pd.DataFrame(records))["probability"], rtol=0, atol=1e-6
    )

    traffic = Traffic(ep.url, ep.key, records[0])
    traffic.start()
    try:
        # rerun with nothing new: same server, nothing moved
        again = run_script(s, "04_api_deployment.py")
        assert again.returncode == 0, again.stderr
        assert "server    : unchanged" in again.stdout and endpoint(s).pid == ep.pid

        # a better run of 03: rerunning 04 promotes it and hot-reloads the same process
        train_runs(s, s.experiment_name, grid=MEDIUM, snapshot_id=snapshot)
        promoted = run_script(s, "04_api_deployment.py")
        assert promoted.returncode == 0, promoted.stderr
        v2 = champion(s)
        assert v2 != v1 and "server    : reloaded" in promoted.stdout
        assert endpoint(s).pid == ep.pid and served_version(s) == v2

        # 07 with a challenger no better than chance: rejected, exit 3, nothing changes
        train_runs(s, s.retrain_experiment_name, shuffle_labels=True, snapshot_id=snapshot)
        rejected = run_script(s, "07_api_redeployment.py")
        assert rejected.returncode == 3, rejected.stdout + rejected.stderr
        assert "gate REJECTED" in rejected.stderr and "Traceback" not in rejected.stderr
        bad = registry.get_alias(s, CHALLENGER)
        assert bad is not None and bad.tags["gate.passed"] == "false"
        assert champion(s) == v2 and served_version(s) == v2

        # a strong retrained run passes the gate on the lake's held-out rows and is hot-swapped in
        train_runs(s, s.retrain_experiment_name, grid=STRONG, snapshot_id=snapshot)
        result = deploy.redeploy(s, lambda versions: registry.holdout_rows(spark, s, versions), tolerance=0.01)
        v4 = result.champion.version
        assert result.gate is not None and result.gate.passed and result.action == "reloaded"
        assert (result.promotion.before.version, v4) == (v2, champion(s))
        assert registry.get_alias(s, PREVIOUS).version == v2 and served_version(s) == v4
        assert registry.get_alias(s, CHALLENGER) is None  # the winner took it over, then became champion

        # 07 --rollback: champion back to previous, swapped in
        back = run_script(s, "07_api_redeployment.py", "--rollback")
        assert back.returncode == 0, back.stderr
        assert champion(s) == v2 and registry.get_alias(s, PREVIOUS).version == v4
        assert served_version(s) == v2
        assert f"v{v4}" in back.stdout and f"v{v2}" in back.stdout
    finally:
        traffic.stop()

    assert traffic.failures == []
    assert {v1, v2, v4} <= set(traffic.versions)
    assert traffic.order[:2] == [v1, v2] and traffic.order[-2:] == [v4, v2]

    status = run_script(s, "-m", "lib.serving", "status")
    assert status.returncode == 0 and f"v{v2}" in status.stdout
    logs = run_script(s, "-m", "lib.serving", "logs")
    assert logs.returncode == 0 and "serving" in logs.stdout
    assert ep.key not in Path(log_path(s)).read_text()

    stop = run_script(s, "-m", "lib.serving", "stop")
    assert stop.returncode == 0 and f"stopped server pid {ep.pid}" in stop.stdout
    with pytest.raises(EndpointError, match="run 04_api_deployment.py first"):
        endpoint(s)
    logged = MetricsStore(s.metrics_db_url).read_predictions()
    logged = logged[logged["model_name"] == s.model_name]
    assert len(logged) == sum(traffic.versions.values()) + len(records)  # flushed on shutdown, none lost
    assert set(logged["model_version"]) == {v1, v2, v4}


def test_stop_ends_what_the_server_left_in_its_process_group() -> None:
    import os
    import signal
    import subprocess
    import time

    from lib.serving.service import stop_leftovers

    # A group leader (the server) that started a long child (a compile) and died without it.
    leader = subprocess.Popen(["sh", "-c", "sleep 60 & echo $!; wait"], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)  # fmt: skip
    orphan = int(leader.stdout.readline())
    os.kill(leader.pid, signal.SIGKILL)
    leader.wait()
    os.kill(orphan, 0)  # still running
    stop_leftovers(leader.pid)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(orphan, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"pid {orphan} outlived stop_leftovers")
    stop_leftovers(leader.pid)  # nothing left: no error
