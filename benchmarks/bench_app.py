"""Web-app benchmark: each page's first render over a 100,000-prediction log vs the static dashboard.

Builds a throwaway project root with the real scripts, as users do: 00_download.py --offline (the
vendored UCI data), 01_write_to_dl.py (the Iceberg table, Spark) and 03_train.py with a two-run
grid; registers both runs (v1, then v2 as champion, v1 `previous`), so the versions carry real
lineage (snapshot, seed) and the Explain page can rebuild their held-out split from the lake. It
scores 100,000 requests drawn from the data with them (v1 serves the first half of 30 days, v2 the
rest), logs them in the metrics store with half of them labelled, and records a few real job runs
(a quick two-job chain). Then it starts the app as users do (`python -m lib.app --port 0`, a
subprocess) and times each page as a browser loads it: the HTML plus the API calls its script
makes on load, in order (Explain: a page of held-out customers, then the first one scored and
explained by champion and previous; Models: the server status, the versions, the champion's
economics, the test sample). The app warms up in the background as it starts (MLflow's import and
store, the champion's profile); the first load, `--settle` seconds after the app printed its URL
as a user opens it, is "cold", the next ones warm. Monitoring (several time windows) and Jobs
share one app; Explain and Models each get a fresh app, so each is timed as the first page a user
opens. Baseline, on the same log: the current static dashboard, `build_report` +
`render_dashboard` (what `python -m lib.monitoring report` runs), in-process and as the CLI.
No model server runs and 10_batch_scoring.py has not run, so Models shows "no server" and "no
economics yet" (both answered without waiting on anything).

    .venv/bin/python -m benchmarks.bench_app [--predictions 100000] [--repeats 3] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import mlflow.pyfunc
import numpy as np
import pandas as pd

from lib import registry
from lib.cliargs import ArgumentParser
from lib.config import PROJECT_ROOT, Settings, load_settings
from lib.features import RAW_COLUMNS, TARGET, labels_to_int, pandas_dtypes
from lib.jobs import run_chain
from lib.logs import setup_logging
from lib.metrics_store import MetricsStore
from lib.serving.log_rows import PredictionRow
from lib.tracking import configure_mlflow

VENDOR_ZIP = PROJECT_ROOT / "data" / "vendor" / "bank.zip"
GRID = [{"max_depth": 3, "learning_rate": 0.3, "num_boost_round": 30}, {"max_depth": 4, "learning_rate": 0.3}]
DAYS = 30
GOAL_S = 2.0
WINDOWS = (24.0, 168.0, 720.0)
QUICK_SPEC = """\
jobs:
  - name: Quick Step
    script: quick_step.py
    timeout: 60
  - name: Quick Follow
    script: quick_follow.py
    depends_on: Quick Step
    timeout: 60
"""


def run_script(env: dict[str, str], script: str, *args: str) -> float:
    """Seconds one numbered script takes in the throwaway project root; exits on its failure."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, script, *args], cwd=PROJECT_ROOT, env={**os.environ, **env},
                          capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        sys.exit(f"{script} {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start


def build_project(settings: Settings, env: dict[str, str]) -> list[str]:
    """00 → 01 → 03 (two-run grid) for real, then both runs registered: v1, then v2 as champion."""
    steps = [("00_download.py", ["--offline"]), ("01_write_to_dl.py", []),
             ("03_train.py", ["--grid", json.dumps(GRID), "--workers", "1", "--no-progress"])]  # fmt: skip
    for script, args in steps:
        print(f"  {script} {' '.join(args)}: {run_script(env, script, *args):.1f} s", flush=True)
    client = configure_mlflow(settings)
    experiment = client.get_experiment_by_name(settings.experiment_name)
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    versions = [registry.register_run(settings, run.info.run_id)[0].version for run in runs]
    for version in versions:
        registry.promote(settings, version)
    return versions


def sample(rows: int, seed: int = 7) -> pd.DataFrame:
    with zipfile.ZipFile(VENDOR_ZIP) as zf, zf.open("bank-full.csv") as fh:
        df = pd.read_csv(fh, sep=";", dtype=pandas_dtypes())
    return df.sample(n=min(rows, len(df)), random_state=seed).reset_index(drop=True)


def fill_log(settings: Settings, versions: list[str], n: int, seed: int = 11) -> None:
    """`n` real predictions of the registered versions over DAYS days, every other one labelled."""
    configure_mlflow(settings)
    rng = np.random.default_rng(seed)
    data = sample(45_211, seed=seed)
    store = MetricsStore(settings.metrics_db_url)
    start = datetime.now(timezone.utc) - timedelta(days=DAYS)
    per_version = n // len(versions)
    for i, version in enumerate(versions):
        count = per_version if i < len(versions) - 1 else n - per_version * (len(versions) - 1)
        records = data.sample(n=count, replace=True, random_state=seed + i).reset_index(drop=True)
        model = mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{version}")
        scored = model.predict(records.loc[:, model.metadata.get_input_schema().input_names()])
        offset = DAYS / len(versions) * i
        seconds = np.sort(rng.uniform(0, DAYS / len(versions) * 86400, count)) + offset * 86400
        inputs = records.loc[:, [c for c in RAW_COLUMNS if c != TARGET]].astype(object).to_dict("records")
        latency = rng.gamma(2.0, 2.5, count)
        rows = [
            PredictionRow(str(uuid.uuid4()), (start + timedelta(seconds=float(s))).timestamp(),
                          (start + timedelta(seconds=float(s))).timestamp(), settings.model_name, version, rec,
                          float(p), int(y), float(ms))
            for s, rec, p, y, ms in zip(seconds, inputs, scored["probability"], scored["prediction"], latency,
                                        strict=True)
        ]  # fmt: skip
        for k in range(0, len(rows), 20_000):
            store.write_predictions(rows[k : k + 20_000])
        labels = labels_to_int(records[TARGET])
        store.record_feedback(
            [{"uuid": r.uuid, "label": int(y), "event_ts": r.event_ts + 86400}
             for r, y in zip(rows[::2], labels[::2], strict=True)]
        )  # fmt: skip


def run_jobs(settings: Settings, root: Path, chains: int) -> None:
    """A few real runs of a quick two-job chain, so the Jobs page has a history and logs."""
    (root / "quick_step.py").write_text("print('quick step')\n")
    (root / "quick_follow.py").write_text("print('quick follow')\n")
    (root / "jobs.yaml").write_text(textwrap.dedent(QUICK_SPEC))
    for _ in range(chains):
        result = run_chain(settings, "Quick Step", progress=False)
        if not result.ok:
            raise RuntimeError(f"quick chain failed: {result}")


def start_app(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    """`python -m lib.app --port 0` as users start it; returns the process and its URL."""
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lib.app", "--port", "0"], cwd=PROJECT_ROOT, env={**os.environ, **env},
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True,
        )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            if line.startswith("app "):
                return proc, line.split(":", 1)[1].strip().rstrip("/")
            if not line:
                break
    proc.kill()
    raise RuntimeError(f"the app did not start; see {log}")


class Visit:
    """One page load as a browser makes it: each request in order, with its status and seconds."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self.codes: list[int] = []
        self.seconds: list[float] = []

    def call(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        t0 = time.perf_counter()
        answer = self.http.request(method, url, **kwargs)
        self.seconds.append(time.perf_counter() - t0)
        self.codes.append(answer.status_code)
        return answer

    @property
    def total(self) -> float:
        return sum(self.seconds)


Loader = Callable[[Visit], None]


def load_page(visit: Visit, page: str, calls: list[str]) -> None:
    """The HTML and then each API call the page makes on load (in order)."""
    visit.call("GET", page)
    for call in calls:
        visit.call("GET", call)


def load_explain(visit: Visit) -> None:
    """What explain.js does on load: a page of held-out customers, then the first one scored and explained."""
    visit.call("GET", "/explain")
    answer = visit.call("GET", "/api/explain/customers", params={"source": "holdout", "offset": 0, "limit": 100})
    customers = answer.json().get("customers", []) if answer.status_code == 200 else []
    if customers:
        record = customers[0]["record"]
        visit.call("POST", "/api/explain/score", json={"record": record, "baseline": record})


def load_models(visit: Visit) -> None:
    """What models.js does on load: server status, versions, the champion's economics; the test sample.

    The browser fetches the sample alongside the rest; here it comes last (a sum, not the overlap).
    """
    visit.call("GET", "/models")
    visit.call("GET", "/api/models/server")
    answer = visit.call("GET", "/api/models/versions")
    data = answer.json() if answer.status_code == 200 else {}
    start = data.get("aliases", {}).get("champion") or next((v["version"] for v in data.get("versions", [])), None)
    if start:
        visit.call("GET", "/api/models/economics", params={"version": start})
    visit.call("GET", "/api/models/sample")


def page_calls(http: httpx.Client) -> dict[str, tuple[str, list[str]]]:
    newest = http.get("/api/jobs/runs", params={"limit": 1}).json()["runs"]
    log_call = [f"/api/jobs/runs/{newest[0]['run_id']}/log?tail=200"] if newest else []
    pages = {f"Monitoring ({h:g} h)": ("/monitoring", [f"/api/monitoring/overview?hours={h:g}"]) for h in WINDOWS}
    pages["Jobs"] = ("/jobs", ["/api/jobs/spec", "/api/jobs/runs?limit=50", *log_call])
    return pages


@contextmanager
def app_session(env: dict[str, str], log: Path, settle: float) -> Iterator[httpx.Client]:
    """A fresh app, and a client for it once `settle` seconds have passed since it printed its URL."""
    t0 = time.perf_counter()
    proc, url = start_app(env, log)
    try:
        with httpx.Client(base_url=url, timeout=120) as http:
            time.sleep(max(0.0, settle - (time.perf_counter() - t0)))
            yield http
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def time_page(name: str, loader: Loader, http: httpx.Client, repeats: int) -> tuple[dict[str, float], bool]:
    """Cold (first) and warm (median of `repeats`) loads of one page; prints them, with the cold load's
    seconds per request; False if a request did not answer 200."""
    cold = Visit(http)
    loader(cold)
    warm = []
    for _ in range(repeats):
        visit = Visit(http)
        loader(visit)
        warm.append(visit.total)
    per_call = ", ".join(f"{s:.2f}" for s in cold.seconds)
    print(f"  {name:22} cold {cold.total:6.3f} s  warm median {statistics.median(warm):6.3f} s  "
          f"status {cold.codes}  cold per request [{per_call}] s", flush=True)  # fmt: skip
    return {"cold": cold.total, "warm": statistics.median(warm)}, all(code == 200 for code in cold.codes)


def build_parser() -> ArgumentParser:
    """[--predictions N] [--repeats N] [--keep]; usage errors exit 64."""
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--predictions", type=int, default=100_000, help="predictions in the log")
    parser.add_argument("--repeats", type=int, default=3, help="warm loads per page after the cold one")
    parser.add_argument("--chains", type=int, default=3, help="quick job chains run for the history")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds between the app's start and the first view")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway project root")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    root = Path(tempfile.mkdtemp(prefix="bench-app-"))
    env = {"PROJECT_ROOT": str(root), "PROJECT_OWNER": "bench", "SERVE_PORT": "0",
           "JOBS_SPEC": str(root / "jobs.yaml"), "REPORTS_DIR": str(root / "reports")}  # fmt: skip
    settings = load_settings(env)
    print(f"building the project in {root} (00 --offline, 01, 03 with a two-run grid) ...", flush=True)
    versions = build_project(settings, env)
    t0 = time.perf_counter()
    fill_log(settings, versions, args.predictions)
    store = MetricsStore(settings.metrics_db_url)
    print(f"log: {store.count_predictions():,} predictions, {store.count_feedback():,} labelled, over {DAYS} days, "
          f"v{versions[0]} then v{versions[1]} (champion); filled in {time.perf_counter() - t0:.1f} s")  # fmt: skip
    run_jobs(settings, root, args.chains)

    results: dict[str, dict[str, float]] = {}
    answered = True
    with app_session(env, root / "app.log", args.settle) as http:
        for name, (page, calls) in page_calls(http).items():
            results[name], ok = time_page(name, lambda v, p=page, c=calls: load_page(v, p, c), http, args.repeats)
            answered &= ok
    for name, loader in (("Explain", load_explain), ("Models", load_models)):
        with app_session(env, root / f"app-{name.lower()}.log", args.settle) as http:
            results[name], ok = time_page(name, loader, http, args.repeats)
            answered &= ok

    from lib.monitoring.dashboard import render_dashboard
    from lib.monitoring.report import build_report

    t0 = time.perf_counter()
    report = build_report(settings, window_hours=24)
    t_report = time.perf_counter() - t0
    render_dashboard(report, settings)
    t_static = time.perf_counter() - t0
    t0 = time.perf_counter()
    cli = subprocess.run([sys.executable, "-m", "lib.monitoring", "report", "--window-hours", "24"],
                         cwd=PROJECT_ROOT, env={**os.environ, **env}, capture_output=True, text=True)  # fmt: skip
    t_cli = time.perf_counter() - t0
    if cli.returncode != 0:
        print(cli.stderr, file=sys.stderr)

    print(
        f"\nbaseline, static dashboard on the same log: build_report {t_report:.2f} s, + render_dashboard = "
        f"{t_static:.2f} s in-process; `python -m lib.monitoring report` {t_cli:.2f} s"
    )
    print(f"{'page':22} {'cold s':>7} {'warm s':>7} {'goal':>6} {'static / cold':>14}")
    met = True
    for name, r in results.items():
        ok = r["cold"] <= GOAL_S
        met &= ok
        print(f"{name:22} {r['cold']:7.3f} {r['warm']:7.3f} {'ok' if ok else 'MISS':>6} {t_static / r['cold']:13.1f}x")
    if not args.keep:
        shutil.rmtree(root)
    if not answered:
        print("a page's call did not answer 200: see the status lists above and the app logs", file=sys.stderr)
    return 0 if met and answered and cli.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
