"""The prediction log on PostgreSQL (`METRICS_DB_URL=postgresql+psycopg://…`): the same behaviours
the SQLite tests pin down (batched background writes, feedback replace and join, time ranges, a
failing database, a dead writer, the SQL aggregations against pandas), run against the session
stack's real PostgreSQL 15, one fresh database per test."""

from __future__ import annotations

import uuid

import pytest

from lib import stack
from lib.database import get_engine
from lib.metrics_store import MetricsStore
from tests.integration.test_metrics_aggregates import (  # noqa: F401 - collected here again, on PostgreSQL
    filled,
    test_a_time_range_and_a_version_filter_in_sql,
    test_buckets_match_the_pandas_performance_table,
    test_each_bucket_width_gets_its_own_sql,
    test_empty_selection_and_bad_bucket,
    test_version_spans_are_the_deployments,
)
from tests.integration.test_metrics_store import (  # noqa: F401 - collected here again, on PostgreSQL
    test_a_dead_writer_is_reported_and_counted,
    test_empty_log_has_the_documented_columns,
    test_feedback_joins_by_uuid_and_reports_matches,
    test_feedback_rejects_bad_labels_before_writing,
    test_read_expands_features_and_types,
    test_time_range_and_version_filters,
    test_writer_keeps_rows_while_the_database_fails,
    test_writer_process_writes_batches_off_the_caller,
    test_writer_sends_on_its_interval,
)
from tests.services.services_lab import ServiceStack

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture
def store(service_stack: ServiceStack) -> MetricsStore:
    """A metrics store on a fresh database of the session stack's PostgreSQL (shadows the SQLite one
    of the imported tests)."""
    return MetricsStore(stack.create_database(service_stack.root, f"metrics_{uuid.uuid4().hex[:12]}"))


def test_the_store_really_is_postgresql(store: MetricsStore) -> None:
    assert store.url.startswith("postgresql+psycopg://")
    assert store.engine.dialect.name == "postgresql"
    assert get_engine(store.url) is store.engine


def test_processes_creating_the_tables_at_once_all_succeed(service_stack: ServiceStack) -> None:
    """Two New Batch jobs on a fresh database both create `job_runs`: PostgreSQL's catalog must not
    reject the second CREATE TABLE (a unique violation on pg_type, `checkfirst` notwithstanding)."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import create_engine, inspect

    from lib.database import create_tables
    from lib.jobs.history import job_runs
    from lib.metrics_store import metadata

    url = stack.create_database(service_stack.root, f"metrics_{uuid.uuid4().hex[:12]}")

    def create(_: int) -> None:
        engine = create_engine(url)  # one engine per caller, as separate processes have
        try:
            create_tables(engine, metadata)
            create_tables(engine, job_runs.metadata)
        finally:
            engine.dispose()

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(create, range(6)))
    assert {"predictions", "ground_truth", "job_runs"} <= set(inspect(get_engine(url)).get_table_names())
