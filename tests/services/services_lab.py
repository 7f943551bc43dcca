"""What the services tests share: the running stack's handle, participants, their commands, a
small chain spec and a sample of the data (fixtures are in conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lib import stack
from lib.config import PROJECT_ROOT, Settings, load_settings
from lib.features import pandas_dtypes

SAMPLE_ROWS = 4000
BATCH_ROWS = 1000
TINY_GRID = json.dumps([{"max_depth": 3, "learning_rate": 0.3, "num_boost_round": 15, "early_stopping_rounds": 5}])
TRAIN_ARGS = ["--grid", TINY_GRID, "--workers", "1", "--no-progress"]


@dataclass(frozen=True)
class ServiceStack:
    """A running stack: its directory and the environment its env file holds."""

    root: Path
    env: dict[str, str]

    def owner_env(self, owner: str, project: Path) -> dict[str, str]:
        """A participant's full environment: the stack, their own metrics database, their project root."""
        project.mkdir(parents=True, exist_ok=True)
        return {
            **os.environ,
            **self.env,
            **stack.owner_env(self.root, owner),
            "PROJECT_ROOT": str(project),
            "SERVE_PORT": "0",
            "JOBS_LOG_DIR": str(project / "run" / "jobs"),
        }


@dataclass
class Owner:
    """One participant: their environment and settings, and what their commands printed and took."""

    name: str
    env: dict[str, str]
    settings: Settings
    outputs: dict[str, str] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def make_owner(service_stack: ServiceStack, project: Path, name: str, **extra: str) -> Owner:
    """A participant on the stack with the project root `project`."""
    env = {**service_stack.owner_env(name, project), **extra}
    return Owner(name, env, load_settings(env))


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


def write_spec(path: Path, extra: dict[str, list[str]] | None = None) -> Path:
    """The real chain (same scripts, same dependencies), with a small batch and a tiny grid."""
    from lib.jobs import load_spec

    extra = extra or {"05_newbatch.py": ["--rows", str(BATCH_ROWS)], "06_retrain.py": TRAIN_ARGS}
    jobs = []
    for job in load_spec(PROJECT_ROOT / "jobs.yaml").jobs:
        entry = {"name": job.name, "script": str(PROJECT_ROOT / job.script), "args": [*job.args]}
        entry["args"] += extra.get(job.script or "", [])
        if job.depends_on:
            entry["depends_on"] = list(job.depends_on)
        jobs.append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"jobs": jobs}))  # JSON is YAML
    return path


def write_sample(data_dir: Path) -> Path:
    """A stratified sample of the vendored UCI table: the same schema, small enough for a 2-core CI box."""
    with zipfile.ZipFile(PROJECT_ROOT / "data" / "vendor" / "bank.zip") as zf, zf.open("bank-full.csv") as fh:
        full = pd.read_csv(fh, sep=";", dtype=pandas_dtypes())
    parts = [g.sample(frac=SAMPLE_ROWS / len(full), random_state=7) for _, g in full.groupby("y")]
    sample = pd.concat(parts).sort_index()
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "sample.csv"
    sample.to_csv(path, sep=";", index=False)
    return path
