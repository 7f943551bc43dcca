"""What routes need, reached through FastAPI dependencies.

Tests swap them with `app.dependency_overrides` instead of mutating the app.

`ModelDep` is the model serving right now (503 when none is loaded): a request takes it once and
finishes on it even if a hot swap happens meanwhile. The rest are the app's long-lived parts,
kept on `app.state` by `create_app`. All are `async def`: a plain `def` would cost a thread hop.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.exceptions import HTTPException

from lib.config import Settings
from lib.metrics_store import MetricsStore
from lib.serving.loader import LoadedModel, ModelHolder
from lib.serving.prediction_log import PredictionWriter
from lib.serving.prometheus import Metrics
from lib.serving.scoring import Scorer


async def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings


async def get_holder(request: Request) -> ModelHolder:
    """The model holder, for routes that swap the model (reload)."""
    return request.app.state.holder


async def get_current_model(request: Request) -> LoadedModel | None:
    """The served model, or None while none is loaded (readiness answers 503 then)."""
    return request.app.state.holder.current


async def get_model(current: Annotated[LoadedModel | None, Depends(get_current_model)]) -> LoadedModel:
    """The served model, or 503 while none is loaded."""
    if current is None:
        raise HTTPException(503, "no model loaded")
    return current


async def get_scorer(request: Request) -> Scorer:
    """The app's scorer, shared by the scoring routes."""
    return request.app.state.scorer


async def get_store(request: Request) -> MetricsStore:
    """The prediction-log store, for routes that read it (feedback checks uuids)."""
    return request.app.state.store


async def get_writer(request: Request) -> PredictionWriter:
    """The background writer that batches prediction-log rows."""
    return request.app.state.writer


async def get_metrics(request: Request) -> Metrics:
    """The app's Prometheus metrics."""
    return request.app.state.metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
HolderDep = Annotated[ModelHolder, Depends(get_holder)]
CurrentModelDep = Annotated[LoadedModel | None, Depends(get_current_model)]
ModelDep = Annotated[LoadedModel, Depends(get_model)]
ScorerDep = Annotated[Scorer, Depends(get_scorer)]
StoreDep = Annotated[MetricsStore, Depends(get_store)]
WriterDep = Annotated[PredictionWriter, Depends(get_writer)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
