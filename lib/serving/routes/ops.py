"""Operational routes, open without the key.

GET /health (liveness), /ready and /ping (readiness; /ping is MLflow's health path), /version
(the served model and its decision threshold), /metrics.
"""

from __future__ import annotations

import os

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from lib.serving.deps import CurrentModelDep, MetricsDep, ModelDep
from lib.serving.errors import JSONResponse, documented
from lib.serving.loader import LoadedModel
from lib.serving.responses import HealthResponse, ReadyResponse, VersionResponse

router = APIRouter()


@router.get("/health", response_model=HealthResponse, summary="Liveness")
async def health() -> Response:
    """Liveness: the process answers, with its pid."""
    return JSONResponse({"status": "ok", "pid": os.getpid()})


def _readiness(current: LoadedModel | None) -> Response:
    if current is None:
        return JSONResponse({"status": "loading", "model_version": None}, status_code=503)
    return JSONResponse({"status": "ready", "model_version": current.version})


@router.get("/ready", response_model=ReadyResponse, responses=documented(503), summary="Readiness")
async def ready(current: CurrentModelDep) -> Response:
    """Readiness: 200 with the served version once a model is loaded, else 503."""
    return _readiness(current)


@router.get(
    "/ping",
    response_model=ReadyResponse,
    responses=documented(503),
    summary="Readiness on MLflow's health path: 200 once a model is loaded",
)
async def ping(current: CurrentModelDep) -> Response:
    """Readiness under the path MLflow's scoring server uses."""
    return _readiness(current)


@router.get("/version", response_model=VersionResponse, responses=documented(503), summary="Served model")
async def version(loaded: ModelDep) -> Response:
    """Which model version is served, where it came from, and its decision threshold."""
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
            "decision_threshold": loaded.threshold,
            "engine": loaded.engine,
        }
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus(metrics: MetricsDep) -> Response:
    """The server's metrics in Prometheus text format."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
