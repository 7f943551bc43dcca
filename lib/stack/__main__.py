"""The local service stack from the command line.

  python -m lib.stack up [--postgres-only]   start PostgreSQL, the MLflow server and a Spark master + worker
  python -m lib.stack down                   stop everything `up` started
  python -m lib.stack status                 each service, its pid and address, and whether it answers
  python -m lib.stack user NAME              one participant's settings, to source after the env file

Each takes `--dir DIR` (default `STACK_DIR`, `<root>/run/stack`). Exit codes: 0 done (status: every
service answers), 1 failed (status: none recorded, or one does not answer), 64 usage error.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lib.cliargs import EX_FAILURE, EX_OK, ArgumentParser, is_verbose
from lib.config import cli_settings
from lib.logs import setup_logging
from lib.stack.envfile import shell_exports
from lib.stack.lifecycle import down, owner_env, status, up
from lib.stack.process import StackError, StackPaths

HELPS = {
    "up": "start PostgreSQL, the MLflow server and a Spark master + worker",
    "down": "stop everything `up` started",
    "status": "each service, its pid and address, and whether it answers",
    "user": "print one participant's settings (own metrics database) to source after the stack's env file",
}


def build_parser() -> ArgumentParser:
    """`up`, `down`, `status` and `user OWNER`, each with `--dir`; usage errors exit 64."""
    settings = cli_settings()
    description = "A local stack of the real services: PostgreSQL, an MLflow tracking server, a Spark cluster."
    parser = ArgumentParser(prog="python -m lib.stack", description=description)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in HELPS.items():
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument(
            "--dir", type=Path, default=settings.stack_dir, help=f"stack directory (default {settings.stack_dir})"
        )
        if name == "user":
            cmd.add_argument("owner", help="the participant's PROJECT_OWNER")
        if name == "up":
            cmd.add_argument("--postgres-only", action="store_true", help="start only PostgreSQL")
    return parser


def _print_status(paths: StackPaths) -> int:
    rows = status(paths.root)
    if not rows:
        print(f"stack        : none recorded in {paths.root}")
        print("next         : make stack")
        return EX_FAILURE
    for row in rows:
        state = "answers" if row.answers else ("running, not answering" if row.running else "stopped")
        print(f"{row.name:13}: {state:22} {row.address}  pid {row.pid}  log {row.log}")
    print(f"env file     : {paths.env_file}")
    print(f"next         : set -a; . {paths.env_file}; set +a")
    return EX_OK if all(r.answers for r in rows) else EX_FAILURE


def main(argv: list[str] | None = None) -> int:
    """Run one stack command and print its summary; returns the exit code."""
    args = build_parser().parse_args(argv)
    setup_logging(is_verbose(args))
    settings = cli_settings()
    paths = StackPaths(args.dir.resolve())
    try:
        if args.command == "up":
            env = up(paths.root, settings.jdbc_driver_jar, postgres_only=args.postgres_only)
            for row in status(paths.root):
                print(f"{row.name:13}: {row.address}  pid {row.pid}")
            print(f"env file     : {paths.env_file}")
            print(f"spark master : {env.get('SPARK_MASTER', 'not started (--postgres-only)')}")
            print(f"mlflow       : {env.get('MLFLOW_TRACKING_URI', 'not started (--postgres-only)')}")
            print(f"next         : set -a; . {paths.env_file}; set +a; python 00_download.py")
        elif args.command == "user":
            print("\n".join(shell_exports(owner_env(paths.root, args.owner))))
        elif args.command == "down":
            stopped = down(paths.root)
            print(f"stopped      : {', '.join(stopped) if stopped else 'nothing (no stack recorded)'}")
            print("next         : make stack")
        else:
            return _print_status(paths)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EX_FAILURE
    return EX_OK


if __name__ == "__main__":
    sys.exit(main())
