"""Step 4: register the best trained model and serve it as an authenticated REST endpoint.

Registers the best run of the training experiment (03_train.py) in the MLflow Model Registry,
points the `champion` alias at it and starts the model server in the background (pid, log and
access key under the run dir), then waits until /ready reports that version. Rerunning it with a
server already running promotes the (new) best run and hot-reloads it: no second server, no
dropped request. --foreground serves in this terminal instead.
"""

from __future__ import annotations

import argparse
import logging
import sys

from lib.cliargs import ArgumentParser, is_verbose
from lib.config import ConfigError, load_settings
from lib.logs import setup_logging
from lib.registry import DEFAULT_METRIC
from lib.serving import deploy, service
from lib.serving.deploy import DeployError
from lib.session import run_main


def curl_example(url: str, key_file: str | None) -> str:
    auth = f' -H "Authorization: Bearer $(cat {key_file})"' if key_file else ""
    record = (
        '{"request": {"age": 41, "job": "technician", "marital": "married", "education": "secondary", '
        '"default": "no", "balance": 1270, "housing": "yes", "loan": "no", "contact": "cellular", "day": 5, '
        '"month": "may", "campaign": 1, "pdays": -1, "previous": 0, "poutcome": "unknown"}}'
    )
    return f"curl -s{auth} -H 'Content-Type: application/json' -d '{record}' {url}/predict"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="04_api_deployment.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--metric", default=DEFAULT_METRIC, help="selection metric (default: %(default)s)")
    parser.add_argument("--foreground", action="store_true", help="serve in this terminal (Ctrl-C stops)")
    parser.add_argument("--no-auth", action="store_true", help="serve without an access key (explicit opt-out)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(is_verbose(args), level=logging.WARNING)
    try:
        settings = load_settings()
        if args.foreground:
            promotion = deploy.promote_best(settings, args.metric)
            after = promotion.after
            print(f"champion  : {after.name} v{after.version} (run {after.run_id})")
            print("serving in the foreground; Ctrl-C stops")
            service.serve(settings, no_auth=args.no_auth)
            return 0
        result = deploy.deploy(settings, metric=args.metric, no_auth=args.no_auth)
    except (ConfigError, *DeployError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    ep, champion = result.endpoint, result.champion
    before = result.promotion.before
    print(f"model     : {champion.name} v{champion.version} @champion "
          f"(was {'v' + before.version if before else 'none'})")  # fmt: skip
    for line in deploy.format_versions([("champion", champion)]):
        print(f"  {line}")
    print(f"server    : {result.action}, {ep.url} (pid {ep.pid})")
    print(f"auth      : {'key in ' + str(settings.access_key_file) if ep.key else 'OFF (--no-auth)'}")
    if result.action != "started" and (ep.key is None) != args.no_auth:
        print("note      : the running server keeps its auth setting; `python -m lib.serving stop` to change it")
    print(f"docs      : {ep.url}/docs")
    print(f"try it    : {curl_example(ep.url, str(settings.access_key_file) if ep.key else None)}")
    print("next      : python 05_newbatch.py (or python -m lib.serving status|logs|stop)")
    return 0


if __name__ == "__main__":
    run_main(main)
