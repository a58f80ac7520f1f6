"""The operator's page: the results report (what `innomatch report --format html` shows) and
links to the dashboards.

The report is built as the command builds it, from the events on the topics (and the
authorities from the needs service), so the page reads the broker; a built report is kept for
a minute, so reloading the page does not read every topic again.
"""

from __future__ import annotations

import asyncio
import re
import time

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.report.build import make_report
from services.report.render import render as render_report
from services.web.api.common import VisitorDep, forum_of, render, require

router = APIRouter(include_in_schema=False)

_BODY = re.compile(r"<body>(.*)</body>", re.S)
_KEEP_S = 60.0
_cache: dict[str, tuple[float, str]] = {}
_lock = asyncio.Lock()


async def _report_body(request: Request) -> str | None:
    forum = forum_of(request)
    settings = forum.settings
    async with _lock:
        cached = _cache.get("html")
        if cached and time.monotonic() - cached[0] < _KEEP_S:
            return cached[1]
        try:
            report = await asyncio.wait_for(
                make_report(
                    settings.kafka_bootstrap,
                    since=None,
                    needs_url=settings.backend_url_of("needs"),
                    operator_token=forum.backend.operator_token,
                    fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
                ),
                timeout=60,
            )
        except Exception:  # the broker is away or slow: the page says so
            return None
        match = _BODY.search(render_report(report, "html"))
        body = match.group(1) if match else ""
        body = body.replace("<h1>", "<h2>").replace("</h1>", "</h2>")
        _cache["html"] = (time.monotonic(), body)
        return body


@router.get("/operator", response_class=HTMLResponse)
async def operator_page(request: Request, visitor: VisitorDep) -> HTMLResponse:
    require(visitor, visitor.is_operator)
    forum = forum_of(request)
    report = await _report_body(request)
    return render(request, "operator.html", grafana_url=forum.settings.grafana_url, report=report)
