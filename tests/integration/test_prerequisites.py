"""Every script, run out of order on an empty project, names the script to run first."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lib.config import PROJECT_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # one Python process per case, ~5 s each

SCRIPTS = [
    "00_download.py",
    "01_write_to_dl.py",
    "03_train.py",
    "04_api_deployment.py",
    "05_newbatch.py",
    "06_retrain.py",
    "07_api_redeployment.py",
    "08_model_simulation.py",
    "10_batch_scoring.py",
]

MISSING = [
    ("01_write_to_dl.py", "run 00_download.py first"),
    ("03_train.py", "run 01_write_to_dl.py first"),
    ("04_api_deployment.py", "run 03_train.py first"),
    ("05_newbatch.py", "run 01_write_to_dl.py first"),
    ("06_retrain.py", "run 01_write_to_dl.py first"),
    ("07_api_redeployment.py", "run 06_retrain.py first"),
    ("08_model_simulation.py", "run 04_api_deployment.py first"),
    ("10_batch_scoring.py", "run 04_api_deployment.py first"),
]


def run(script: str, root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PROJECT_ROOT": str(root), "PROJECT_OWNER": "prereq", "SPARK_MASTER": "local[1]"}
    return subprocess.run(
        [sys.executable, script, *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_has_help(script: str, tmp_path: Path):
    result = run(script, tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")


@pytest.mark.parametrize("script, message", MISSING)
def test_missing_prerequisite_is_one_clear_line(script: str, message: str, tmp_path: Path):
    result = run(script, tmp_path)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
