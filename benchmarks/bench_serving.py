"""Serving benchmark: our FastAPI server vs `mlflow models serve` and vs a bare handler, same model.

Trains one model on a stratified sample of the vendored UCI data into a throwaway project root,
registers it and starts three servers on free ports: ours (detached, auth and prediction log on),
MLflow's (`--env-manager local`) and the ceiling, a bare Starlette + uvicorn handler that parses
the JSON body and returns a constant (`benchmarks.bare_handler`, same uvicorn settings as ours).
Each is driven by the same load generator over persistent HTTP/1.1 connections, 1 and 16 of them,
with single-record and 100-record requests: `wrk` (Debian package) when it is installed, else a
Python client (which shares the cores and compresses every ratio). Our server is measured with
MLflow's exact payload on /invocations and with the CML-style one on /predict.

Prints throughput, p50/p99 latency and server CPU per request per scenario, then issue 17's rows,
each as a ratio to its named baseline in this run. `--repeats N` runs every scenario N times,
round-robin over the servers, and keeps each server's median run (the machine may be shared).

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
import statistics
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

from benchmarks.profile_top import format_top
from lib import registry
from lib.cliargs import ArgumentParser
from lib.config import PROJECT_ROOT, Settings, load_settings
from lib.features import TARGET, pandas_dtypes
from lib.metrics_store import MetricsStore
from lib.serving import service
from lib.training import DataSlice, train_grid

VENDOR_ZIP = PROJECT_ROOT / "data" / "vendor" / "bank.zip"
GRID = [{"max_depth": 5, "learning_rate": 0.1}]  # early stopping picks the number of trees
MLFLOW, BARE, OURS_INV, OURS_PRED = "mlflow models serve", "bare handler", "ours /invocations", "ours /predict"


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


def load_python(target: Target, body: bytes, clients: int, duration: float, warmup: float = 1.0) -> Result:
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


WRK_SCRIPT = """\
local f = assert(io.open({body_path!r}, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %.1f %.1f\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def load_wrk(target: Target, body: bytes, clients: int, duration: float, workdir: Path, warmup: float = 1.0) -> Result:
    """`wrk` with `clients` connections (on up to 2 threads) posting `body`; a short unmeasured run first."""
    body_path = workdir / "body.json"
    body_path.write_bytes(body)
    headers = {**target.headers, "Content-Type": "application/json"}
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    script = workdir / "bench.lua"
    script.write_text(WRK_SCRIPT.format(body_path=str(body_path), headers=lines))
    url = f"http://{target.host}:{target.port}{target.path}"

    def run(seconds: float) -> tuple[list[str], float]:
        cmd = ["wrk", f"-t{min(2, clients)}", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
               "-s", str(script), url]  # fmt: skip
        cpu0 = group_cpu_seconds(target.pgid)
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        cpu = group_cpu_seconds(target.pgid) - cpu0
        found = [line.split()[1:] for line in out.splitlines() if line.startswith("BENCH ")]
        if not found:
            raise RuntimeError(f"wrk printed no summary: {out}")
        return found[0], cpu

    run(warmup)
    (requests, micros, errors, p50, p99), cpu = run(duration)
    return Result(
        requests=int(requests) - int(errors),
        errors=int(errors),
        seconds=int(micros) / 1e6,
        p50_ms=float(p50) / 1000,
        p99_ms=float(p99) / 1000,
        server_cpu_s=cpu,
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


def wait_up(proc: subprocess.Popen, port: int, path: str, name: str, log: Path, timeout: float = 180) -> None:
    """Poll until the server answers `path` (any status below 500), or fail naming its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}; see {log}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{name} not up after {timeout:.0f}s; see {log}")


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
    wait_up(proc, port, "/ping", "mlflow models serve", log)
    return proc


def start_bare(port: int, log: Path) -> subprocess.Popen:
    """The ceiling server: our uvicorn settings around `benchmarks.bare_handler`."""
    cmd = [sys.executable, "-m", "uvicorn", "benchmarks.bare_handler:app", "--host", "127.0.0.1",
           "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
           "--log-level", "warning"]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    wait_up(proc, port, "/", "the bare handler", log)
    return proc


def start_profile(out: Path, pid: int, duration: float) -> subprocess.Popen:
    """py-spy on the server and its log writer for the warm-up and measured run (collapsed stacks)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    cmd = [spy, "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--nolineno", "--format", "raw",
           "-d", str(max(1, round(duration))), "-o", str(out)]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_compiled(host: str, port: int, timeout: float = 180) -> str:
    """Wait until our server scores with the compiled forest (built in the background after loading)."""
    deadline = time.monotonic() + timeout
    engine = "?"
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection(host, port, timeout=5)
        conn.request("GET", "/version")
        engine = json.loads(conn.getresponse().read()).get("engine", "?")
        conn.close()
        if engine == "compiled":
            break
        time.sleep(0.5)
    return engine


def build_parser() -> ArgumentParser:
    """[--duration S] [--clients N,..] [--batches N,..] [--repeats N] [--load wrk|python] [--rows N] [--keep]."""
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per scenario")
    parser.add_argument("--clients", default="1,16", help="connection counts")
    parser.add_argument("--batches", default="1,100", help="records per request")
    parser.add_argument("--repeats", type=int, default=1, help="runs per scenario and server; the median is kept")
    parser.add_argument(
        "--load",
        choices=("wrk", "python"),
        default="wrk" if shutil.which("wrk") else "python",
        help="load generator (default: wrk when installed: apt-get install wrk)",
    )
    parser.add_argument("--rows", type=int, default=10_000, help="training sample size")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record our server with py-spy during /invocations at the most connections (raw files in DIR)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the throwaway project root")
    return parser


def ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b else "n/a"


def report_issue_rows(results: dict[tuple[str, int, int], Result], clients: list[int], batches: list[int]) -> None:
    """Issue 17's table, each row as a ratio to its named baseline measured in this run."""
    many, one = max(clients), min(clients)
    big = max(batches)
    print("\nissue 17 rows (same run; ratio to the named baseline):")
    if 1 in batches:
        inv, base, bare = (results[(n, many, 1)] for n in (OURS_INV, MLFLOW, BARE))
        pred = results[(OURS_PRED, many, 1)]
        print(f"  single-record /invocations, {many} conns: {inv.rps:,.0f} req/s = {ratio(inv.rps, base.rps)} "
              f"`mlflow models serve` ({base.rps:,.0f} req/s); /predict {ratio(pred.rps, base.rps)}")  # fmt: skip
        inv1, base1, bare1 = (results[(n, one, 1)] for n in (OURS_INV, MLFLOW, BARE))
        print(f"  same, {one} conn, p50: ours {inv1.p50_ms:.3f} ms, mlflow {base1.p50_ms:.3f} ms "
              f"({ratio(base1.p50_ms, inv1.p50_ms)} faster), bare handler {bare1.p50_ms:.3f} ms "
              f"(ours = {inv1.p50_ms / bare1.p50_ms:.1f}x the bare p50)")  # fmt: skip
        print(f"  share of the bare handler ({bare.rps:,.0f} req/s, p50 {bare.p50_ms:.3f} ms), {many} conns: "
              f"/invocations {100 * inv.rps / bare.rps:.0f} %, /predict {100 * pred.rps / bare.rps:.0f} %; "
              f"{one} conn: /invocations {100 * inv1.rps / bare1.rps:.0f} %")  # fmt: skip
    if big > 1:
        for n in clients:
            inv, pred, base = (results[(t, n, big)] for t in (OURS_INV, OURS_PRED, MLFLOW))
            print(f"  {big}-record batches, {n} conn(s): /invocations {ratio(inv.rps, base.rps)}, /predict "
                  f"{ratio(pred.rps, base.rps)} `mlflow models serve` ({base.rps:,.1f} req/s)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    clients = [int(c) for c in args.clients.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    if args.load == "wrk" and shutil.which("wrk") is None:
        print("error: wrk is not installed: apt-get install wrk, or --load python", file=sys.stderr)
        return 1

    root = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    settings = load_settings({"PROJECT_ROOT": str(root), "PROJECT_OWNER": "bench", "SERVE_PORT": "0"})
    df = sample(args.rows)
    print(f"training on {len(df):,} rows into {root} ...", flush=True)
    data = DataSlice(df, "vendored sample", snapshot_id=0, parent_id=None, committed_at=None, mode="full")
    run = train_grid(data, settings, settings.experiment_name, grid=GRID, progress=False).best
    version = registry.register_run(settings, run.run_id)[0]
    registry.promote(settings, version.version)
    trees = int(run.metrics["best_iteration"]) + 1
    print(f"model {version.uri}: {trees} trees, test_roc_auc {run.metrics['test_roc_auc']:.4f}; load: {args.load}")
    records = df.drop(columns=[TARGET]).head(max(batches)).astype(object).to_dict("records")

    ep = service.start_detached(settings, expect_version=version.version)
    ml_port, bare_port = free_port(), free_port()
    procs = []
    results: dict[tuple[str, int, int], Result] = {}
    try:
        procs.append(start_mlflow(settings, version.uri, ml_port, root / "mlflow-serve.log"))
        procs.append(start_bare(bare_port, root / "bare-handler.log"))
        host, port = ep.url.removeprefix("http://").split(":")
        print(f"our server scores with: {wait_compiled(host, int(port))}", flush=True)
        targets = [
            Target(MLFLOW, "127.0.0.1", ml_port, "/invocations", {}, "invocations", procs[0].pid),
            Target(BARE, "127.0.0.1", bare_port, "/invocations", {}, "invocations", procs[1].pid),
            Target(OURS_INV, host, int(port), "/invocations", ep.headers, "invocations", ep.pid),
            Target(OURS_PRED, host, int(port), "/predict", ep.headers, "predict", ep.pid),
        ]
        for batch in batches:
            for n in clients:
                runs: dict[str, list[Result]] = {t.name: [] for t in targets}
                for _ in range(args.repeats):
                    for target in targets:
                        body = target.body(records[:batch])
                        spy = None
                        if args.profile and target.name == OURS_INV and n == max(clients):
                            spy = start_profile(args.profile / f"ours-{n}conns-{batch}rec.txt", ep.pid, args.duration)
                        if args.load == "wrk":
                            res = load_wrk(target, body, n, args.duration, root)
                        else:
                            res = load_python(target, body, n, args.duration)
                        runs[target.name].append(res)
                        if spy is not None:
                            spy.wait(timeout=args.duration + 30)
                            print(format_top(Path(spy.args[spy.args.index("-o") + 1])), flush=True)
                        print(
                            f"  {target.name:20} conns={n:<3} batch={batch:<4} {res.rps:8.1f} req/s "
                            f"{res.rps * batch:9.0f} rec/s  p50 {res.p50_ms:7.3f} ms  p99 {res.p99_ms:7.2f} ms  "
                            f"server CPU {res.cpu_us_per_request:8.0f} us/req  errors {res.errors}",
                            flush=True,
                        )
                for name, got in runs.items():
                    median = statistics.median_low([r.rps for r in got])
                    results[(name, n, batch)] = next(r for r in got if r.rps == median)
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        service.stop(settings)
    logged = MetricsStore(settings.metrics_db_url).count_predictions()

    print(f"\nmodel: {trees} trees; prediction log on ({logged:,} rows written to {settings.metrics_db_url})")
    print(f"load generator: {args.load}; {args.repeats} run(s) per scenario, each server's median run shown")
    print("x = our req/s over MLflow's in the same scenario; CPU x = MLflow's server CPU per request over")
    print("ours (server process groups, incl. our log writer): capacity per core; bare % = ours over the bare handler")
    header = (
        f"{'scenario':20} {'mlflow':>8} {'bare':>8} {'ours inv':>9} {'ours pred':>9} {'x inv':>6} {'x pred':>6} "
        f"{'CPU x inv':>9} {'CPU x pred':>10} {'bare % inv':>10} {'p50 mlflow':>10} {'p50 bare':>9} "
        f"{'p50 inv':>8} {'p50 pred':>9} {'p99 pred':>9}"
    )
    print(header)
    for batch in batches:
        for n in clients:
            base, bare, inv, pred = (results[(t, n, batch)] for t in (MLFLOW, BARE, OURS_INV, OURS_PRED))
            print(
                f"{f'{n} conn(s) x {batch} rec':20} {base.rps:8.1f} {bare.rps:8.1f} {inv.rps:9.1f} {pred.rps:9.1f} "
                f"{ratio(inv.rps, base.rps):>6} {ratio(pred.rps, base.rps):>6} "
                f"{ratio(base.cpu_us_per_request, inv.cpu_us_per_request):>9} "
                f"{ratio(base.cpu_us_per_request, pred.cpu_us_per_request):>10} "
                f"{100 * inv.rps / bare.rps:9.0f}% {base.p50_ms:8.2f}ms {bare.p50_ms:7.3f}ms "
                f"{inv.p50_ms:6.3f}ms {pred.p50_ms:7.3f}ms {pred.p99_ms:7.2f}ms"
            )
    report_issue_rows(results, clients, batches)
    if not args.keep:
        shutil.rmtree(root)
    errors = sum(r.errors for r in results.values())
    print(f"errors: {errors}")
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
