"""The scoring routes' valid JSON requests, answered without FastAPI's routing and dependency machinery.

Why: for a single record, FastAPI's per-request work around the handler (route matching, a
`Request`, the exit stack, dependency solving, body reading again) costs more than the scoring
itself. This layer sits inside `GuardMiddleware` (so the size limit and the access key are
already enforced and `ObserveMiddleware` still records every response) and does exactly what
the routes do for a valid body: the same JSON parsing (`json.loads`, as Starlette), the same
pydantic request model, the same `Scorer` (prediction log, records counter) and the same answer
(`predict_answer` / `invocations_answer`).

Anything else goes on to the app untouched, so every refusal keeps its one definition there: a
body that does not parse or validate, a non-JSON content type (text/csv), no model loaded, a
dependency override (tests), another path or method. Nothing is logged before validation passed,
so a request handed on is never scored twice.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI

from lib.serving.middleware import T0_KEY, ASGIApp, Message, Receive, Scope, Send
from lib.serving.routes.scoring import invocations_answer, predict_answer
from lib.serving.schemas import Schemas

PATHS = ("/predict", "/invocations")


def _json_content(scope: Scope) -> bool:
    """Whether the request says its body is `application/json` (FastAPI also parses a missing type as JSON)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.partition(b";")[0].strip().lower() == b"application/json"
    return False


class FastPathMiddleware:
    """Answers valid JSON /predict and /invocations requests directly; hands everything else to the app."""

    def __init__(self, app: ASGIApp, root: FastAPI, body: Schemas) -> None:
        self.app = app
        self.root = root
        self.models = {"/predict": body.predict, "/invocations": body.invocations}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Score a valid body here; replay the body to the app for anything else."""
        path = scope.get("path")
        if (
            scope["type"] != "http"
            or path not in self.models
            or scope["method"] != "POST"
            or self.root.dependency_overrides
            or not _json_content(scope)
        ):
            await self.app(scope, receive, send)
            return
        message = await receive()  # GuardMiddleware hands on the whole body in one message
        body = message.get("body", b"")
        state = self.root.state
        loaded = state.holder.current
        scored: Any = None
        if loaded is not None and message["type"] == "http.request" and not message.get("more_body", False):
            try:
                payload = self.models[path].model_validate(json.loads(body))
                records = payload.records()
                if path == "/predict":
                    scored = state.scorer.prepare(loaded, records, checked=True)
                else:
                    scored = state.scorer.prepare(loaded, records, checked=False)
            except Exception:  # the app answers it, with the one definition of every refusal
                scored = None
        if scored is None:
            await self.app(scope, _replay(message, receive), send)
            return
        t0 = scope.get(T0_KEY, 0.0)
        state.metrics.fast_path.inc()
        if path == "/predict":
            got = state.scorer.commit(loaded, scored, event_time=payload.event_time, t0=t0)
            response = predict_answer(loaded, got)
        else:
            got = state.scorer.commit(loaded, scored, event_time=None, t0=t0)
            response = invocations_answer(got)
        await response(scope, receive, send)


def _replay(first: Message, receive: Receive) -> Receive:
    """A receive that gives the message already read once, then the connection's own."""
    replayed = False

    async def again() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return first
        return await receive()

    return again
