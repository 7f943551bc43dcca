"""The serving ceiling: a bare Starlette handler that parses the JSON body and returns a constant.

`bench_serving` starts it with the same uvicorn settings as our server (uvloop, httptools, no
access log, one process) and drives it with the same load generator, so "our server reaches N %
of what this HTTP stack can do on this machine" is a measured ratio, not a quoted one.

    .venv/bin/python -m uvicorn benchmarks.bare_handler:app --loop uvloop --http httptools --no-access-log
"""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ANSWER = b'{"predictions":[{"prediction":0,"probability":0.5}]}'


async def handle(request: Request) -> Response:
    """Parse the body as JSON (the least a real scoring handler does) and answer a constant."""
    json.loads(await request.body())
    return Response(ANSWER, media_type="application/json")


app = Starlette(routes=[Route("/invocations", handle, methods=["POST"]), Route("/predict", handle, methods=["POST"])])
