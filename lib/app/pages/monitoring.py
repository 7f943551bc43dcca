"""The Monitoring page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from lib.app.server import page

router = APIRouter()


@router.get("/monitoring", include_in_schema=False)
def monitoring_page(request: Request) -> Response:
    """The page shell; its data comes from /api/monitoring/… so it can refresh without a reload."""
    return page(request, "monitoring")
