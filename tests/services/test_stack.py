"""The lab on the real shared services: PostgreSQL, an MLflow tracking server, a Spark standalone
cluster and the Iceberg JDBC catalog, started by `lib.stack` in a temporary directory.

Two participants (`PROJECT_OWNER`s) run the whole lab at the same time on the one stack, as in a
workshop: 00 → 01 → 03 → 04 → the job chain New Batch → Retrain Models → Redeploy Model → 08.
The results are checked in the services themselves: the Iceberg tables through pyiceberg's SQL
catalog on PostgreSQL, runs, aliases and served artifacts through the tracking server, the
prediction log and job history in PostgreSQL; and neither participant sees the other's.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from lib import lake, stack
from lib.config import PROJECT_ROOT, sqlalchemy_catalog_url
from lib.scoring import call_list_name
from tests.services.services_lab import (
    BATCH_ROWS,
    SAMPLE_ROWS,
    TRAIN_ARGS,
    Owner,
    ServiceStack,
    make_owner,
    run,
    write_sample,
    write_spec,
)

pytestmark = [pytest.mark.services, pytest.mark.slow]

OWNERS = ("alice", "bob")
REQUESTS = 30


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
def lab(service_stack: ServiceStack, projects_dir: Path) -> Iterator[tuple[dict[str, str], dict[str, Owner]]]:
    """Both participants' finished labs on the session's stack, run at the same time."""
    owners = {}
    for name in OWNERS:
        project = projects_dir / name
        spec = write_spec(project / "jobs.yaml")
        # the tiny retrain must replace the champion whatever its score, so the chain redeploys
        owners[name] = make_owner(service_stack, project, name, GATE_TOLERANCE="1.0", JOBS_SPEC=str(spec))
    with ThreadPoolExecutor(len(owners)) as pool:
        for future in [pool.submit(the_lab, owner) for owner in owners.values()]:
            future.result()
    for owner in owners.values():  # shown with -s: where a slow services tier spends its time
        print(owner.name, {step: round(sec) for step, sec in owner.seconds.items()})
    yield service_stack.env, owners


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
    # each owner's customer table, and the call list the chain's Score Customers wrote (the
    # session's other tests have participants, and so namespaces, of their own)
    namespaces = {o.settings.namespace for o in owners.values()}
    rows = [r for r in rows if r[0] in namespaces]
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
