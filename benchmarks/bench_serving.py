"""Serving benchmark: our FastAPI server vs `mlflow models serve` on the same registered model.

Trains one model on a stratified sample of the vendored UCI data into a throwaway project root,
registers it, starts both servers on free ports (ours detached with auth and the prediction log
on, MLflow's with --env-manager local) and drives each with the same load generator: persistent
HTTP/1.1 connections from 1 and 16 client threads, single-record and 100-record requests. Our
server is measured twice, with MLflow's exact payload on /invocations and on /predict. Prints
throughput, p50/p99 latency and the ratios to MLflow's server.

    .venv/bin/python -m benchmarks.bench_serving [--duration 5] [--clients 1,16] [--batches 1,100]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lib import registry
from lib.cliargs import ArgumentParser
from lib.config import PROJECT_ROOT, Settings, load_settings
from lib.features import TARGET, pandas_dtypes
from lib.metrics_store import MetricsStore
from lib.serving import service
from lib.training import DataSlice, train_grid

VENDOR_ZIP = PROJECT_ROOT / "data" / "vendor" / "bank.zip"
GRID = [{"max_depth": 5, "learning_rate": 0.1}]  # early stopping picks the number of trees


@dataclass(frozen=True)
class Target:
    name: str
    host: str
    port: int
    path: str
    headers: dict[str, str]
    protocol: str  # "predict" or "invocations"
    pgid: int  # the server's process group, for its CPU use

    def body(self, records: list[dict]) -> bytes:
        if self.protocol == "predict":
            return json.dumps({"request": records if len(records) > 1 else records[0]}).encode()
        columns = list(records[0])
        split = {"columns": columns, "data": [[r[c] for c in columns] for r in records]}
        return json.dumps({"dataframe_split": split}).encode()


@dataclass(frozen=True)
class Result:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    server_cpu_s: float  # CPU the server's process group used during the measured window

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu_s / self.requests * 1e6 if self.requests else math.nan


def group_cpu_seconds(pgid: int) -> float:
    """User+system CPU of every process in a process group (Linux /proc), e.g. a server and its
    workers: unlike throughput, this does not move with what else the machine is running."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after "(comm)": state ppid pgrp ... utime(11) stime(12)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def load(target: Target, body: bytes, clients: int, duration: float, warmup: float = 1.0) -> Result:
    """`clients` threads, each on one keep-alive connection, posting `body` back to back."""
    start = threading.Barrier(clients + 1)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    headers = {**target.headers, "Content-Type": "application/json"}
    t_measure = t_end = 0.0

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=60)
        start.wait()
        while True:
            t0 = time.perf_counter()
            if t0 >= t_end:
                break
            try:
                conn.request("POST", target.path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(target.host, target.port, timeout=60)
                ok = False
            t1 = time.perf_counter()
            if t0 >= t_measure:
                if ok:
                    latencies[i].append(t1 - t0)
                else:
                    errors[i] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    t_measure = time.perf_counter() + warmup
    t_end = t_measure + duration
    start.wait()
    time.sleep(max(0.0, t_measure - time.perf_counter()))
    cpu0 = group_cpu_seconds(target.pgid)
    time.sleep(max(0.0, t_end - time.perf_counter()))
    cpu1 = group_cpu_seconds(target.pgid)
    for t in threads:
        t.join()
    lat = np.concatenate([np.asarray(x) for x in latencies]) * 1000 if any(latencies) else np.array([np.nan])
    return Result(
        requests=int(sum(len(x) for x in latencies)),
        errors=sum(errors),
        seconds=duration,
        p50_ms=float(np.percentile(lat, 50)),
        p99_ms=float(np.percentile(lat, 99)),
        server_cpu_s=cpu1 - cpu0,
    )


def sample(rows: int, seed: int = 7) -> pd.DataFrame:
    with zipfile.ZipFile(VENDOR_ZIP) as zf, zf.open("bank-full.csv") as fh:
        full = pd.read_csv(fh, sep=";", dtype=pandas_dtypes())
    parts = [g.sample(frac=rows / len(full), random_state=seed) for _, g in full.groupby(TARGET)]
    return pd.concat(parts).sort_index().reset_index(drop=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_mlflow(settings: Settings, model_uri: str, port: int, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local",
           "--host", "127.0.0.1", "-p", str(port)]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow models serve exited with {proc.returncode}; see {log}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"mlflow models serve not up after 180s; see {log}")


def build_parser() -> ArgumentParser:
    """[--duration S] [--clients N,..] [--batches N,..] [--rows N] [--keep]; usage errors exit 64."""
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per scenario")
    parser.add_argument("--clients", default="1,16", help="client thread counts")
    parser.add_argument("--batches", default="1,100", help="records per request")
    parser.add_argument("--rows", type=int, default=10_000, help="training sample size")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway project root")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    clients = [int(c) for c in args.clients.split(",")]
    batches = [int(b) for b in args.batches.split(",")]

    root = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    settings = load_settings({"PROJECT_ROOT": str(root), "PROJECT_OWNER": "bench", "SERVE_PORT": "0"})
    df = sample(args.rows)
    print(f"training on {len(df):,} rows into {root} ...", flush=True)
    data = DataSlice(df, "vendored sample", snapshot_id=0, parent_id=None, committed_at=None, mode="full")
    run = train_grid(data, settings, settings.experiment_name, grid=GRID, progress=False).best
    version = registry.register_run(settings, run.run_id)[0]
    registry.promote(settings, version.version)
    trees = int(run.metrics["best_iteration"]) + 1
    print(f"model {version.uri}: {trees} trees, test_roc_auc {run.metrics['test_roc_auc']:.4f}")
    records = df.drop(columns=[TARGET]).head(max(batches)).astype(object).to_dict("records")

    ep = service.start_detached(settings, expect_version=version.version)
    ml_port = free_port()
    ml_proc = start_mlflow(settings, version.uri, ml_port, root / "mlflow-serve.log")
    host, port = ep.url.removeprefix("http://").split(":")
    targets = [
        Target("mlflow models serve", "127.0.0.1", ml_port, "/invocations", {}, "invocations", ml_proc.pid),
        Target("ours /invocations", host, int(port), "/invocations", ep.headers, "invocations", ep.pid),
        Target("ours /predict", host, int(port), "/predict", ep.headers, "predict", ep.pid),
    ]
    results: dict[tuple[str, int, int], Result] = {}
    try:
        for batch in batches:
            for n in clients:
                for target in targets:
                    body = target.body(records[:batch])
                    res = load(target, body, n, args.duration)
                    results[(target.name, n, batch)] = res
                    print(
                        f"  {target.name:20} clients={n:<3} batch={batch:<4} {res.rps:8.1f} req/s "
                        f"{res.rps * batch:9.0f} rec/s  p50 {res.p50_ms:7.2f} ms  p99 {res.p99_ms:7.2f} ms  "
                        f"server CPU {res.cpu_us_per_request:8.0f} us/req  errors {res.errors}",
                        flush=True,
                    )
    finally:
        os.killpg(ml_proc.pid, signal.SIGTERM)
        ml_proc.wait(timeout=30)
        service.stop(settings)
    logged = MetricsStore(settings.metrics_db_url).count_predictions()

    print(f"\nmodel: {trees} trees; prediction log on ({logged:,} rows written to {settings.metrics_db_url})")
    print("throughput ratio = our req/s over MLflow's in the same scenario; CPU ratio = MLflow's server")
    print("CPU per request over ours (server process groups, incl. our log writer): capacity per core")
    header = (
        f"{'scenario':22} {'mlflow':>8} {'ours inv':>9} {'ours pred':>9} {'x inv':>6} {'x pred':>6} "
        f"{'CPU x inv':>9} {'CPU x pred':>10} {'p50 mlflow':>10} {'p50 pred':>9} {'p99 pred':>9}"
    )
    print(header)
    for batch in batches:
        for n in clients:
            base = results[("mlflow models serve", n, batch)]
            inv = results[("ours /invocations", n, batch)]
            pred = results[("ours /predict", n, batch)]
            print(
                f"{f'{n} client(s) x {batch} rec':22} {base.rps:8.1f} {inv.rps:9.1f} {pred.rps:9.1f} "
                f"{inv.rps / base.rps:5.1f}x {pred.rps / base.rps:5.1f}x "
                f"{base.cpu_us_per_request / inv.cpu_us_per_request:8.1f}x "
                f"{base.cpu_us_per_request / pred.cpu_us_per_request:9.1f}x "
                f"{base.p50_ms:8.2f}ms {pred.p50_ms:7.2f}ms {pred.p99_ms:7.2f}ms"
            )
    if not args.keep:
        shutil.rmtree(root)
    errors = sum(r.errors for r in results.values())
    print(f"errors: {errors}")
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
