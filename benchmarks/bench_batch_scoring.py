"""Batch scoring benchmark: rows/s of 10_batch_scoring.py's scoring path vs MLflow's answers, same run.

One throwaway project root: a table of --rows real UCI rows (the vendored data, repeated through
05's batch generator when --rows is larger), one registered champion, one Spark session. Every
contender scores the same table with the same model version, best of --repeats after one
untimed warm-up:

  ours: scoring only     lib.scoring's one pass: content hash, categories encoded in Spark SQL, the
                         booster broadcast once, mapInPandas over Arrow batches (materialised with
                         Spark's `noop` sink, like the baselines)
  ours: the call list    the whole of 10's write: that pass, the (hash, probability) pairs numbered and
                         ranked by Spark windows, deciles, decision and lineage, one Iceberg commit
  mlflow spark_udf       mlflow.pyfunc.spark_udf on the registered model (MLflow's batch answer)
  REST /invocations      the table pulled to the driver and POSTed to our running endpoint in
                         batches of --batch records (the server logs every prediction)

    .venv/bin/python -m benchmarks.bench_batch_scoring [--rows 20000] [--repeats 2] [--batch 1000]
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
from pyspark.sql import functions as F

from lib import registry
from lib.batches import generate_batch
from lib.cliargs import ArgumentParser
from lib.config import PROJECT_ROOT, load_settings
from lib.economics import CampaignEconomics
from lib.features import TARGET, pandas_dtypes, spark_ddl
from lib.lake import create_or_replace, current_snapshot_id, get_spark, read_table
from lib.scoring import build_call_list, load_champion, ship_code
from lib.scoring import write_call_list as commit_call_list
from lib.scoring.scorer import score_pairs
from lib.serving import service
from lib.training import DataSlice, train_grid

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
VENDOR_ZIP = PROJECT_ROOT / "data" / "vendor" / "bank.zip"
GRID = [{"max_depth": 5, "learning_rate": 0.1}]  # early stopping picks the number of trees, as in bench_serving


def table_rows(rows: int) -> pd.DataFrame:
    with zipfile.ZipFile(VENDOR_ZIP) as zf, zf.open("bank-full.csv") as fh:
        full = pd.read_csv(fh, sep=";", dtype=pandas_dtypes())
    if rows <= len(full):
        return full.sample(rows, random_state=7).reset_index(drop=True)
    return pd.concat([full, generate_batch(full, rows - len(full), seed=7)], ignore_index=True)


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    """Best wall time of `repeats` runs after one untimed warm-up (Python workers started, caches filled)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def post_batches(url: str, headers: dict[str, str], frame: pd.DataFrame, batch: int) -> None:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    columns = list(frame.columns)
    try:
        for start in range(0, len(frame), batch):
            part = frame.iloc[start : start + batch]
            body = json.dumps({"dataframe_split": {"columns": columns, "data": part.to_numpy().tolist()}})
            conn.request("POST", "/invocations", body, {**headers, "Content-Type": "application/json"})
            reply = conn.getresponse()
            data = reply.read()
            if reply.status != 200:
                raise RuntimeError(f"/invocations answered {reply.status}: {data[:300]!r}")
    finally:
        conn.close()


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="bench_batch_scoring", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=20_000, help="table size (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats per contender, best kept")
    parser.add_argument("--batch", type=int, default=1000, help="records per REST request (default %(default)s)")
    parser.add_argument("--master", default="local[2]", help="SPARK_MASTER for this run (default %(default)s)")
    parser.add_argument("--no-rest", action="store_true", help="skip the REST endpoint baseline")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway project root")
    reuse = "score the table and champion of a root kept by an earlier --keep (no training)"
    parser.add_argument("--reuse", type=Path, metavar="ROOT", help=reuse)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    root = args.reuse or Path(tempfile.mkdtemp(prefix="bench-batch-scoring-"))
    settings = load_settings({"PROJECT_ROOT": str(root), "PROJECT_OWNER": "bench", "SERVE_PORT": "0"})
    settings = dataclasses.replace(settings, spark_master=args.master)
    spark = get_spark(settings)
    try:
        if args.reuse is None:
            df = table_rows(args.rows)
            create_or_replace(spark, settings, spark.createDataFrame(df, schema=spark_ddl()))
            snapshot = current_snapshot_id(spark, settings)
            print(f"table {settings.table_ident}: {len(df):,} rows, master {args.master}; training ...", flush=True)
            data = DataSlice(df, settings.table_ident, snapshot_id=snapshot, parent_id=None, committed_at=None,
                             mode="full")  # fmt: skip
            run = train_grid(data, settings, settings.experiment_name, grid=GRID, progress=False, workers=1).best
            registry.promote(settings, registry.register_run(settings, run.run_id)[0].version)
        snapshot = current_snapshot_id(spark, settings)
        champion = load_champion(settings)
        version = champion.info
        trees = champion.model.booster.num_boosted_rounds()
        print(f"model {version.uri}: {trees} trees; table at snapshot {snapshot}, master {args.master}", flush=True)
        table = read_table(spark, settings, snapshot_id=snapshot).cache()
        rows = table.count()
        ship_code(spark)
        results: dict[str, float] = {}

        def ours() -> None:
            score_pairs(spark, table, champion, rows).write.format("noop").mode("overwrite").save()

        def call_list() -> None:
            frame = build_call_list(spark, table, champion, snapshot, rows, 0.1, CampaignEconomics(5, 100))
            commit_call_list(spark, settings, frame, {"bench": "1"})

        # built once, outside the timing: MLflow's model download and archive are set-up, not scoring
        udf = mlflow.pyfunc.spark_udf(spark, version.uri, result_type="prediction int, probability double",
                                      env_manager="local")  # fmt: skip

        def spark_udf() -> None:
            scored = table.withColumn("out", udf(F.struct(*[F.col(c) for c in champion.columns])))
            scored.select("out.probability").write.format("noop").mode("overwrite").save()

        contenders = (("ours: scoring only", ours), ("ours: the call list", call_list), ("mlflow spark_udf", spark_udf))
        for name, fn in contenders:
            results[name] = best_of(args.repeats, fn)
            print(f"  {name:22} {results[name]:7.2f} s  {rows / results[name]:10,.0f} rows/s", flush=True)

        if not args.no_rest:
            ep = service.start_detached(settings, expect_version=version.version)
            try:
                frame = table.drop(TARGET).toPandas()
                name = f"REST /invocations x{args.batch}"
                results[name] = best_of(args.repeats, lambda: post_batches(ep.url, ep.headers, frame, args.batch))
                print(f"  {name:22} {results[name]:7.2f} s  {rows / results[name]:10,.0f} rows/s", flush=True)
            finally:
                service.stop(settings)
    finally:
        spark.stop()
        if not args.keep and args.reuse is None:
            shutil.rmtree(root, ignore_errors=True)

    base = results["mlflow spark_udf"]
    print(f"\nscoring {rows:,} rows, best of {args.repeats}, master {args.master}")
    print(f"{'contender':28} {'seconds':>8} {'rows/s':>10} {'vs spark_udf':>13}")
    for name, seconds in results.items():
        print(f"{name:28} {seconds:8.2f} {rows / seconds:10,.0f} {base / seconds:12.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
