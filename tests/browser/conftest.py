"""Shared fixtures for browser tests: Debian's Chromium driven by Playwright, and a live server.

The browser is the system's `/usr/bin/chromium` (installed by `make browser-deps`), never a
Playwright browser download. Every page is offline: a request to any host but the test server is
aborted and recorded, and console errors are collected, so a test can assert there were none.
"""

from __future__ import annotations

import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pandas as pd
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, Route, sync_playwright

from lib.config import DEFAULT_SEED, PROJECT_ROOT, Settings, child_env, load_settings
from lib.features import TARGET
from lib.serving.client import Endpoint, ServingClient
from tests.conftest import register_tiny_models

CHROMIUM = Path("/usr/bin/chromium")
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})


@dataclass
class PageLog:
    """What a page did that a test may need to refuse: console errors, page errors, outside requests."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [*self.console_errors, *self.page_errors, *(f"outside request: {u}" for u in self.outside_requests)]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the test run."""
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make browser-deps` (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page_log() -> PageLog:
    """What the test's `page` logged (filled while the page runs)."""
    return PageLog()


@pytest.fixture
def page(browser: Browser, page_log: PageLog) -> Iterator[Page]:
    """A fresh offline page: outside requests are aborted, errors go to `page_log`."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    log = page_log
    tab.on("console", lambda msg: log.console_errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: log.page_errors.append(str(exc)))

    def offline(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("http", "https") and urlsplit(url).hostname not in LOCAL_HOSTS:
            log.outside_requests.append(url)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    tab.route("**/*", offline)
    yield tab
    context.close()


@contextmanager
def live_server(app: Callable) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free local port in a thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="live-server", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the live server stopped while starting (see the log above)")
            threading.Event().wait(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="session")
def serve() -> Callable:
    """`with serve(app) as url:` runs `app` on a live local port for the block."""
    return live_server


# --- a small real project and the web app over it ----------------------------------------------------


@dataclass(frozen=True)
class LabRun:
    """A small real project: what the app's pages read, and how to reach the model server serving it.

    `env` rebuilds `settings` in a child process (the app subprocess gets it); `versions` are the
    registered versions oldest first (the last is `champion`, the one before it `previous`);
    `holdout` are labelled rows neither version trained on (the ones already sent are logged with
    their outcome); `predictions` rows were logged, `labelled` of them with ground truth.
    It is shared by the whole session: send traffic freely, but a test that moves an alias or
    changes the table must put it back.
    """

    settings: Settings
    env: dict[str, str]
    versions: list[str]
    endpoint: Endpoint
    holdout: pd.DataFrame
    predictions: int
    labelled: int
    batch_rows: int

    @property
    def champion(self) -> str:
        return self.versions[-1]

    @property
    def previous(self) -> str:
        return self.versions[-2]

    def client(self) -> ServingClient:
        """A client of the running model server, with the access key."""
        return ServingClient(self.endpoint, timeout=30)


LAB_USER = "lab"
LAB_BATCH_ROWS = 200
LAB_REQUESTS = 12  # requests of LAB_RECORDS records, 10 minutes apart, ending now
LAB_RECORDS = 5


def send_labelled(run_client: ServingClient, rows: pd.DataFrame, event_time: datetime) -> int:
    """Score `rows` in one /predict at `event_time` and report their true outcome; returns rows sent."""
    records = rows.drop(columns=[TARGET]).astype(object).to_dict("records")
    answers = run_client.predict(records, event_time=event_time)
    items = [{"uuid": a["uuid"], "label": label} for a, label in zip(answers, rows[TARGET], strict=True)]
    run_client.feedback(items)
    return len(records)


@pytest.fixture(scope="session")
def lab_run(spark, session_root: Path, bank_sample: pd.DataFrame) -> Iterator[LabRun]:
    """A small real project in the session's temp root, user `lab`, and its model server running.

    The lake table (the 3,000-row sample, then a 200-row batch appended by 05's code), two tiny
    registered versions trained on the first snapshot (`champion` v2, `previous` v1), the gate's
    numbers and 10's economics logged on the champion, the model server started as a subprocess on
    a free port (`lib.serving.service.start_detached`, as 04 does), and 60 predictions with their
    ground truth in the metrics store. State lives under the session root (the Spark session's
    warehouse) with this user's own names, run dir and metrics database. Stopped at teardown.
    """
    from lib import registry
    from lib.batches import append_batch, generate_batch
    from lib.economics import CampaignEconomics, evaluate_campaign
    from lib.features import labels_to_int, spark_ddl
    from lib.lake import create_or_replace
    from lib.scoring import log_economics
    from lib.serving import service
    from lib.training.data import split

    env = {
        "PROJECT_ROOT": str(session_root),
        "PROJECT_OWNER": LAB_USER,
        "SERVE_PORT": "0",
        "SERVE_RUN_DIR": str(session_root / "run-lab"),
        "JOBS_LOG_DIR": str(session_root / "run-lab" / "jobs"),
        "METRICS_DB_URL": f"sqlite:///{session_root / 'metrics-lab.db'}",
        "REPORTS_DIR": str(session_root / "reports-lab"),
        "DATA_DIR": str(session_root / "data-lab"),
    }
    settings = load_settings(env)
    snapshot = create_or_replace(spark, settings, spark.createDataFrame(bank_sample, schema=spark_ddl()))
    batch = generate_batch(bank_sample, rows=LAB_BATCH_ROWS, seed=11)
    append_batch(spark, settings, batch, label="lab")

    versions = register_tiny_models(settings, bank_sample, n=2, snapshot_id=snapshot)
    registry.promote(settings, versions[0])  # champion v1, then v2 with v1 as `previous`
    registry.promote(settings, versions[1])
    champion, previous = registry.describe(settings, versions[1]), registry.describe(settings, versions[0])

    _, test = split(bank_sample, seed=DEFAULT_SEED)
    holdout = registry.HoldOut(frame=test, snapshot_id=snapshot, table=settings.table_ident)
    registry.evaluate_gate(settings, champion, previous, holdout, tolerance=settings.gate_tolerance)
    economics = CampaignEconomics(settings.campaign_cost_per_call, settings.campaign_value_per_deposit)
    proba = registry.score_version(settings, champion.version, test)
    log_economics(settings, champion, evaluate_campaign(labels_to_int(test[TARGET]), proba, economics), snapshot)

    ep = service.start_detached(settings, expect_version=champion.version)
    try:
        now = datetime.now(timezone.utc)
        sent = 0
        with ServingClient(ep, timeout=30) as client:
            for i in range(LAB_REQUESTS):
                rows = test.iloc[i * LAB_RECORDS : (i + 1) * LAB_RECORDS]
                sent += send_labelled(client, rows, now - timedelta(minutes=10 * (LAB_REQUESTS - 1 - i)))
        yield LabRun(
            settings=settings, env=env, versions=versions, endpoint=ep, holdout=test.iloc[sent:].reset_index(drop=True),
            predictions=sent, labelled=sent, batch_rows=LAB_BATCH_ROWS,
        )  # fmt: skip
    finally:
        service.stop(settings)


def _read_url(proc: subprocess.Popen, timeout: float) -> str:
    """The URL `python -m lib.app` prints first (`app       : http://…/`), or fail with what it said."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line.rstrip())
            if line.startswith("app "):
                return line.split(":", 1)[1].strip().rstrip("/")
        elif proc.poll() is not None:
            break
    raise RuntimeError(f"python -m lib.app printed no URL (exit {proc.poll()}): {' | '.join(seen) or 'nothing'}")


@contextmanager
def app_process(env: dict[str, str], log_dir: Path) -> Iterator[str]:
    """`python -m lib.app --port 0` with `env` as a subprocess; yields its base URL (no slash).

    Its stderr goes to `app.log` in `log_dir` (shown if it fails to start); it is killed on exit.
    """
    log_file = log_dir / "app.log"
    with log_file.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lib.app", "--port", "0"], cwd=PROJECT_ROOT, env=child_env(env),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True,
        )  # fmt: skip
    try:
        try:
            url = _read_url(proc, timeout=120)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; log: {log_file.read_text()[-2000:]}") from None
        with httpx.Client(base_url=url, timeout=10) as http:
            assert http.get("/healthz").json()["model"] == load_settings(env).model_name
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


@pytest.fixture(scope="session")
def lab_app(lab_run: LabRun, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m lib.app --port 0` over `lab_run`'s project, as a subprocess; yields its base URL (no slash).

    Its stderr goes to `app.log` in a temp dir (shown if it fails to start); it is killed at teardown.
    """
    with app_process(lab_run.env, tmp_path_factory.mktemp("app")) as url:
        yield url
