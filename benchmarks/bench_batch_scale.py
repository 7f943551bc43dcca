"""Batch scoring at 1x and 10x the table (grown by 05 batches), and with separate executor JVMs.

One throwaway project root, the path users take: 00 (offline) -> 01 (the 45,211-row UCI table) ->
03 (one small grid entry) -> its run registered and promoted `champion`. Then the real
`10_batch_scoring.py --quiet` runs --repeats times at 1x with SPARK_MASTER=local[2] and with
local-cluster[2,1,1024] (two executor JVMs), 05 appends 9x the table in --batches batches, and 10
runs again at 10x on the same champion. Each figure is the best of the repeats: the wall time of the
whole script (JVM start, economics on the held-out rows, MLflow logging included) and the part 10
reports as scoring (the one pass over the table, the ranking and the call list's Iceberg commit).
The goal: time at 10x <= 10 x the time at 1x.

    .venv/bin/python -m benchmarks.bench_batch_scale [--repeats 2] [--batches 3] [--no-cluster]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lib.cliargs import ArgumentParser

ROOT = Path(__file__).resolve().parent.parent
BASE_ROWS = 45_211
GRID = '[{"max_depth": 5, "learning_rate": 0.1}]'
CLUSTER = "local-cluster[2,1,1024]"
_SCORING = re.compile(r"^seconds\s*:\s*[\d.]+ \(scoring and the call list's commit ([\d.]+)\)", re.MULTILINE)


def run(env: dict[str, str], *argv: str) -> tuple[float, str]:
    """Wall time and stdout of one project command; a failure stops the benchmark with its stderr."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start, proc.stdout


def score(env: dict[str, str], repeats: int) -> tuple[float, float]:
    """Best wall time and best scoring time of `repeats` runs of 10."""
    walls, scorings = [], []
    for _ in range(repeats):
        wall, out = run(env, "10_batch_scoring.py", "--quiet")
        match = _SCORING.search(out)
        if match is None:
            sys.exit(f"10_batch_scoring.py printed no scoring time:\n{out}")
        walls.append(wall)
        scorings.append(float(match.group(1)))
        print(f"    10: {wall:6.1f} s, scoring {scorings[-1]:6.1f} s", flush=True)
    return min(walls), min(scorings)


def build_parser() -> ArgumentParser:
    """[--repeats N] [--batches N] [--no-cluster]; usage errors exit 64."""
    parser = ArgumentParser(
        prog="bench_batch_scale", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=2, help="runs of 10 per setting, best kept (default 2)")
    parser.add_argument("--batches", type=int, default=3, help="05 batches that grow the table to 10x (default 3)")
    parser.add_argument("--no-cluster", action="store_true", help=f"skip the {CLUSTER} runs")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    results: dict[str, tuple[int, float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-batch-scale-") as tmp:
        env = {**os.environ, "PROJECT_ROOT": tmp, "PROJECT_OWNER": "bench", "SPARK_MASTER": "local[2]"}
        run(env, "00_download.py", "--offline")
        run(env, "01_write_to_dl.py")
        run(env, "03_train.py", "--grid", GRID, "--workers", "1", "--no-progress")
        promote = ("from lib import registry; from lib.config import load_settings; s = load_settings(); "
                   "registry.promote(s, registry.register_best(s, s.experiment_name).version)")  # fmt: skip
        run(env, "-c", promote)
        print(f"1x: {BASE_ROWS:,} rows, local[2]", flush=True)
        results["1x local[2]"] = (BASE_ROWS, *score(env, args.repeats))
        if not args.no_cluster:
            print(f"1x: {BASE_ROWS:,} rows, {CLUSTER}", flush=True)
            results[f"1x {CLUSTER}"] = (BASE_ROWS, *score({**env, "SPARK_MASTER": CLUSTER}, args.repeats))
        grow = 9 * BASE_ROWS
        for i in range(args.batches):
            rows = grow // args.batches + (1 if i < grow % args.batches else 0)
            run(env, "05_newbatch.py", "--rows", str(rows), "--seed", str(i + 1))
        print(f"10x: {10 * BASE_ROWS:,} rows, local[2]", flush=True)
        results["10x local[2]"] = (10 * BASE_ROWS, *score(env, args.repeats))

    base_wall, base_scoring = results["1x local[2]"][1:]
    print(f"\n10_batch_scoring.py, best of {args.repeats}; baseline 1x local[2]")
    print(f"{'setting':32} {'rows':>9} {'10 s':>7} {'x':>6} {'scoring s':>10} {'x':>6} {'scoring rows/s':>15}")
    for name, (rows, wall, scoring) in results.items():
        print(f"{name:32} {rows:9,} {wall:7.1f} {wall / base_wall:6.2f} {scoring:10.1f} "
              f"{scoring / base_scoring:6.2f} {rows / scoring:15,.0f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
