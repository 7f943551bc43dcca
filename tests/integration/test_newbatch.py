"""05's batch append against real Spark + Iceberg: one snapshot per valid batch, none for a bad one."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from lib import lake
from lib.batches import (
    BatchError,
    append_batch,
    append_lock_path,
    generate_batch,
    latest_batch_path,
    load_source,
    read_batch_csv,
)
from lib.config import PROJECT_ROOT, Settings
from lib.dataset import read_csv

pytestmark = pytest.mark.integration


def state(spark, settings: Settings) -> tuple[int, int]:
    """(number of snapshots, rows at the current snapshot)."""
    return len(lake.list_snapshots(spark, settings)), lake.read_table(spark, settings).count()


def start_05(settings: Settings, *args: str) -> subprocess.Popen:
    env = {
        **os.environ, "PROJECT_ROOT": str(settings.root), "PROJECT_OWNER": settings.user,
        "SPARK_MASTER": "local[1]", "SPARK_CONF_SPARK_DRIVER_MEMORY": "1g",
    }  # fmt: skip
    return subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "05_newbatch.py"), *args],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def run_05(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    proc = start_05(settings, *args)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_valid_batch_is_one_snapshot_with_exactly_its_rows(spark, sample_table: Settings):
    source, snapshot_id = load_source(sample_table)
    assert len(source) == 3000
    before_snaps, before_rows = state(spark, sample_table)
    batch = generate_batch(source, 700, seed=3, drift="age")

    result = append_batch(spark, sample_table, batch, "age")

    assert state(spark, sample_table) == (before_snaps + 1, before_rows + 700)
    assert (result.rows, result.rows_before, result.rows_after) == (700, 3000, 3700)
    assert result.parent_id == snapshot_id
    snap = lake.get_snapshot(spark, sample_table, result.snapshot_id)
    assert snap.is_current and snap.operation == "append" and snap.added_records == 700
    added = lake.read_added(spark, sample_table, snapshot_id, result.snapshot_id).toPandas()
    assert sorted(added["age"]) == sorted(batch["age"])

    assert result.csv_path == latest_batch_path(sample_table)
    assert result.csv_path.name == f"batch_{result.snapshot_id}_age.csv"
    pd.testing.assert_frame_equal(read_csv(result.csv_path), batch)
    assert not list(sample_table.batches_dir.glob(".*"))


def test_invalid_batches_append_nothing(spark, sample_table: Settings, bank_sample: pd.DataFrame):
    before = state(spark, sample_table)
    files = set(sample_table.batches_dir.glob("*")) if sample_table.batches_dir.exists() else set()
    good = generate_batch(bank_sample, 200, seed=1)
    bad_batches = {
        "empty": good.head(0),
        "missing column": good.drop(columns=["contact"]),
        "unknown column": good.assign(extra="x"),
        "wrong type": good.assign(age=good["age"].astype(float) + 0.5),
        "null": good.assign(education=good["education"].where(good.index != 5)),
        "unknown category": good.assign(job=good["job"].where(good.index != 9, "astronaut")),
        "out of range": good.assign(campaign=0),
        "bad target": good.assign(y="1"),
    }
    for kind, bad in bad_batches.items():
        with pytest.raises(BatchError, match="no rows|nothing appended"):
            append_batch(spark, sample_table, bad, "none")
        assert state(spark, sample_table) == before, kind
    assert (set(sample_table.batches_dir.glob("*")) if sample_table.batches_dir.exists() else set()) == files
    with pytest.raises(BatchError, match="run 05_newbatch.py first"):
        latest_batch_path(sample_table)


def test_new_category_needs_permission(spark, sample_table: Settings, bank_sample: pd.DataFrame):
    batch = generate_batch(bank_sample, 100, seed=2)
    batch.loc[:9, "job"] = "astronaut"
    before_snaps, before_rows = state(spark, sample_table)
    with pytest.raises(BatchError, match="astronaut"):
        append_batch(spark, sample_table, batch, "file")
    result = append_batch(spark, sample_table, batch, "file", allow_new_categories=True)
    assert state(spark, sample_table) == (before_snaps + 1, before_rows + 100)
    assert (lake.read_table(spark, sample_table).toPandas()["job"] == "astronaut").sum() == 10
    assert result.csv_path.name.endswith("_file.csv")


def test_concurrent_appends_both_land(spark, sample_table: Settings, bank_sample: pd.DataFrame):
    before_snaps, before_rows = state(spark, sample_table)
    batches = [generate_batch(bank_sample, n, seed=n) for n in (120, 230)]
    results, errors = [], []

    def worker(batch: pd.DataFrame) -> None:
        try:
            results.append(append_batch(spark, sample_table, batch, "none"))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert state(spark, sample_table) == (before_snaps + 2, before_rows + 350)
    first, second = sorted(results, key=lambda r: r.rows_before)
    assert second.parent_id == first.snapshot_id and second.rows_before == first.rows_after
    assert latest_batch_path(sample_table) == second.csv_path


@pytest.mark.slow  # three 05 processes
def test_script_appends_concurrently_and_rejects(spark, sample_table: Settings, tmp_path: Path):
    snaps, rows = state(spark, sample_table)
    # two 05 processes (two JVMs) at once: both land, one after the other
    procs = [
        start_05(sample_table, "--rows", "150", "--seed", "9", "--drift", "month"),
        start_05(sample_table, "--rows", "90", "--seed", "10"),
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "snapshot  : " in out and "next      : python 06_retrain.py" in out
    assert state(spark, sample_table) == (snaps + 2, rows + 240)
    printed = {line for out, _ in outputs for line in out.splitlines() if line.startswith("rows      :")}
    assert printed in (
        {
            f"rows      : {rows:,} -> {rows + 150:,} (+150)",
            f"rows      : {rows + 150:,} -> {rows + 240:,} (+90)",
        },
        {
            f"rows      : {rows:,} -> {rows + 90:,} (+90)",
            f"rows      : {rows + 90:,} -> {rows + 240:,} (+150)",
        },
    )
    new_ids = [s.snapshot_id for s in lake.list_snapshots(spark, sample_table)][-2:]
    [month_csv] = [p for i in new_ids if (p := sample_table.batches_dir / f"batch_{i}_month.csv").exists()]
    month_batch = read_batch_csv(month_csv)
    assert len(month_batch) == 150
    assert set(month_batch["month"]) <= {"oct", "nov", "dec", "jan", "feb", "mar", "sep"}
    rows += 240

    bad = tmp_path / "bad.csv"
    lines = latest_batch_path(sample_table).read_text().splitlines()
    bad.write_text("\n".join([lines[0], lines[1].replace('"no"', '"perhaps"', 1), *lines[2:20]]) + "\n")
    result = run_05(sample_table, "--from-file", str(bad))
    assert result.returncode == 1
    assert "nothing appended" in result.stderr and "'perhaps'" in result.stderr
    assert "Traceback" not in result.stderr
    assert state(spark, sample_table) == (snaps + 2, rows)

    good = tmp_path / "good.csv"
    good.write_text("\n".join(lines[:41]) + "\n")
    dry = run_05(sample_table, "--from-file", str(good), "--dry-run")
    assert dry.returncode == 0 and "nothing appended" in dry.stdout
    assert state(spark, sample_table) == (snaps + 2, rows)


def test_table_schema_drift_is_refused(spark, sample_table: Settings, bank_sample: pd.DataFrame):
    spark.sql(f"ALTER TABLE {sample_table.table_ident} ADD COLUMNS (score double)")
    before = state(spark, sample_table)
    with pytest.raises(BatchError, match="schema .* differs from the feature definition.*01_write_to_dl.py"):
        append_batch(spark, sample_table, generate_batch(bank_sample, 50, seed=1), "none")
    assert state(spark, sample_table) == before


def test_append_waiting_too_long_for_the_lock_fails_cleanly(spark, sample_table: Settings, bank_sample: pd.DataFrame):
    from filelock import FileLock

    before = state(spark, sample_table)
    path = append_lock_path(sample_table)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path), pytest.raises(BatchError, match="held the lock.*nothing appended"):
        append_batch(spark, sample_table, generate_batch(bank_sample, 50, seed=1), "none", lock_timeout=0.5)
    assert state(spark, sample_table) == before


def current_snapshot(settings: Settings) -> tuple[int, int]:
    """(current snapshot id, total rows), read from the metadata with pyiceberg."""
    [current] = [s for s in lake.read_snapshots(settings) if s.is_current]
    return current.snapshot_id, current.total_records


@pytest.mark.slow
def test_hostile_files_from_the_command_line(spark, sample_table: Settings, bank_sample: pd.DataFrame, tmp_path):
    """05 --from-file end to end: a hostile file is one `error:` line, exit 1, the same snapshot and no
    batch file; a valid file with BOM, CRLF and shuffled columns appends exactly its rows."""
    before = current_snapshot(sample_table)
    files = set(sample_table.batches_dir.glob("*")) if sample_table.batches_dir.exists() else set()
    batch = generate_batch(bank_sample, 30, seed=4)
    text = batch.to_csv(sep=";", index=False)
    huge = text.replace(f"\n{batch.loc[0, 'age']};", "\n99999999999999999999999;", 1)  # was an OverflowError
    ragged = text.replace("\n", ';"stray\n', 3)
    for name, content in {"huge.csv": huge, "ragged.csv": ragged}.items():
        (tmp_path / name).write_text(content)
        result = run_05(sample_table, "--from-file", str(tmp_path / name))
        assert result.returncode == 1, result.stdout + result.stderr
        [line] = result.stderr.splitlines()
        assert line.startswith("error: ") and "Traceback" not in result.stdout, result.stderr
        assert current_snapshot(sample_table) == before
        assert (set(sample_table.batches_dir.glob("*")) if sample_table.batches_dir.exists() else set()) == files
    assert "age: 1 value(s) outside [18, 120]" in run_05(sample_table, "--from-file", str(tmp_path / "huge.csv")).stderr

    shuffled = batch.loc[:, list(reversed(batch.columns))]
    good = tmp_path / "good.csv"
    good.write_bytes(b"\xef\xbb\xbf" + shuffled.to_csv(sep=";", index=False, lineterminator="\r\n").encode())
    result = run_05(sample_table, "--from-file", str(good))
    assert result.returncode == 0, result.stdout + result.stderr
    snapshot_id, rows = current_snapshot(sample_table)
    assert rows == before[1] + 30
    added = lake.read_added(spark, sample_table, before[0], snapshot_id).toPandas()
    pd.testing.assert_frame_equal(
        added.sort_values(list(batch.columns)).reset_index(drop=True).astype(batch.dtypes.to_dict()),
        batch.sort_values(list(batch.columns)).reset_index(drop=True),
    )
