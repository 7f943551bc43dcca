"""Web-app benchmark: each page's first render over a 100,000-prediction log vs the static dashboard.

Trains two tiny real models on a sample of the vendored UCI data into a throwaway project root,
registers both (v1, then v2 as champion), scores 100,000 requests drawn from the data with them
(v1 serves the first half of 30 days, v2 the rest), logs them in the metrics store with half of them
labelled, and records a few real job runs (a quick two-job chain). Then it starts the app as users
do (`python -m lib.app --port 0`, a subprocess) and times each page as a browser loads it: the HTML
plus the API calls its script makes on load, in order. The app warms up in the background as it
starts (MLflow's import and store, the champion's profile); the first load, `--settle` seconds after
the app printed its URL as a user opens it, is "cold" (no page served yet), the next ones warm;
the Monitoring page is timed for several time windows. Baseline, on the same log: the current
static dashboard, `build_report` + `render_dashboard` (what `python -m lib.monitoring report`
runs), in-process and as the CLI.
Explain and Models are not timed here: they read no prediction log (the lake and the registry), so
the log's size does not change them, and they need a lake table this benchmark does not build.

    .venv/bin/python -m benchmarks.bench_app [--predictions 100000] [--repeats 3] [--keep]
"""

from __future__ import annotations

import argparse
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
from lib.serving.prediction_log import PredictionRow
from lib.tracking import configure_mlflow
from lib.training import DataSlice, train_grid

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


def load_page(http: httpx.Client, page: str, calls: list[str]) -> tuple[float, list[int]]:
    """Seconds for the HTML and then each API call the page makes on load (in order), and their status codes."""
    t0 = time.perf_counter()
    codes = [http.get(page).status_code]
    for call in calls:
        codes.append(http.get(call).status_code)
    return time.perf_counter() - t0, codes


def page_calls(http: httpx.Client) -> dict[str, tuple[str, list[str]]]:
    newest = http.get("/api/jobs/runs", params={"limit": 1}).json()["runs"]
    log_call = [f"/api/jobs/runs/{newest[0]['run_id']}/log?tail=200"] if newest else []
    pages = {f"Monitoring ({h:g} h)": ("/monitoring", [f"/api/monitoring/overview?hours={h:g}"]) for h in WINDOWS}
    pages["Jobs"] = ("/jobs", ["/api/jobs/spec", "/api/jobs/runs?limit=50", *log_call])
    return pages


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
    print(f"training 2 tiny models into {root} ...", flush=True)
    df = sample(5_000)
    data = DataSlice(df, "vendored sample", snapshot_id=0, parent_id=None, committed_at=None, mode="full")
    runs = train_grid(data, settings, settings.experiment_name, grid=GRID, progress=False, workers=1).runs
    versions = [registry.register_run(settings, run.run_id)[0].version for run in runs]
    for version in versions:
        registry.promote(settings, version)
    t0 = time.perf_counter()
    fill_log(settings, versions, args.predictions)
    store = MetricsStore(settings.metrics_db_url)
    print(f"log: {store.count_predictions():,} predictions, {store.count_feedback():,} labelled, over {DAYS} days, "
          f"v{versions[0]} then v{versions[1]} (champion); filled in {time.perf_counter() - t0:.1f} s")  # fmt: skip
    run_jobs(settings, root, args.chains)

    t0 = time.perf_counter()
    proc, url = start_app(env, root / "app.log")
    results: dict[str, dict[str, float]] = {}
    try:
        with httpx.Client(base_url=url, timeout=120) as http:
            time.sleep(max(0.0, args.settle - (time.perf_counter() - t0)))
            pages = page_calls(http)
            for name, (page, calls) in pages.items():
                cold, codes = load_page(http, page, calls)
                warm = [load_page(http, page, calls)[0] for _ in range(args.repeats)]
                results[name] = {"cold": cold, "warm": statistics.median(warm), "max": max([cold, *warm])}
                print(f"  {name:22} cold {cold:6.3f} s  warm median {statistics.median(warm):6.3f} s  "
                      f"status {codes}", flush=True)  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=30)

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
    return 0 if met and cli.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
