"""The job chain from the command line.

  python -m lib.jobs list                      the jobs, their dependencies and schedules
  python -m lib.jobs run NAME [--no-deps]      run a job, then its dependents
  python -m lib.jobs history [--job NAME]      recent runs (status, exit code, log)
  python -m lib.jobs logs RUN_ID               print the log of one run
  python -m lib.jobs schedule                  foreground scheduler for jobs with a cron schedule

Exit codes: 0 done, 1 a job failed, timed out or could not start (or the spec is wrong),
64 usage error, 130 interrupted (the running job is stopped and recorded as failed).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from lib.cliargs import EX_FAILURE, EX_OK, ArgumentParser, is_verbose
from lib.config import Settings, cli_settings
from lib.fileio import tail_lines
from lib.jobs.history import TRIGGERS, JobHistory, JobRun, history
from lib.jobs.runner import VERB, ChainResult, run_chain
from lib.jobs.scheduler import next_fire, run_scheduler
from lib.jobs.spec import JobError, JobSpec, load_spec
from lib.logs import setup_logging

EX_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
FAILED_LOG_LINES = 15


def format_spec(spec: JobSpec) -> str:
    """The jobs as a table: command, dependencies, timeout, schedule with its next fire time."""
    lines = [f"{'job':24} {'command':36} {'depends on':18} {'timeout':>8}  schedule"]
    for job in spec.topological():
        sched = "manual"
        if job.schedule:
            sched = f"{job.schedule} (next {next_fire(job, datetime.now()):%m-%d %H:%M})"
        deps = ", ".join(job.depends_on) or "-"
        lines.append(f"{job.name:24} {job.display():36} {deps:18} {job.timeout:>7.0f}s  {sched}")
    return "\n".join(lines)


def format_history(runs: list[JobRun]) -> str:
    """Job runs as a table, one line each."""
    header = f"{'run':>5}  {'job':22} {'trigger':10} {'started (UTC)':19}  {'secs':>6}  {'status':9} {'exit':>4}"
    lines = [f"{header}  log"]
    for r in runs:
        secs = "" if r.seconds is None else f"{r.seconds:.0f}"
        code = "" if r.exit_code is None else str(r.exit_code)
        lines.append(
            f"{r.run_id:>5}  {r.job:22} {r.trigger:10} {r.started_at:%Y-%m-%d %H:%M:%S}  {secs:>6}  "
            f"{r.status:9} {code:>4}  {r.log_path}"
        )
    return "\n".join(lines)


def build_parser(settings: Settings | None = None) -> ArgumentParser:
    """The top parser with its subcommands; `--spec` defaults to JOBS_SPEC."""
    settings = settings or cli_settings()
    parser = ArgumentParser(
        prog="python -m lib.jobs", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spec", type=Path, default=settings.jobs_spec, help="job spec (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="jobs, dependencies, schedules")
    run_p = sub.add_parser("run", help="run a job, then its dependents while each succeeds")
    run_p.add_argument("name", help="job name, e.g. 'New Batch' (quote names with spaces)")
    run_p.add_argument("--no-deps", action="store_true", help="run only this job, not its dependents")
    run_p.add_argument("--trigger", choices=[t for t in TRIGGERS if t != "dependency"], default="manual")
    hist_p = sub.add_parser("history", help="recent runs, newest first")
    hist_p.add_argument("--job", help="only this job")
    hist_p.add_argument("--limit", type=int, default=20)
    logs_p = sub.add_parser("logs", help="print the log of one run")
    logs_p.add_argument("run_id", type=int)
    logs_p.add_argument("--tail", type=int, default=None, help="only the last N lines")
    sched_p = sub.add_parser("schedule", help="foreground scheduler for jobs with a cron schedule")
    sched_p.add_argument("--max-runs", type=int, default=None, help="exit after N scheduled chains")
    return parser


def _log_tail(path: Path, lines: int) -> str:
    if not path.is_file():
        return f"(log {path} is missing)"
    return "\n".join(tail_lines(path, lines))


def _print_logs(settings: Settings, run_id: int, tail: int | None) -> int:
    run = JobHistory(settings.metrics_db_url).get(run_id)
    if not run.log_path.is_file():
        raise JobError(f"log {run.log_path} of run {run.run_id} no longer exists")
    print(run.log_path.read_text(errors="replace") if tail is None else _log_tail(run.log_path, tail))
    return EX_OK


def _report_chain(result: ChainResult) -> int:
    """One line per job that ran; for a failure its log's last lines and one `error:` line."""
    for r in result.results:
        print(f"{r.job:24} {r.status:9} {r.seconds:7.1f}s  run {r.run_id}  log {r.log_path}")
    failed = result.failed
    if failed is None:
        print("chain     : succeeded")
        return EX_OK
    tail = _log_tail(failed.log_path, FAILED_LOG_LINES)
    print(f"\n--- last lines of {failed.log_path} ---\n{tail}\n---", file=sys.stderr)
    skipped = f"; not run: {', '.join(result.skipped)}" if result.skipped else ""
    print(
        f"error: job {failed.job!r} {VERB[failed.status]} (exit code {failed.exit_code}); "
        f"log: {failed.log_path}{skipped}",
        file=sys.stderr,
    )
    return EX_FAILURE


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; a JobError is one `error:` line (exit 1), Ctrl-C records the running job as failed."""
    settings = cli_settings()
    args = build_parser(settings).parse_args(argv)
    setup_logging(is_verbose(args), fmt="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        if args.command == "history":
            print(format_history(history(settings, limit=args.limit, job=args.job)))
            return EX_OK
        if args.command == "logs":
            return _print_logs(settings, args.run_id, args.tail)
        spec = load_spec(args.spec)
        if args.command == "list":
            print(f"spec: {spec.path}")
            print(format_spec(spec))
            return EX_OK
        if args.command == "schedule":
            return EX_FAILURE if run_scheduler(settings, spec, max_runs=args.max_runs) else EX_OK
        result = run_chain(settings, args.name, args.trigger, spec, with_dependents=not args.no_deps)
    except JobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EX_FAILURE
    except KeyboardInterrupt:
        print("interrupted: the running job was stopped and recorded as failed", file=sys.stderr)
        return EX_INTERRUPTED
    return _report_chain(result)


if __name__ == "__main__":
    sys.exit(main())
