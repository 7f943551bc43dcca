"""One real service stack (PostgreSQL, MLflow server, Spark standalone, Iceberg JDBC catalog) per
test session: every services test runs against it, each as participants (`PROJECT_OWNER`s) of
their own, as a workshop shares one stack. Starting it once keeps the tier's time down."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lib import stack
from lib.config import load_settings
from tests.services.services_lab import ServiceStack


@pytest.fixture(scope="session")
def service_stack() -> Iterator[ServiceStack]:
    """The stack in a temp dir (PostgreSQL's server user must be able to enter it), stopped at the end."""
    base = Path(tempfile.mkdtemp(prefix="lab-services-"))
    base.chmod(0o755)
    root = base / "stack"
    try:
        try:
            env = stack.up(root, load_settings().jdbc_driver_jar)
        except stack.StackError as exc:
            pytest.fail(f"the service stack did not start: {exc}")
        yield ServiceStack(root, env)
    finally:
        stack.down(root)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def projects_dir(service_stack: ServiceStack) -> Path:
    """Where participants' project roots go: next to the stack (a directory PostgreSQL can enter)."""
    path = service_stack.root.parent / "projects"
    path.mkdir(exist_ok=True)
    return path
