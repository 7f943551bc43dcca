"""The lab on the real shared services: PostgreSQL, an MLflow tracking server, a Spark standalone
cluster and the Iceberg JDBC catalog, started by `lib.stack` in a temporary directory.

Two participants (`PROJECT_OWNER`s) run the whole lab at the same time on the one stack, as in a
workshop: 00 → 01 → 03 → 04 → the job chain New Batch → Retrain Models → Redeploy Model → 08.
The results are checked in the services themselves: the Iceberg tables through pyiceberg's SQL
catalog on PostgreSQL, runs, aliases and served artifacts through the tracking server, the
prediction log and job history in PostgreSQL; and neither participant sees the other's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from lib import lake, stack
from lib.config import PROJECT_ROOT, Settings, load_settings, sqlalchemy_catalog_url
from lib.features import pandas_dtypes
from lib.scoring import call_list_name

pytestmark = [pytest.mark.services, pytest.mark.slow]

OWNERS = ("alice", "bob")
SAMPLE_ROWS = 4000
BATCH_ROWS = 1000
REQUESTS = 30
TINY_GRID = json.dumps([{"max_depth": 3, "learning_rate": 0.3, "num_boost_round": 15, "early_stopping_rounds": 5}])
TRAIN_ARGS = ["--grid", TINY_GRID, "--workers", "1", "--no-progress"]


@dataclass
class Owner:
    name: str
    env: dict[str, str]
    settings: Settings
    outputs: dict[str, str] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def run(owner: Owner, *cmd: str, ok: tuple[int, ...] = (0,), timeout: float = 900) -> str:
    """One lab command as the participant types it; a failure ends the test with its output."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, *cmd], cwd=PROJECT_ROOT, env=owner.env, capture_output=True, text=True, timeout=timeout
    )
    step = cmd[0] if cmd[0] != "-m" else cmd[1]
    owner.exit_codes[step] = done.returncode
    owner.seconds[step] = time.monotonic() - started
    if done.returncode not in ok:
        raise AssertionError(f"{owner.name}: {' '.join(cmd[:2])} exited {done.returncode}:\n{done.stderr[-3000:]}")
    owner.outputs[step] = done.stdout
    return done.stdout


def write_spec(path: Path) -> Path:
    """The real chain (same scripts, same dependencies), with a small batch and a tiny grid."""
    from lib.jobs import load_spec

    extra = {"05_newbatch.py": ["--rows", str(BATCH_ROWS)], "06_retrain.py": TRAIN_ARGS}
    jobs = []
    for job in load_spec(PROJECT_ROOT / "jobs.yaml").jobs:
        entry = {"name": job.name, "script": str(PROJECT_ROOT / job.script), "args": [*job.args]}
        entry["args"] += extra.get(job.script or "", [])
        if job.depends_on:
            entry["depends_on"] = list(job.depends_on)
        jobs.append(entry)
    path.write_text(json.dumps({"jobs": jobs}))  # JSON is YAML
    return path


def write_sample(data_dir: Path) -> Path:
    """A stratified sample of the vendored UCI table: the same schema, small enough for a 2-core CI box."""
    with zipfile.ZipFile(PROJECT_ROOT / "data" / "vendor" / "bank.zip") as zf, zf.open("bank-full.csv") as fh:
        full = pd.read_csv(fh, sep=";", dtype=pandas_dtypes())
    parts = [g.sample(frac=SAMPLE_ROWS / len(full), random_state=7) for _, g in full.groupby("y")]
    sample = pd.concat(parts).sort_index()
    path = data_dir / "sample.csv"
    sample.to_csv(path, sep=";", index=False)
    return path


def the_lab(owner: Owner) -> None:
    """00 → 01 → 03 → 04 → the job chain → 08 → monitoring check, each the real command in its own process.

    Bob's traffic comes from the table (08 reads it without the JVM, through the JDBC catalog);
    Alice's from the batch 05 appended.
    """
    run(owner, "00_download.py", "--offline")
    run(owner, "01_write_to_dl.py", "--csv", str(write_sample(owner.settings.data_dir)))
    run(owner, "03_train.py", *TRAIN_ARGS)
    run(owner, "04_api_deployment.py")
    try:
        run(owner, "-m", "lib.jobs", "--spec", str(owner.env["JOBS_SPEC"]), "run", "New Batch")
        source = "table" if owner.name == "bob" else "batch"
        run(owner, "08_model_simulation.py", "--requests", str(REQUESTS), "--concurrency", "2", "--days", "1",
            "--source", source)  # fmt: skip
        run(owner, "-m", "lib.monitoring", "check", "--last", str(REQUESTS), ok=(0, 2))  # 2: an alert fired
    finally:
        subprocess.run(
            [sys.executable, "-m", "lib.serving", "stop"], cwd=PROJECT_ROOT, env=owner.env, capture_output=True
        )


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[dict[str, str], dict[str, Owner]]]:
    """A stack in a temp dir (PostgreSQL must be able to enter it), and both participants' finished labs."""
    base = Path(tempfile.mkdtemp(prefix="lab-services-"))
    base.chmod(0o755)
    root = base / "stack"
    try:
        try:
            stack_env = stack.up(root, load_settings().jdbc_driver_jar)
        except stack.StackError as exc:
            pytest.fail(f"the service stack did not start: {exc}")
        owners = {}
        for name in OWNERS:
            project = base / name
            env = {
                **os.environ,
                **stack_env,
                **stack.owner_env(root, name),
                "PROJECT_ROOT": str(project),
                "SERVE_PORT": "0",
                # the tiny retrain must replace the champion whatever its score, so the chain redeploys
                "GATE_TOLERANCE": "1.0",
                "JOBS_LOG_DIR": str(project / "run" / "jobs"),
            }
            project.mkdir()
            env["JOBS_SPEC"] = str(write_spec(project / "jobs.yaml"))
            owners[name] = Owner(name, env, load_settings(env))
        with ThreadPoolExecutor(len(owners)) as pool:
            for future in [pool.submit(the_lab, owner) for owner in owners.values()]:
                future.result()
        for owner in owners.values():  # shown with -s: where a slow services tier spends its time
            print(owner.name, {step: round(sec) for step, sec in owner.seconds.items()})
        yield stack_env, owners
    finally:
        stack.down(root)
        shutil.rmtree(base, ignore_errors=True)


def test_stack_status_reports_every_service_answering(lab) -> None:
    stack_env, _ = lab
    rows = stack.status(Path(stack_env["STACK_DIR"]))
    assert {r.name for r in rows} == {"postgres", "mlflow", "spark_master", "spark_worker"}
    assert all(r.running and r.answers for r in rows), rows


def test_tables_are_in_the_jdbc_catalog_on_postgresql_and_read_without_the_jvm(lab) -> None:
    stack_env, owners = lab
    catalog_db = sqlalchemy_catalog_url(
        stack_env["ICEBERG_CATALOG_URI"], stack_env["ICEBERG_CATALOG_USER"], stack_env["ICEBERG_CATALOG_PASSWORD"]
    )
    assert catalog_db.startswith("postgresql+psycopg://")
    with create_engine(catalog_db).connect() as conn:
        rows = conn.execute(text("SELECT table_namespace, table_name FROM iceberg_tables")).all()
    # each owner's customer table, and the call list the chain's Score Customers wrote
    expected = {
        (o.settings.namespace, name)
        for o in owners.values()
        for name in (o.settings.table_name, call_list_name(o.settings))
    }
    assert {tuple(r) for r in rows} == expected
    for owner in owners.values():
        settings = owner.settings
        assert settings.catalog_type == "jdbc"
        table = lake.open_table(settings)  # pyiceberg's SQL catalog on the same PostgreSQL database
        snapshots = sorted(table.snapshots(), key=lambda s: s.timestamp_ms)
        assert len(snapshots) == 2  # 01's create, 05's append
        assert len(lake.read_pandas(settings)) == SAMPLE_ROWS + BATCH_ROWS
        assert len(lake.read_pandas(settings, snapshot_id=snapshots[0].snapshot_id)) == SAMPLE_ROWS  # time travel


def test_runs_aliases_and_artifacts_are_on_the_tracking_server(lab) -> None:
    from mlflow import MlflowClient

    stack_env, owners = lab
    client = MlflowClient(tracking_uri=stack_env["MLFLOW_TRACKING_URI"])
    for owner in owners.values():
        s = owner.settings
        assert s.mlflow_tracking_uri == stack_env["MLFLOW_TRACKING_URI"]
        for experiment_name in (s.experiment_name, s.retrain_experiment_name):
            experiment = client.get_experiment_by_name(experiment_name)
            assert experiment is not None, experiment_name
            runs = client.search_runs([experiment.experiment_id])
            assert len(runs) == 1 and runs[0].info.status == "FINISHED"
            # served by the tracking server: clients need no shared filesystem
            assert runs[0].info.artifact_uri.startswith("mlflow-artifacts:")
            assert client.list_artifacts(runs[0].info.run_id)
        champion = client.get_model_version_by_alias(s.model_name, "champion")
        versions = client.search_model_versions(f"name = '{s.model_name}'")
        assert sorted(v.version for v in versions) == ["1", "2"] and champion.version == "2"  # 07 promoted 06's
        assert client.get_model_version_by_alias(s.model_name, "previous").version == "1"
        assert "Redeploy Model" in owner.outputs["lib.jobs"]
        assert f"v{champion.version}" in owner.outputs["08_model_simulation.py"]
        assert owner.exit_codes["lib.monitoring"] in (0, 2)  # it judged the PostgreSQL log


def test_prediction_log_and_job_history_are_in_each_owners_postgresql_database(lab) -> None:
    _, owners = lab
    for owner in owners.values():
        url = owner.settings.metrics_db_url
        assert url.startswith("postgresql+psycopg://") and url.endswith(f"/metrics_{owner.name}")
        with create_engine(url).connect() as conn:
            models = conn.execute(text("SELECT model_name, count(*) FROM predictions GROUP BY model_name")).all()
            labels = conn.scalar(text("SELECT count(*) FROM ground_truth"))
            jobs = conn.execute(text("SELECT job, status FROM job_runs ORDER BY run_id")).all()
        assert [tuple(r) for r in models] == [(owner.settings.model_name, REQUESTS)]
        assert labels == REQUESTS
        assert [tuple(r) for r in jobs] == [
            ("New Batch", "succeeded"),
            ("Retrain Models", "succeeded"),
            ("Redeploy Model", "succeeded"),
            ("Score Customers", "succeeded"),
        ]


def test_neither_owner_sees_the_others_lab(lab) -> None:
    from mlflow import MlflowClient

    stack_env, owners = lab
    alice, bob = owners["alice"], owners["bob"]
    client = MlflowClient(tracking_uri=stack_env["MLFLOW_TRACKING_URI"])
    for me, other in ((alice, bob), (bob, alice)):
        mine = client.get_model_version_by_alias(me.settings.model_name, "champion")
        run = client.get_run(mine.run_id)
        assert run.data.tags.get("table", me.settings.table_ident) == me.settings.table_ident
        assert client.get_experiment(run.info.experiment_id).name in (
            me.settings.experiment_name,
            me.settings.retrain_experiment_name,
        )
        assert me.settings.run_dir != other.settings.run_dir
        assert me.settings.table_ident != other.settings.table_ident
    urls = {re.search(r"server +: \w+, (\S+)", o.outputs["04_api_deployment.py"]).group(1) for o in owners.values()}
    assert len(urls) == 2  # each participant's endpoint on a port of its own
