"""Schemathesis against a real server subprocess, driven by the server's own /openapi.json:
well over 1,000 generated requests (valid, boundary and malformed), every check on. No 5xx, no
response outside its documented schema, status code or content type, valid bodies accepted and
invalid ones refused (except the one documented exemption in tests/fuzz/schemathesis.toml)."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lib.config import PROJECT_ROOT, Settings
from lib.serving import service

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # ~1 min of generated requests

CONFIG = PROJECT_ROOT / "tests" / "fuzz" / "schemathesis.toml"
# the text/csv serializer for /invocations (tests/fuzz/hooks.py)
HOOKS = {"SCHEMATHESIS_HOOKS": "tests.fuzz.hooks", "PYTHONPATH": str(PROJECT_ROOT)}
MIN_CASES = 1000


def test_schemathesis_finds_no_server_error_or_schema_violation(
    registered_model: tuple[Settings, list[str]], tmp_path: Path
) -> None:
    settings, versions = registered_model
    settings = dataclasses.replace(settings, run_dir=tmp_path / "run")
    ep = service.start_detached(settings, expect_version=versions[-1], timeout=120)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run", f"{ep.url}/openapi.json",
             "--header", f"Authorization: Bearer {ep.key}", "--checks", "all", "--max-examples", "150",
             "--seed", "1", "--workers", "1", "--no-color", "--generation-database", "none"],
            cwd=tmp_path, env={**os.environ, **HOOKS}, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    finally:
        service.stop(settings)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-6000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", report)
    assert generated is not None, report[-3000:]
    assert int(generated[1]) == int(generated[2]) >= MIN_CASES, generated[0]
    selected = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", report)
    assert selected is not None and selected[1] == selected[2] == selected[3], report[-3000:]
