"""The FastAPI model server: predictions, explanations, feedback, health and metrics.

Routes: POST /predict (CML style), POST /invocations (MLflow scoring protocol), POST /explain,
POST /feedback, POST /admin/reload, GET /health, /ready, /version, /metrics; OpenAPI at
/openapi.json. Predict/invocations/explain/feedback/admin need the access key (as CML's "Enable
Authentication") unless the server runs with auth off.

The hot path validates, scores with `BankModel.predict_records` (numpy in, no pandas) and hands
the log rows to a background writer; it never waits on the database. Every error is a JSON body
naming the problem; no input produces a 500.
"""

import json
import logging
import math
import os
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse as FastAPIJSONResponse
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from lib.config import Settings
from lib.features import TARGET, FeatureError
from lib.metrics_store import MetricsStore, MetricsStoreError, PredictionRow, PredictionWriter
from lib.serving import schemas
from lib.serving.loader import LoadedModel, ModelHolder, ServingError

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROTECTED = frozenset({"/predict", "/invocations", "/explain", "/feedback", "/admin/reload"})
ROUTES = PROTECTED | {"/health", "/ready", "/version", "/metrics", "/openapi.json", "/docs"}
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
T0_KEY = "bank.t0"


class JSONResponse(FastAPIJSONResponse):
    """ASCII-escaped JSON, so no client-supplied string (even a lone surrogate) can break encoding."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":"), allow_nan=False).encode("ascii")


def error(status: int, detail: str, errors: list[dict[str, str]] | None = None, **headers: str) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers or None)


def _field_path(loc: tuple[Any, ...]) -> str:
    """('body', 'request', 'records', 0, 'age') -> 'request[0].age': the path a client wrote,
    without pydantic's union tags (record/records under `request`, one/batch for /feedback)."""
    items = list(loc[1:] if loc and loc[0] == "body" else loc)
    if items and items[0] in ("one", "batch"):
        del items[0]
    if len(items) > 1 and items[0] == "request" and items[1] in ("record", "records"):
        del items[1]
    parts: list[str] = []
    for item in items:
        parts.append(f"[{item}]" if isinstance(item, int) else f".{item}" if parts else str(item))
    return "".join(parts) or "body"


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx", {}).get("error", "")
            pos = err["loc"][-1] if err.get("loc") else "?"
            out.append({"field": "body", "message": f"malformed JSON at position {pos}: {ctx}"})
            continue
        if err.get("type") == "missing" and tuple(err.get("loc", ())) == ("body",):
            out.append({"field": "body", "message": "a JSON object body is required"})
            continue
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        out.append({"field": _field_path(tuple(err.get("loc", ()))), "message": msg})
    return out


# --- ASGI middleware -----------------------------------------------------------------------------


class Metrics:
    """Prometheus counters and latency histogram per route and model version."""

    def __init__(self, holder: ModelHolder, writer: PredictionWriter) -> None:
        self.registry = CollectorRegistry()
        self.holder = holder
        self._children: dict[tuple[str, int, str], tuple[Any, Any, Any]] = {}
        self.requests = Counter(
            "bank_model_requests",
            "HTTP requests",
            ["route", "status", "model_version"],
            registry=self.registry,
        )
        self.errors = Counter(
            "bank_model_errors", "HTTP requests answered 4xx/5xx", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "bank_model_request_latency_seconds",
            "time from request start to response start",
            ["route", "model_version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "bank_model_predictions", "records scored", ["model_version"], registry=self.registry
        )
        self.swaps = Counter("bank_model_swaps", "hot swaps of the served model", registry=self.registry)
        self.info = Gauge(
            "bank_model_info",
            "the served model (value 1)",
            ["model_name", "model_version"],
            registry=self.registry,
        )
        backlog = Gauge("bank_prediction_log_backlog_rows", "rows waiting for the database", registry=self.registry)
        backlog.set_function(lambda: writer.backlog)
        written = Gauge("bank_prediction_log_written_rows", "rows written since start", registry=self.registry)
        written.set_function(lambda: writer.written)
        dropped = Gauge("bank_prediction_log_dropped_rows", "rows lost: database unavailable", registry=self.registry)
        dropped.set_function(lambda: writer.dropped)
        up = Gauge("bank_prediction_log_writer_up", "1 while the writer process runs", registry=self.registry)
        up.set_function(lambda: 1.0 if writer.alive else 0.0)

    def swapped(self, old: LoadedModel | None, new: LoadedModel) -> None:
        if old is not None:
            self.info.remove(old.name, old.version)
            self.swaps.inc()
        self.info.labels(new.name, new.version).set(1)

    def version(self) -> str:
        current = self.holder.current
        return current.version if current is not None else "none"

    def observe(self, path: str, status: int, seconds: float) -> None:
        """Record one response; label children are cached (labels() costs more than inc())."""
        route = path if path in ROUTES else "other"
        key = (route, status, self.version())
        children = self._children.get(key)
        if children is None:
            route_, status_, version = route, str(status), key[2]
            children = (
                self.requests.labels(route_, status_, version),
                self.latency.labels(route_, version),
                self.errors.labels(route_, status_) if status >= 400 else None,
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if children[2] is not None:
            children[2].inc()


class ObserveMiddleware:
    """Outermost layer: stamps the start time and records every response in the metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        scope[T0_KEY] = t0
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                self.metrics.observe(scope["path"], status, time.perf_counter() - t0)
            await send(message)

        await self.app(scope, receive, send_wrapper)


class GuardMiddleware:
    """Body size limit (413) and access-key check (401) before any parsing or validation."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, access_key: str | None, key_hint: str) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.key = access_key.encode() if access_key else None
        self.key_hint = key_hint

    def _too_large(self, size: int | None = None) -> JSONResponse:
        got = f" ({size:,} bytes)" if size is not None else ""
        return error(413, f"request body too large{got}: the limit is {self.max_body:,} bytes (SERVE_MAX_BODY_BYTES)")

    def _unauthorized(self) -> JSONResponse:
        return error(
            401,
            "missing or invalid access key: send 'Authorization: Bearer <key>' or \"accessKey\" in the body "
            f"(the key is in {self.key_hint})",
            **{"WWW-Authenticate": "Bearer"},
        )

    def _header_key(self, scope: Scope) -> bytes | None:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                return token.strip() if scheme.lower() == b"bearer" else b""
        return None

    def _body_key(self, body: bytes) -> bytes | None:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return None
        key = data.get("accessKey") if isinstance(data, dict) else None
        return key.encode("utf-8", "surrogatepass") if isinstance(key, str) else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await error(400, "invalid Content-Length header")(scope, receive, send)
                    return
                if declared > self.max_body:
                    await self._too_large(declared)(scope, receive, send)
                    return
        chunks: list[bytes] = []
        size = 0
        if scope["method"] in ("POST", "PUT", "PATCH"):
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body:
                    await self._too_large()(scope, receive, send)
                    return
                chunks.append(chunk)
                more = message.get("more_body", False)
        body = b"".join(chunks)
        if self.key is not None and scope["path"] in PROTECTED:
            given = self._header_key(scope)
            if given is None:
                given = self._body_key(body)
            if given is None or not secrets.compare_digest(given, self.key):
                await self._unauthorized()(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


# --- the app -------------------------------------------------------------------------------------


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        401: "missing or invalid access key",
        404: "unknown uuid",
        413: "body too large",
        422: "invalid request, naming the field",
        503: "no model loaded, or the prediction log is unavailable",
    }
    return {c: {"model": schemas.ErrorResponse, "description": text[c]} for c in codes}


def create_app(
    settings: Settings,
    holder: ModelHolder,
    *,
    access_key: str | None,
    store: MetricsStore | None = None,
    watch_seconds: float = 0.0,
) -> FastAPI:
    """Build the server around a holder whose model is already loaded (its features shape the schema)."""
    if holder.current is None:
        raise ServingError("load the model before building the app: its feature set defines the request schema")
    features = holder.current.features
    body = schemas.build_schemas(features, settings.max_batch_records)
    store = store or MetricsStore(settings.metrics_db_url)
    writer = PredictionWriter(store.url)
    metrics = Metrics(holder, writer)

    def same_features(new: LoadedModel) -> None:
        if new.features.columns != features.columns:
            raise ServingError(
                f"version {new.version} uses features {list(new.features.columns)}, the running server "
                f"{list(features.columns)}: restart it (python -m lib.serving stop, then start)"
            )

    holder.check = same_features
    holder.on_swap = metrics.swapped
    metrics.swapped(None, holder.current)

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # noqa: ANN202 - FastAPI lifespan protocol
        writer.start()
        holder.start_watcher(watch_seconds)
        try:
            yield
        finally:
            holder.stop_watcher()
            writer.close()

    app = FastAPI(
        title=f"{settings.model_name} model server",
        summary="Bank marketing campaign: will the client subscribe a term deposit?",
        version="1",
        lifespan=lifespan,
        default_response_class=JSONResponse,
    )
    app.state.holder = holder
    app.state.store = store
    app.state.writer = writer
    app.state.metrics = metrics
    secured = {"security": [{"AccessKey": []}]}

    def serving() -> LoadedModel:
        current = holder.current
        if current is None:
            raise HTTPException(503, "no model loaded")
        return current

    def log_rows(
        loaded: LoadedModel, records: list[dict[str, Any]], proba: Any, pred: Any, event_ts: Any, t0: float
    ) -> list[str]:
        now = time.time()
        latency = (time.perf_counter() - t0) * 1000.0
        event = event_ts if event_ts is not None else now
        ids = [str(uuid.uuid4()) for _ in records]
        writer.submit(
            [
                PredictionRow(u, now, event, loaded.name, loaded.version, rec, float(p), int(y), latency)
                for u, rec, p, y in zip(ids, records, proba, pred, strict=True)
            ]
        )
        metrics.predictions.labels(loaded.version).inc(len(records))
        return ids

    def without_target(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The raw features to log (a client may send the outcome `y` along; it is not a feature)."""
        return [{k: v for k, v in r.items() if k != TARGET} if TARGET in r else r for r in records]

    @app.exception_handler(RequestValidationError)
    async def on_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        return error(422, f"{first['field']}: {first['message']}", errors)

    @app.exception_handler(FeatureError)
    async def on_feature(_: Request, exc: FeatureError) -> JSONResponse:
        return error(422, str(exc))

    @app.exception_handler(MetricsStoreError)
    @app.exception_handler(SQLAlchemyError)
    async def on_store(_: Request, exc: Exception) -> JSONResponse:
        log.error("prediction log unavailable: %s", exc)
        return error(503, f"prediction log unavailable: {type(exc).__name__}; see the server log")

    @app.exception_handler(HTTPException)
    async def on_http(_: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), **(exc.headers or {}))

    @app.exception_handler(Exception)
    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error(500, f"internal error ({type(exc).__name__}); see the server log")

    def score(
        request: Request, records: list[dict[str, Any]], event_time: Any, checked: bool
    ) -> tuple[LoadedModel, list[str], Any, Any]:
        """Score with the model serving right now and log every row (the one path both scoring routes take)."""
        t0 = request.scope.get(T0_KEY, time.perf_counter())
        loaded = serving()
        rows = records if checked else [schemas.check_record(r, loaded.features) for r in records]
        proba, pred = loaded.model.predict_records(rows)
        ids = log_rows(loaded, without_target(records), proba, pred, event_time, t0)
        return loaded, ids, proba, pred

    @app.post(
        "/predict",
        response_model=schemas.PredictResponse,
        responses=_responses(401, 413, 422, 503),
        openapi_extra=secured,
        summary="Score one record or a batch (CML model API style)",
    )
    async def predict(request: Request, payload: body.predict) -> Response:  # type: ignore[valid-type]
        # typed by the schema from lib.features: no second validation pass
        loaded, ids, proba, pred = score(request, payload.records(), payload.event_time, checked=True)
        name, version = loaded.name, loaded.version
        return JSONResponse(
            {
                "model_name": name,
                "model_version": version,
                "predictions": [
                    {
                        "uuid": u,
                        "prediction": int(y),
                        "probability": float(p),
                        "model_name": name,
                        "model_version": version,
                    }
                    for u, p, y in zip(ids, proba, pred, strict=True)
                ],  # fmt: skip
            }
        )

    @app.post(
        "/invocations",
        response_model=schemas.InvocationsResponse,
        responses=_responses(401, 413, 422, 503),
        openapi_extra=secured,
        summary="Score rows in the MLflow scoring-server protocol",
    )
    async def invocations(request: Request, payload: body.invocations) -> Response:  # type: ignore[valid-type]
        _, _, proba, pred = score(request, payload.records(), None, checked=False)
        return JSONResponse(
            {"predictions": [{"prediction": int(y), "probability": float(p)} for p, y in zip(proba, pred, strict=True)]}
        )

    @app.post(
        "/explain",
        response_model=schemas.ExplainResponse,
        responses=_responses(401, 413, 422, 503),
        openapi_extra=secured,
        summary="Per-feature SHAP contributions for one record",
    )
    async def explain(payload: body.explain) -> Response:  # type: ignore[valid-type]
        loaded = serving()
        proba, pred = loaded.model.predict_records([payload.request])
        contributions = loaded.model.contributions([payload.request])[0]
        if not all(math.isfinite(v) for v in contributions.values()):
            raise HTTPException(422, "the model produced non-finite contributions for this record")
        return JSONResponse(
            {
                "model_name": loaded.name,
                "model_version": loaded.version,
                "probability": float(proba[0]),
                "prediction": int(pred[0]),
                "contributions": contributions,
            }
        )

    @app.post(
        "/feedback",
        response_model=schemas.FeedbackResponse,
        responses=_responses(401, 404, 413, 422, 503),
        openapi_extra=secured,
        summary="Report the true outcome of earlier predictions, one or a batch",
    )
    def feedback(payload: body.feedback) -> Response:  # type: ignore[valid-type]
        items = payload.items()
        writer.flush()
        unknown = store.unknown_uuids([i["uuid"] for i in items])
        if len(items) == 1 and unknown:
            raise HTTPException(404, f"unknown uuid: {unknown[0]} (no logged prediction has it)")
        matched = store.record_feedback(items)
        return JSONResponse({"matched": matched, "unknown": unknown})

    @app.post(
        "/admin/reload",
        response_model=schemas.ReloadResponse,
        responses=_responses(401, 503),
        openapi_extra=secured,
        summary="Load the version the champion alias points at now and swap it in",
    )
    async def reload() -> Response:
        try:
            old, new = await run_in_threadpool(holder.reload)
        except ServingError as exc:
            current = holder.current
            still = f"; still serving version {current.version}" if current else ""
            raise HTTPException(503, f"reload failed: {exc}{still}") from exc
        return JSONResponse(
            {
                "reloaded": old is None or old.version != new.version,
                "previous_version": old.version if old else None,
                "model_version": new.version,
            }
        )

    @app.get("/health", response_model=schemas.HealthResponse, summary="Liveness")
    async def health() -> Response:
        return JSONResponse({"status": "ok", "pid": os.getpid()})

    @app.get("/ready", response_model=schemas.ReadyResponse, responses=_responses(503), summary="Readiness")
    async def ready() -> Response:
        current = holder.current
        if current is None:
            return JSONResponse({"status": "loading", "model_version": None}, status_code=503)
        return JSONResponse({"status": "ready", "model_version": current.version})

    @app.get("/version", response_model=schemas.VersionResponse, responses=_responses(503), summary="Served model")
    async def version() -> Response:
        loaded = serving()
        info = loaded.info
        return JSONResponse(
            {
                "model_name": info.name,
                "model_version": info.version,
                "run_id": info.run_id,
                "iceberg_snapshot_id": info.snapshot_id,
                "git_commit": info.git_commit,
                "experiment": info.experiment,
                "model_uri": info.uri,
                "loaded_at": loaded.loaded_at.isoformat(timespec="seconds"),
            }
        )

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            schema.setdefault("components", {})["securitySchemes"] = {
                "AccessKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": f'the key in {settings.access_key_file} (or "accessKey" in the body)',
                }
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    key_hint = str(settings.access_key_file)
    app.add_middleware(
        GuardMiddleware, max_body_bytes=settings.max_body_bytes, access_key=access_key, key_hint=key_hint
    )
    app.add_middleware(ObserveMiddleware, metrics=metrics)
    return app
