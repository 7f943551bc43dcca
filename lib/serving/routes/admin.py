"""POST /admin/reload: load the version the champion alias names now and swap it in."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from lib.serving.deps import HolderDep
from lib.serving.errors import JSONResponse, documented
from lib.serving.loader import ServingError
from lib.serving.openapi import SECURED
from lib.serving.responses import ReloadResponse

router = APIRouter()


@router.post(
    "/admin/reload",
    response_model=ReloadResponse,
    responses=documented(401, 503),
    openapi_extra=SECURED,
    summary="Load the version the champion alias points at now and swap it in",
)
async def reload(holder: HolderDep) -> Response:
    """Swap in the champion's current version; 503 (still serving the old one) when loading fails."""
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
            "decision_threshold": new.threshold,
        }
    )
