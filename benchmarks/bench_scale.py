"""Scale benchmark: retrain cost at 1x, 3x and 10x the table size, and Spark in separate executor JVMs.

Baseline: the retrain on the original 45,211-row table (1x). The table grows through 05_newbatch.py
(the same path users take), and every figure is the wall time of the real script in a throwaway
project root. Cost should grow no faster than linearly: the ratio column is (time ratio) / (size ratio).

Then 01 and 05 run with SPARK_MASTER=local-cluster[2,1,1024] to show the Spark code paths work with
separate executor processes, not only in the driver JVM.

    .venv/bin/python -m benchmarks.bench_scale [--runs 3]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lib.cliargs import ArgumentParser

ROOT = Path(__file__).resolve().parent.parent
BASE_ROWS = 45_211


def run(script: str, env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, script, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{script} {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start


def build_parser() -> ArgumentParser:
    """[--runs N]; usage errors exit 64."""
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="grid runs per retrain (default: %(default)s)")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        env = {**os.environ, "PROJECT_ROOT": tmp, "PROJECT_OWNER": "bench"}
        run("00_download.py", env, "--offline")
        run("01_write_to_dl.py", env)
        rows, results = BASE_ROWS, []
        for factor in (1, 3, 10):
            if factor * BASE_ROWS > rows:
                grow = factor * BASE_ROWS - rows
                run("05_newbatch.py", env, "--rows", str(grow), "--seed", str(factor))
                rows += grow
            seconds = run("06_retrain.py", env, "--data", "full", "--max-runs", str(args.runs))
            results.append((factor, rows, seconds))
        base = results[0][2]
        print(f"\nretrain ({args.runs} runs, --data full) vs baseline 1x = {BASE_ROWS:,} rows")
        print(f"{'size':>5} {'rows':>10} {'seconds':>9} {'time x':>7} {'time x / size x':>16}")
        for factor, n, seconds in results:
            print(f"{factor:>4}x {n:>10,} {seconds:>9.1f} {seconds / base:>7.2f} {seconds / base / factor:>16.2f}")

    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        timings = {}
        for master in ("local[2]", "local-cluster[2,1,1024]"):
            env = {**os.environ, "PROJECT_ROOT": tmp, "PROJECT_OWNER": "cluster", "SPARK_MASTER": master}
            run("00_download.py", env, "--offline")
            timings[master] = (run("01_write_to_dl.py", env), run("05_newbatch.py", env, "--rows", "10000"))
        print("\n01 and 05 by Spark master (baseline local[2])")
        for master, (t01, t05) in timings.items():
            print(f"{master:>24}: 01 {t01:6.1f} s   05 {t05:6.1f} s")
        base01, base05 = timings["local[2]"]
        c01, c05 = timings["local-cluster[2,1,1024]"]
        print(f"{'ratio cluster/local':>24}: 01 {c01 / base01:6.2f} x   05 {c05 / base05:6.2f} x")


if __name__ == "__main__":
    main()
