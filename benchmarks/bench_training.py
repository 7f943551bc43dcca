"""Training benchmark: wall time of the 12-run grid on the real 45,211 rows, MLflow logging included.

Compares, in one process and on the same data (read from the vendored zip, no Spark, so only
training and tracking are timed), each against the named baseline:

  parallel   train_grid as 03_train.py runs it: one single-threaded booster per core in worker
             threads while the main thread logs finished runs to MLflow   (baseline: sequential)
  sequential train_grid with workers=1: one booster at a time using every core
  fit only   the same boosters without any MLflow logging, sequential and parallel, to show
             what tracking costs on top of training

Every variant uses a fresh MLflow SQLite store under a temp root.

    .venv/bin/python -m benchmarks.bench_training [--runs 12] [--include-duration]
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

import pandas as pd

from lib.cliargs import ArgumentParser
from lib.config import DEFAULT_SEED, PROJECT_ROOT, load_settings
from lib.features import FeatureSet, pandas_dtypes
from lib.training.data import DataSlice
from lib.training.fit import cpu_cores, fit_booster, prepare_data
from lib.training.grid import DEFAULT_GRID, first_runs
from lib.training.train import train_grid


def real_data() -> DataSlice:
    with zipfile.ZipFile(PROJECT_ROOT / "data" / "vendor" / "bank.zip") as zf, zf.open("bank-full.csv") as fh:
        df = pd.read_csv(fh, sep=";", dtype=pandas_dtypes())
    return DataSlice(df=df, table="bench.bank_full", snapshot_id=1, parent_id=None, committed_at=None, mode="full")


def fit_only(data: DataSlice, grid: list[dict], features: FeatureSet, workers: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of fitting the grid without any tracking."""
    start, cpu = time.perf_counter(), time.process_time()
    prep = prepare_data(data, features, seed=DEFAULT_SEED)
    nthread = max(1, cpu_cores() // workers)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda entry: fit_booster(prep, entry, nthread), grid))
    return time.perf_counter() - start, time.process_time() - cpu


def tracked(data: DataSlice, grid: list[dict], features: FeatureSet, workers: int) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, best test ROC AUC) of train_grid with MLflow logging."""
    cpu = time.process_time()
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        settings = load_settings({"PROJECT_ROOT": tmp, "PROJECT_OWNER": "bench"})
        result = train_grid(data, settings, "bench", grid=grid, features=features, progress=False, workers=workers)
    return result.seconds, time.process_time() - cpu, result.best.metrics["test_roc_auc"]


def load_average() -> str:
    """The 1/5/15-minute load averages: how busy the machine was while the variants ran."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def build_parser() -> ArgumentParser:
    """[--runs N] [--include-duration]; usage errors exit 64."""
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=len(DEFAULT_GRID), help="grid runs (default: %(default)s)")
    parser.add_argument("--include-duration", action="store_true", help="benchmark the leaky feature set")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    logging.basicConfig(level=logging.WARNING)
    data, grid = real_data(), first_runs(DEFAULT_GRID, args.runs)
    features = FeatureSet(include_duration=args.include_duration)
    cores = cpu_cores()
    print(f"{len(grid)} runs on {len(data.df):,} rows, {cores} cores, include_duration={features.include_duration}")
    print(f"load average at start: {load_average()}  (other jobs on the machine inflate wall seconds, not CPU seconds)")

    seq, seq_cpu, auc_seq = tracked(data, grid, features, workers=1)
    par, par_cpu, auc_par = tracked(data, grid, features, workers=cores)
    fit_seq, fit_seq_cpu = fit_only(data, grid, features, workers=1)
    fit_par, fit_par_cpu = fit_only(data, grid, features, workers=cores)

    rows = [
        (f"sequential, {cores} threads (baseline)", seq, seq_cpu, auc_seq),
        (f"parallel x{cores} (03_train.py)", par, par_cpu, auc_par),
        (f"fit only, sequential {cores} threads", fit_seq, fit_seq_cpu, None),
        (f"fit only, parallel x{cores}", fit_par, fit_par_cpu, None),
    ]
    header = f"{'wall s':>7} {'vs baseline':>12} {'CPU s':>7} {'CPU vs baseline':>16} {'best test AUC':>14}"
    print(f"\n{'variant':36} {header}")
    for name, seconds, cpu, auc in rows:
        score = "" if auc is None else f"{auc:.4f}"
        print(f"{name:36} {seconds:7.1f} {seq / seconds:11.2f}x {cpu:7.1f} {cpu / seq_cpu:15.2f}x {score:>14}")
    print(f"\nMLflow logging (params, metrics, dataset, model, importance, profile, figures): "
          f"{par_cpu - fit_par_cpu:.1f} CPU s for {len(grid)} runs, "
          f"{(par_cpu - fit_par_cpu) / len(grid):.2f} s per run, overlapped with training")  # fmt: skip
    print(
        f"parallel x{cores} (03_train.py): {par:.1f} s wall, {par_cpu:.1f} CPU s "
        f"(CPU s / {cores} cores = {par_cpu / cores:.1f} s: the wall time on {cores} otherwise idle cores at best)"
    )
    print(f"load average at end: {load_average()}")
    print(f"budget: 12-run grid incl. logging <= 60 s on {cores} cores -> parallel took {par:.1f} s wall")


if __name__ == "__main__":
    main()
