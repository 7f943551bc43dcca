"""The Explain page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from lib.app.server import page

router = APIRouter()


@router.get("/explain", include_in_schema=False)
def explain_page(request: Request) -> Response:
    """The page shell; its data comes from /api/explain/… so it can refresh without a reload."""
    return page(request, "explain")
