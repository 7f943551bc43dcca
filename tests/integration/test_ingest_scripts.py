"""00 and 01 as a user runs them: subprocesses with a temp project root."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lib.config import PROJECT_ROOT
from tests.conftest import make_settings

pytestmark = pytest.mark.integration


def run_script(script: str, root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PROJECT_ROOT": str(root), "PROJECT_OWNER": "scripts", "SPARK_MASTER": "local[2]"}
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / script), *args],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize("script", ["00_download.py", "01_write_to_dl.py"])
def test_help(script: str, tmp_path: Path):
    result = run_script(script, tmp_path, "--help")
    assert result.returncode == 0 and "usage:" in result.stdout


def test_01_without_data_names_the_script_to_run(tmp_path: Path):
    result = run_script("01_write_to_dl.py", tmp_path)
    assert result.returncode == 1
    assert "run 00_download.py first" in result.stderr
    assert "Traceback" not in result.stderr


def test_01_with_a_missing_csv_fails_before_spark_starts(tmp_path: Path):
    """One `error:` line and nothing else: the input is checked before a JVM is started."""
    result = run_script("01_write_to_dl.py", tmp_path, "--csv", str(tmp_path / "missing.csv"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'missing.csv'} not found: run 00_download.py first (or pass an existing file with --csv)"
    ]
    assert result.stdout == ""


@pytest.mark.slow  # runs 00 then 01 (Spark) as processes
def test_00_offline_then_01_loads_a_small_csv(tmp_path: Path, bank_sample):
    result = run_script("00_download.py", tmp_path, "--offline")
    assert result.returncode == 0, result.stderr
    assert "vendored copy" in result.stdout and "45,211" in result.stdout
    assert (tmp_path / "data" / "bank-full.csv").stat().st_size > 4_000_000
    # a rerun keeps the valid file
    assert "existing" in run_script("00_download.py", tmp_path, "--offline").stdout

    small = tmp_path / "small.csv"
    with zipfile.ZipFile(PROJECT_ROOT / "data" / "vendor" / "bank.zip") as zf:
        lines = zf.read("bank.csv").decode().splitlines()[:201]
    small.write_text("\n".join(lines) + "\n")
    for _ in range(2):  # rerun-safe: replaces the data, adds a snapshot
        result = run_script("01_write_to_dl.py", tmp_path, "--csv", str(small))
        assert result.returncode == 0, result.stderr
        assert "rows      : 200" in result.stdout

    from lib.lake import open_table

    table = open_table(make_settings(tmp_path, "scripts"))
    assert len(table.scan().to_pandas()) == 200
    assert len(table.metadata.snapshots) == 2
