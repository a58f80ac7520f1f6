"""The operator's page: the results report and links to the dashboards."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.web.api.common import VisitorDep, forum_of, render, require

router = APIRouter(include_in_schema=False)


@router.get("/operator", response_class=HTMLResponse)
async def operator_page(request: Request, visitor: VisitorDep) -> HTMLResponse:
    require(visitor, visitor.is_operator)
    forum = forum_of(request)
    return render(request, "operator.html", grafana_url=forum.settings.grafana_url, report=None)
