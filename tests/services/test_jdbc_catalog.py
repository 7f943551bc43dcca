"""The Iceberg JDBC catalog on PostgreSQL as a workshop uses it: concurrent 05 appends from two
machines, and snapshots, time travel and rollback.

One participant's table is written by 01 on the Spark standalone cluster. Two 05 runs then append
to it at the same time as `New Batch` jobs from two project roots (two machines: no shared file
lock, so the catalog's own commit retry must keep both), recorded in the participant's PostgreSQL
job history; as on SQLite both land, one after the other. Then `python -m lib.lake rollback`
points the table back, pyiceberg reads the result through the same catalog, and a new append
continues from the rolled-back snapshot.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lib import lake
from lib.batches import BatchError, check_batch_in_table, read_batch_csv
from lib.config import PROJECT_ROOT
from lib.jobs import history
from tests.services.services_lab import SAMPLE_ROWS, Owner, ServiceStack, make_owner, run, write_sample

pytestmark = [pytest.mark.services, pytest.mark.slow]

OWNER = "lakeuser"
BATCHES = {"a": ["--rows", "150", "--seed", "9", "--drift", "month"], "b": ["--rows", "90", "--seed", "10"]}
ROWS_LINE = re.compile(r"^rows +: ([\d,]+) -> ([\d,]+) \(\+(\d+)\)$", re.M)


def new_batch_spec(path: Path, args: list[str]) -> Path:
    """A one-job spec: the real 05 with these arguments, as the `New Batch` job."""
    spec = {"jobs": [{"name": "New Batch", "script": str(PROJECT_ROOT / "05_newbatch.py"), "args": args}]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec))
    return path


def number(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.fixture(scope="module")
def machines(service_stack: ServiceStack, projects_dir: Path) -> dict[str, Owner]:
    """The participant on two machines (project roots), one table: 01 from the first, then both 05s at once."""
    owners = {
        name: make_owner(service_stack, projects_dir / f"{OWNER}-{name}", OWNER,
                         JOBS_SPEC=str(new_batch_spec(projects_dir / f"{OWNER}-{name}" / "jobs.yaml", args)))
        for name, args in BATCHES.items()
    }  # fmt: skip
    first = owners["a"]
    run(first, "01_write_to_dl.py", "--csv", str(write_sample(first.settings.data_dir)))
    cmd = [sys.executable, "-m", "lib.jobs", "run", "New Batch", "--no-deps"]
    procs = {
        name: subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=owner.env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        for name, owner in owners.items()
    }  # fmt: skip
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, f"{name}: New Batch exited {proc.returncode}:\n{out[-2000:]}\n{err[-3000:]}"
    return owners


def test_concurrent_appends_from_two_machines_both_land(machines: dict[str, Owner]) -> None:
    settings, other = machines["a"].settings, machines["b"].settings
    assert settings.catalog_type == "jdbc" and settings.root != other.root
    assert (settings.table_ident, settings.metrics_db_url) == (other.table_ident, other.metrics_db_url)
    create, *appends = lake.read_snapshots(settings)  # pyiceberg's SQL catalog on PostgreSQL: no JVM
    # one line of history: each append's parent is the snapshot before it, none lost
    assert [s.parent_id for s in appends] == [create.snapshot_id, appends[0].snapshot_id]
    assert appends[-1].is_current and appends[-1].total_records == SAMPLE_ROWS + 240
    assert sorted(s.added_records for s in appends) == [90, 150]
    assert len(lake.read_pandas(settings)) == SAMPLE_ROWS + 240

    # both runs in the participant's job history on PostgreSQL, as the runner recorded them
    runs = history(settings, limit=5)
    assert settings.metrics_db_url.startswith("postgresql+psycopg://")
    assert sorted((r.job, r.status, r.trigger) for r in runs) == [("New Batch", "succeeded", "manual")] * 2
    # what each 05 printed matches the commit it made, whichever committed first
    printed = sorted(tuple(number(g) for g in ROWS_LINE.search(Path(r.log_path).read_text()).groups()) for r in runs)
    expected = sorted((s.total_records - s.added_records, s.total_records, s.added_records) for s in appends)
    assert printed == expected
    month_csvs = [p for o in machines.values() for p in o.settings.batches_dir.glob("batch_*_month.csv")]
    assert len(month_csvs) == 1 and len(read_batch_csv(month_csvs[0])) == 150


def test_rollback_time_travel_and_a_new_append_on_the_jdbc_catalog(machines: dict[str, Owner]) -> None:
    owner = machines["a"]
    settings = owner.settings
    create, *appends = lake.read_snapshots(settings)

    listed = run(owner, "-m", "lib.lake", "snapshots")
    assert all(str(s.snapshot_id) in listed for s in (create, *appends))
    rolled = run(owner, "-m", "lib.lake", "rollback", "--to", str(create.snapshot_id))
    assert f"back to snapshot {create.snapshot_id}" in rolled

    after = lake.read_snapshots(settings)
    assert [s.snapshot_id for s in after] == [create.snapshot_id, *(s.snapshot_id for s in appends)]
    assert [s.is_current for s in after] == [True, False, False]  # nothing deleted, the pointer moved
    assert len(lake.read_pandas(settings)) == SAMPLE_ROWS
    assert len(lake.read_pandas(settings, snapshot_id=appends[-1].snapshot_id)) == SAMPLE_ROWS + 240  # time travel
    with pytest.raises(BatchError, match="rolled back out of"):
        check_batch_in_table(settings)  # 08 will not replay a batch the table no longer holds

    out = run(owner, "05_newbatch.py", "--rows", "40", "--seed", "11")
    assert f"rows      : {SAMPLE_ROWS:,} -> {SAMPLE_ROWS + 40:,} (+40)" in out
    latest = lake.read_snapshots(settings)[-1]
    assert latest.is_current and latest.parent_id == create.snapshot_id
    assert len(lake.read_pandas(settings)) == SAMPLE_ROWS + 40
    check_batch_in_table(settings)
