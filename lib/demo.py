"""`make demo`: the whole lab end to end, offline, with the time of every step and a final summary.

Order: 00 → 01 → 03 → 04 → 08 (baseline traffic) → job chain New Batch → Retrain Models →
Redeploy Model → Score Customers → 08 with a drift scenario → 09 executed to HTML → monitoring check. Every step
is the same command a user would type; the demo stops at the first step that fails.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field

from lib.cliargs import EX_ALERT, EX_OK, ArgumentParser
from lib.config import PROJECT_ROOT, Settings, cli_settings


@dataclass(frozen=True)
class Step:
    """One demo step: the command a user would type and the exit codes that count as success."""

    title: str
    argv: list[str]
    ok_codes: tuple[int, ...] = (0,)
    note: str = ""


@dataclass
class StepResult:
    """A step's exit code and wall time, for the timing table."""

    step: Step
    seconds: float
    returncode: int


@dataclass
class DemoReport:
    """The steps run so far, in order; the demo stops after the first failure."""

    results: list[StepResult] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Total wall time of the steps run."""
        return sum(r.seconds for r in self.results)


def demo_steps(settings: Settings, drift: str, requests: int) -> list[Step]:
    """The demo's commands in order; `drift` is the scenario of the second traffic run, `requests` its size."""
    py = sys.executable
    notebook = "09_model_monitoring_dashboard.ipynb"
    return [
        Step("00 download (offline fallback)", [py, "00_download.py", "--retries", "1", "--timeout", "5"]),
        Step("01 write to the Iceberg lake", [py, "01_write_to_dl.py"]),
        Step("03 train 12 tracked runs", [py, "03_train.py"]),
        Step("04 register + deploy the endpoint", [py, "04_api_deployment.py"]),
        Step(
            "08 baseline traffic",
            [py, "08_model_simulation.py", "--requests", str(requests), "--source", "table"],
        ),
        Step("jobs: New Batch → Retrain → Redeploy → Score", [py, "-m", "lib.jobs", "run", "New Batch"]),
        Step(
            f"08 drifted traffic ({drift})",
            [py, "08_model_simulation.py", "--requests", str(requests), "--drift", drift],
        ),
        Step(
            "09 dashboard → HTML",
            [py, "-m", "lib.notebooks", notebook, "--out", str(settings.reports_dir / notebook)],
        ),  # fmt: skip
        Step(
            "monitoring check",
            [py, "-m", "lib.monitoring", "check"],
            ok_codes=(EX_OK, EX_ALERT),  # not 64: a usage error is a failed step
            note="exit 2 = an alert fired, which the drift scenario is meant to show",
        ),
    ]


def run_demo(settings: Settings, steps: list[Step]) -> DemoReport:
    """Run the steps one by one from the project root, output streamed; stop at the first that fails."""
    report = DemoReport()
    for i, step in enumerate(steps, start=1):
        print(f"\n=== [{i}/{len(steps)}] {step.title}: {' '.join(step.argv[1:])}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(step.argv, cwd=PROJECT_ROOT, check=False)
        result = StepResult(step, time.perf_counter() - start, proc.returncode)
        report.results.append(result)
        if proc.returncode not in step.ok_codes:
            print(f"\nerror: step '{step.title}' failed with exit code {proc.returncode}", file=sys.stderr)
            break
        if step.note and proc.returncode != 0:
            print(f"({step.note})")
    return report


def state_summary(settings: Settings) -> list[str]:
    """What the demo left behind, read back from the real stores."""
    from lib.lake import open_table
    from lib.serving.client import endpoint
    from lib.tracking import configure_mlflow

    table = open_table(settings)
    lines = [
        f"table       {settings.table_ident}: {len(table.scan().to_arrow()):,} rows, "
        f"{len(table.metadata.snapshots)} snapshots",
    ]
    client = configure_mlflow(settings)
    for name in (settings.experiment_name, settings.retrain_experiment_name):
        exp = client.get_experiment_by_name(name)
        runs = client.search_runs([exp.experiment_id], max_results=1000) if exp else []
        lines.append(f"experiment  {name}: {len(runs)} runs")
    versions = client.search_model_versions(f"name='{settings.model_name}'")
    champion = client.get_model_version_by_alias(settings.model_name, "champion")
    lines.append(f"model       {settings.model_name}: {len(versions)} versions, champion = v{champion.version}")
    ep = endpoint(settings)
    lines.append(f"endpoint    {ep.url} (key in {settings.access_key_file})")
    reports = sorted(p.name for p in settings.reports_dir.glob("*")) if settings.reports_dir.exists() else []
    lines.append(f"reports     {settings.reports_dir}: {', '.join(reports)}")
    return lines


def build_parser() -> ArgumentParser:
    """`--drift` and `--requests`; usage errors exit 64."""
    parser = ArgumentParser(prog="python -m lib.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--drift", default="balance", help="drift scenario for the second traffic run")
    parser.add_argument("--requests", type=int, default=1000, help="requests per traffic run")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the demo, then print the time per step and what it produced; exit 1 if a step failed."""
    args = build_parser().parse_args(argv)
    settings = cli_settings()
    report = run_demo(settings, demo_steps(settings, args.drift, args.requests))
    print("\n=== time per step")
    for r in report.results:
        status = "ok" if r.returncode in r.step.ok_codes else f"FAILED ({r.returncode})"
        print(f"  {r.step.title:42} {r.seconds:7.1f} s  {status}")
    print(f"  {'total':42} {report.seconds:7.1f} s")
    failed = [r for r in report.results if r.returncode not in r.step.ok_codes]
    if failed:
        return 1
    print("\n=== what the demo produced")
    for line in state_summary(settings):
        print(f"  {line}")
    print("\nnext: open the dashboard HTML in reports/, `make test`, or `python -m lib.serving stop`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
