"""`python -m lib.app`: serve the lab's web application on 127.0.0.1 until interrupted."""

from __future__ import annotations

import sys

from lib.cliargs import EX_FAILURE, EX_OK, ArgumentParser, is_verbose
from lib.config import cli_settings
from lib.logs import setup_logging


def build_parser() -> ArgumentParser:
    """Flags of `python -m lib.app`; the port defaults to APP_PORT so a workshop can give each user one."""
    parser = ArgumentParser(
        prog="python -m lib.app",
        description="The lab's web application: Explain (SHAP what-if), live Monitoring, Models and Jobs.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=None, help="port (default APP_PORT, 8850; 0 = any free port)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Bind first (a busy port is one `error:` line), print the URL, then serve until interrupted."""
    args = build_parser().parse_args(argv)
    setup_logging(is_verbose(args))
    settings = cli_settings()
    import uvicorn

    from lib.app.server import create_app
    from lib.serving.service import ServingError, bind_socket, ensure_access_key, server_log_config

    port = settings.app_port if args.port is None else args.port
    try:
        sock = bind_socket(args.host, port)
    except ServingError as exc:
        print(f"error: {str(exc).replace('SERVE_PORT', 'APP_PORT (or --port)')}", file=sys.stderr)
        return EX_FAILURE
    app = create_app(settings, access_key=ensure_access_key(settings))
    host, bound = sock.getsockname()[:2]
    print(f"app       : http://{host}:{bound}/", flush=True)
    print(f"model     : {settings.model_name}", flush=True)
    print(f"key       : {settings.access_key_file} (needed to start jobs)", flush=True)
    config = uvicorn.Config(app, access_log=False, log_config=server_log_config("WARNING"))
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
    return EX_OK


if __name__ == "__main__":
    sys.exit(main())
