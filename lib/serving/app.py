"""The FastAPI model server: predictions, explanations, feedback, health and metrics.

Routes: POST /predict (CML style), POST /invocations (MLflow scoring protocol, JSON or text/csv),
POST /explain, POST /feedback, POST /admin/reload, GET /health, /ready, /ping, /version, /metrics;
OpenAPI at /openapi.json, offline docs at /docs and /redoc. Predict/invocations/explain/feedback/
admin need the access key (as CML's "Enable Authentication") unless the server runs with auth off.

`create_app` only wires the parts together: the routers (`lib.serving.routes`), the dependencies
they reach the served model through (`deps`), the scoring path (`scoring`), the prediction-log
writer (`prediction_log`), metrics (`prometheus`), the ASGI layers (`middleware`, and in front of
them `fastpath` with `columnar` for valid scoring requests), error bodies (`errors`) and the
OpenAPI document and docs pages (`openapi`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from lib.config import Settings
from lib.metrics_store import MetricsStore
from lib.serving import schemas
from lib.serving.errors import JSONResponse, install_handlers
from lib.serving.fastpath import FastPathMiddleware
from lib.serving.loader import LoadedModel, ModelHolder, ServingError
from lib.serving.middleware import GuardMiddleware, ObserveMiddleware
from lib.serving.openapi import install_docs, install_openapi
from lib.serving.prediction_log import PredictionWriter
from lib.serving.prometheus import Metrics
from lib.serving.routes import admin, feedback, ops, scoring
from lib.serving.scoring import Scorer


def _same_features(holder: ModelHolder) -> None:
    """Refuse a hot swap to a version with other features: the request schema is fixed per app."""
    features = holder.current.features if holder.current is not None else None

    def check(new: LoadedModel) -> None:
        if features is not None and new.features.columns != features.columns:
            raise ServingError(
                f"version {new.version} uses features {list(new.features.columns)}, the running server "
                f"{list(features.columns)}: restart it (python -m lib.serving stop, then start)"
            )

    holder.check = check


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
    body = schemas.build_schemas(holder.current.features, settings.max_batch_records)
    store = store or MetricsStore(settings.metrics_db_url)
    writer = PredictionWriter(store.url)
    metrics = Metrics(holder, writer)
    _same_features(holder)
    holder.on_swap = metrics.swapped
    metrics.swapped(None, holder.current)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
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
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.holder = holder
    app.state.store = store
    app.state.writer = writer
    app.state.metrics = metrics
    app.state.scorer = Scorer(writer, metrics)
    install_handlers(app)
    app.include_router(scoring.build_router(body))
    app.include_router(feedback.build_router(body))
    app.include_router(admin.router)
    app.include_router(ops.router)
    install_openapi(app, key_hint=str(settings.access_key_file))
    install_docs(app)
    metrics.label_routes(route.path for route in app.routes)  # type: ignore[attr-defined]
    app.add_middleware(
        GuardMiddleware,
        max_body_bytes=settings.max_body_bytes,
        access_key=access_key,
        key_hint=str(settings.access_key_file),
    )
    app.add_middleware(ObserveMiddleware, metrics=metrics)
    app.add_middleware(  # outermost: what it does not answer in full goes through the two layers above
        FastPathMiddleware,
        root=app,
        body=body,
        features=holder.current.features,
        max_batch=settings.max_batch_records,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        access_key=access_key,
    )
    return app
