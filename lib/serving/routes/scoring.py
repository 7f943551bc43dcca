"""Scoring routes.

POST /predict (CML model API style), /invocations (MLflow scoring protocol, JSON or CSV) and
/explain (SHAP contributions for one record).
"""

# no `from __future__ import annotations`: FastAPI must see the per-app body types, not their names
import math
import time
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from lib.serving import schemas
from lib.serving.csv_body import CSV_MEDIA_TYPE, CsvRoute
from lib.serving.deps import ModelDep, ScorerDep
from lib.serving.errors import JSONResponse, documented
from lib.serving.loader import LoadedModel
from lib.serving.middleware import T0_KEY
from lib.serving.openapi import SECURED
from lib.serving.responses import ExplainResponse, InvocationsResponse, PredictResponse
from lib.serving.scoring import Scored

CSV_EXAMPLE = "age,job,marital,...\n41,technician,married,...\n"
# text/csv beside the generated application/json body (FastAPI merges openapi_extra into the operation)
CSV_BODY = {
    "requestBody": {
        "content": {
            CSV_MEDIA_TYPE: {
                "schema": {"type": "string", "description": "a header row of column names, then one row per record"},
                "example": CSV_EXAMPLE,
            }
        }
    }
}


def _answer(content: dict[str, Any], proba: np.ndarray) -> Response:
    """A 200 JSON answer, encoded by orjson (a tenth of json's time for 100 floats) where it may be.

    That is when it gives what `JSONResponse` promises: ASCII only, and finite probabilities
    (orjson would write NaN as null); else `JSONResponse` encodes it.
    """
    if np.isfinite(proba).all():
        body = orjson.dumps(content)
        if body.isascii():
            return Response(body, media_type="application/json")
    return JSONResponse(content)


def predict_answer(loaded: LoadedModel, got: Scored) -> Response:
    """/predict's 200 answer: every record's uuid, 0/1 prediction and probability, with the version."""
    name, version = loaded.name, loaded.version
    predictions = [
        {"uuid": u, "prediction": y, "probability": p, "model_name": name, "model_version": version}
        for u, p, y in zip(got.ids, got.proba.tolist(), got.pred.tolist(), strict=True)
    ]
    return _answer({"model_name": name, "model_version": version, "predictions": predictions}, got.proba)


def invocations_answer(got: Scored) -> Response:
    """/invocations' 200 answer, in MLflow's scoring-server shape."""
    rows = [{"prediction": y, "probability": p} for p, y in zip(got.proba.tolist(), got.pred.tolist(), strict=True)]
    return _answer({"predictions": rows}, got.proba)


def _t0(request: Request) -> float:
    return request.scope.get(T0_KEY, time.perf_counter())


def build_router(body: schemas.Schemas) -> APIRouter:
    """The scoring routes, typed by this app's request models."""
    router = APIRouter()

    @router.post(
        "/predict",
        response_model=PredictResponse,
        responses=documented(401, 413, 422, 503),
        openapi_extra=SECURED,
        summary="Score one record or a batch (CML model API style)",
    )
    async def predict(
        request: Request,
        payload: body.predict,  # type: ignore[valid-type]
        loaded: ModelDep,
        scorer: ScorerDep,
    ) -> Response:
        # typed by the schema from lib.features: no second validation pass
        got = scorer.score(loaded, payload.records(), event_time=payload.event_time, t0=_t0(request), checked=True)
        return predict_answer(loaded, got)

    @router.post(
        "/explain",
        response_model=ExplainResponse,
        responses=documented(401, 413, 422, 503),
        openapi_extra=SECURED,
        summary="Per-feature SHAP contributions for one record",
    )
    async def explain(payload: body.explain, loaded: ModelDep) -> Response:  # type: ignore[valid-type]
        proba, pred = loaded.predict_records([payload.request])
        contributions = loaded.model.contributions([payload.request])[0]
        if not all(math.isfinite(v) for v in contributions.values()):
            raise HTTPException(422, "the model produced non-finite contributions for this record")
        answer: dict[str, Any] = {
            "model_name": loaded.name,
            "model_version": loaded.version,
            "probability": float(proba[0]),
            "prediction": int(pred[0]),
            "contributions": contributions,
        }
        return JSONResponse(answer)

    router.include_router(_invocations_router(body))
    return router


def _invocations_router(body: schemas.Schemas) -> APIRouter:
    """/invocations on its own router: its route class also takes text/csv bodies."""
    router = APIRouter(route_class=CsvRoute)

    @router.post(
        "/invocations",
        response_model=InvocationsResponse,
        responses=documented(401, 413, 422, 503),
        openapi_extra={**SECURED, **CSV_BODY},
        summary="Score rows in the MLflow scoring-server protocol (JSON or text/csv)",
    )
    async def invocations(
        request: Request,
        payload: body.invocations,  # type: ignore[valid-type]
        loaded: ModelDep,
        scorer: ScorerDep,
    ) -> Response:
        got = scorer.score(loaded, payload.records(), event_time=None, t0=_t0(request), checked=False)
        return invocations_answer(got)

    return router
