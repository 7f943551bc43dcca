"""Services benchmark: the lab on the real service stack versus the embedded defaults, in one run.

Starts the stack (`lib.stack`: PostgreSQL, MLflow server, Spark standalone master + one worker) in a
throwaway directory, then measures, each against its baseline in the same run:

1. Spark: the wall time of the real 01_write_to_dl.py and 06_retrain.py (full data, --max-runs N)
   with SPARK_MASTER on the standalone cluster versus `local[*]` (baseline). Everything else is the
   same (Hadoop catalog, MLflow on SQLite, each in a project root of its own); the cluster
   application gets the worker's 2 cores (`spark.cores.max=2`), as local[*] has 2 on this machine.
2. Serving: our server's /predict hot path (bench_serving's load generator) with the prediction log
   on the stack's PostgreSQL versus SQLite (baseline), the same model, 1 and 16 clients, single
   records; the backends alternate for `--repeats` rounds, so machine load drifts both ways.

    .venv/bin/python -m benchmarks.bench_services [--runs 3] [--duration 5] [--repeats 2] [--only spark|serving]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_serving import GRID, Target, load_python, sample
from lib import registry, stack
from lib.cliargs import ArgumentParser
from lib.config import PROJECT_ROOT, Settings, load_settings
from lib.features import TARGET
from lib.metrics_store import MetricsStore
from lib.serving import service
from lib.training import DataSlice, train_grid

CLUSTER_CORES = "2"


def run_script(script: str, env: dict[str, str], *args: str) -> float:
    """Wall time of one numbered script as a user runs it; a failure ends the benchmark with its output."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, script, *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{script} {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def bench_spark(stack_env: dict[str, str], base: Path, runs: int) -> dict[str, tuple[float, float]]:
    """(01 seconds, 06 seconds) per Spark master, each in a fresh project root."""
    cluster = {k: v for k, v in stack_env.items() if k.startswith("SPARK_")}
    masters = {
        "local[*]": {"SPARK_MASTER": "local[*]"},
        "standalone": {**cluster, "SPARK_CONF_SPARK_CORES_MAX": CLUSTER_CORES},
    }
    timings = {}
    for name, spark_env in masters.items():
        root = base / f"spark-{name.strip('[*]')}"
        env = {**os.environ, "PROJECT_ROOT": str(root), "PROJECT_OWNER": "bench", **spark_env}
        run_script("00_download.py", env, "--offline")
        t01 = run_script("01_write_to_dl.py", env)
        t06 = run_script("06_retrain.py", env, "--data", "full", "--max-runs", str(runs), "--no-progress")
        timings[name] = (t01, t06)
        print(f"  {name:>12}: 01 {t01:6.1f} s   06 {t06:6.1f} s", flush=True)
    return timings


def bench_serving(stack_root: Path, base: Path, duration: float, repeats: int) -> dict[tuple[str, int], list]:
    """/predict results per (prediction-log backend, clients), `repeats` alternating rounds each."""
    (base / "serving").mkdir()
    settings = load_settings({"PROJECT_ROOT": str(base / "serving"), "PROJECT_OWNER": "bench", "SERVE_PORT": "0"})
    df = sample(10_000)
    data = DataSlice(df, "vendored sample", snapshot_id=0, parent_id=None, committed_at=None, mode="full")
    run = train_grid(data, settings, settings.experiment_name, grid=GRID, progress=False).best
    version = registry.register_run(settings, run.run_id)[0]
    registry.promote(settings, version.version)
    record = df.drop(columns=[TARGET]).head(1).astype(object).to_dict("records")
    backends: dict[str, Settings] = {
        "sqlite": settings,
        "postgresql": dataclasses.replace(
            settings, metrics_db_url=stack.create_database(stack_root, "bench_predictions")
        ),
    }
    results: dict[tuple[str, int], list] = {}
    for round_no in range(repeats):
        order = list(backends) if round_no % 2 == 0 else list(reversed(backends))
        for backend in order:
            s = backends[backend]
            ep = service.start_detached(s, expect_version=version.version)
            try:
                host, port = ep.url.removeprefix("http://").split(":")
                target = Target(backend, host, int(port), "/predict", ep.headers, "predict", ep.pid)
                for clients in (1, 16):
                    res = load_python(target, target.body(record), clients, duration)
                    results.setdefault((backend, clients), []).append(res)
                    print(
                        f"  round {round_no + 1} {backend:10} clients={clients:<3} {res.rps:8.1f} req/s  "
                        f"p50 {res.p50_ms:6.2f} ms  p99 {res.p99_ms:6.2f} ms  "
                        f"server CPU {res.cpu_us_per_request:6.0f} us/req  errors {res.errors}",
                        flush=True,
                    )
            finally:
                service.stop(s)
    for backend, s in backends.items():
        logged = MetricsStore(s.metrics_db_url).count_predictions()
        print(f"  {backend}: {logged:,} predictions in the log ({s.metrics_db_url.split('://')[0]})")
    return results


def build_parser() -> ArgumentParser:
    """[--runs N] [--duration S] [--repeats N] [--only spark|serving]; usage errors exit 64."""
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="grid runs of 06 (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per serving scenario")
    parser.add_argument("--repeats", type=int, default=2, help="alternating serving rounds (default: %(default)s)")
    parser.add_argument("--only", choices=("spark", "serving"), help="run one of the two parts")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="bench-services-"))
    base.chmod(0o755)  # PostgreSQL's server user must enter the stack dir
    root = base / "stack"
    try:
        started = time.perf_counter()
        stack_env = stack.up(root, load_settings().jdbc_driver_jar, postgres_only=args.only == "serving")
        print(f"stack up in {time.perf_counter() - started:.1f} s ({root})", flush=True)
        if args.only in (None, "spark"):
            print(f"\n01 and 06 (--data full --max-runs {args.runs}) by Spark master", flush=True)
            timings = bench_spark(stack_env, base, args.runs)
            (l01, l06), (c01, c06) = timings["local[*]"], timings["standalone"]
            print(f"  {'ratio standalone/local[*]':>26}: 01 {c01 / l01:5.2f}x   06 {c06 / l06:5.2f}x")
        if args.only in (None, "serving"):
            print("\n/predict, single records, prediction log on SQLite (baseline) vs PostgreSQL", flush=True)
            results = bench_serving(root, base, args.duration, args.repeats)
            print(f"\n{'clients':>8} {'sqlite req/s':>13} {'pg req/s':>9} {'ratio':>6} {'p50 sqlite':>10} "
                  f"{'p50 pg':>7} {'p99 sqlite':>10} {'p99 pg':>7}")  # fmt: skip
            for clients in (1, 16):
                sq, pg = results[("sqlite", clients)], results[("postgresql", clients)]
                for a, b in zip(sq, pg, strict=True):
                    print(f"{clients:>8} {a.rps:13.1f} {b.rps:9.1f} {b.rps / a.rps:5.2f}x {a.p50_ms:8.2f}ms "
                          f"{b.p50_ms:5.2f}ms {a.p99_ms:8.2f}ms {b.p99_ms:5.2f}ms")  # fmt: skip
            errors = sum(r.errors for rs in results.values() for r in rs)
            print(f"errors: {errors}")
            if errors:
                return 1
    finally:
        stack.down(root)
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
