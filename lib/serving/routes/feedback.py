"""POST /feedback: the true outcome of earlier predictions, matched by uuid in the prediction log."""

# no `from __future__ import annotations`: FastAPI must see the per-app body types, not their names
from fastapi import APIRouter
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from lib.serving import schemas
from lib.serving.deps import StoreDep, WriterDep
from lib.serving.errors import JSONResponse, documented
from lib.serving.openapi import SECURED
from lib.serving.responses import FeedbackResponse


def build_router(body: schemas.Schemas) -> APIRouter:
    """The /feedback router, typed with this app's body schemas."""
    router = APIRouter()

    @router.post(
        "/feedback",
        response_model=FeedbackResponse,
        responses=documented(401, 404, 413, 422, 503),
        openapi_extra=SECURED,
        summary="Report the true outcome of earlier predictions, one or a batch",
    )
    def feedback(payload: body.feedback, store: StoreDep, writer: WriterDep) -> Response:  # type: ignore[valid-type]
        # a plain def: FastAPI runs it in a worker thread, so the database wait blocks no request
        items = payload.items()
        writer.flush()
        unknown = store.unknown_uuids([i["uuid"] for i in items])
        if len(items) == 1 and unknown:
            raise HTTPException(404, f"unknown uuid: {unknown[0]} (no logged prediction has it)")
        matched = store.record_feedback(items)
        return JSONResponse({"matched": matched, "unknown": unknown})

    return router
