"""The scoring routes' valid JSON requests, answered in one ASGI callable in front of the app.

Why: for a single record, the layers around the handler (three middlewares, FastAPI's route
matching, a `Request`, dependency solving) cost more than the scoring itself; for a batch,
pydantic and the per-record check and encoding cost more than the model. This outermost layer
takes a request only when it can answer it in full, doing the same work as the layers and
routes behind it: the body size limit and the access key of `GuardMiddleware` (its own
functions), the response metrics of `ObserveMiddleware` (`Metrics.observe`), the same `Scorer`
(prediction log, records counter) and the same answers (`predict_answer` / `invocations_answer`).

A valid body is checked column by column (`lib.serving.columnar`), else with the routes' own
pydantic models (a body parsed as Starlette parses it, by `json.loads`). Anything else goes on,
with its body replayed, through `ObserveMiddleware` and `GuardMiddleware` to the app, so every
refusal keeps its one definition there: a body too large, a missing or wrong key, a body that does
not parse or validate, a non-JSON content type (text/csv), no model loaded, a dependency override
(tests), another path or method. Nothing is logged before a body was accepted, so a request
handed on is never scored twice.
"""

from __future__ import annotations

import json
import time
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.responses import Response

from lib.features import FeatureSet
from lib.serving.columnar import BodyChecker
from lib.serving.middleware import T0_KEY, ASGIApp, Message, Receive, Scope, Send, header_key, key_matches, payload_key
from lib.serving.prometheus import Metrics
from lib.serving.routes.scoring import invocations_answer, predict_answer
from lib.serving.schemas import Schemas

PATHS = ("/predict", "/invocations")  # both need the access key (middleware.PROTECTED)


def _json_content(scope: Scope) -> bool:
    """Whether the request says its body is `application/json` (FastAPI also parses a missing type as JSON)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.partition(b";")[0].strip().lower() == b"application/json"
    return False


def _declared_size(scope: Scope) -> int | None:
    """The Content-Length header's value; None without one, -1 if it is not a number (the guard answers)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return None


class FastPathMiddleware:
    """Answers valid JSON /predict and /invocations requests directly; hands everything else on."""

    def __init__(
        self,
        app: ASGIApp,
        root: FastAPI,
        body: Schemas,
        features: FeatureSet,
        max_batch: int,
        metrics: Metrics,
        max_body_bytes: int,
        access_key: str | None,
    ) -> None:
        self.app = app
        self.root = root
        self.models = {"/predict": body.predict, "/invocations": body.invocations}
        self.checker = BodyChecker(features, max_batch)
        self.metrics = metrics
        self.max_body = max_body_bytes
        self.key = access_key.encode() if access_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Score a valid body here; replay what was read to the layers behind for anything else."""
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
        t0 = scope[T0_KEY] = time.perf_counter()
        declared = _declared_size(scope)
        if declared is not None and not 0 <= declared <= self.max_body:
            await self.app(scope, receive, send)  # the guard answers 400 or 413
            return
        read: list[Message] = []
        size = 0
        while True:
            message = await receive()
            read.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_body or not message.get("more_body", False):
                break
        if size > self.max_body or read[-1]["type"] != "http.request" or read[-1].get("more_body", False):
            await self.app(scope, _replay(read, receive), send)
            return
        body = b"".join(m.get("body", b"") for m in read)
        response = self._answer(scope, path, body, t0)
        if response is None:
            handed = {"type": "http.request", "body": body, "more_body": False}
            await self.app(scope, _replay([handed], receive), send)
            return
        self.metrics.fast_path.inc()
        self.metrics.observe(path, response.status_code, time.perf_counter() - t0)
        await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})

    def _answer(self, scope: Scope, path: str, body: bytes, t0: float) -> Response | None:
        """The 200 answer to a body taken in full (scored and logged), or None to hand it on unscored."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None  # json.loads may read what orjson does not (NaN, huge integers): the app decides
        if self.key is not None:
            given = header_key(scope)
            if given is None:
                given = payload_key(data)
            if not key_matches(given, self.key):
                return None
        state = self.root.state
        loaded = state.holder.current
        if loaded is None:
            return None
        predict = path == "/predict"
        accepted = self.checker.predict(data) if predict else self.checker.invocations(data)
        if accepted is not None:
            got = state.scorer.score_accepted(loaded, accepted, t0=t0)
            return predict_answer(loaded, got) if predict else invocations_answer(got)
        try:  # the routes' own models, on the body as they parse it
            payload: Any = self.models[path].model_validate(json.loads(body))
            scored = state.scorer.prepare(loaded, payload.records(), checked=predict)
        except Exception:  # the app answers it, with the one definition of every refusal
            return None
        if predict:
            return predict_answer(loaded, state.scorer.commit(loaded, scored, event_time=payload.event_time, t0=t0))
        return invocations_answer(state.scorer.commit(loaded, scored, event_time=None, t0=t0))


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that gives the messages already read, in order, then the connection's own."""
    pending = list(messages)

    async def again() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return again
