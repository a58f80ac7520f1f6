"""The HTTP shell every service shares: lifespan, health, readiness, metrics, error bodies.

Errors have one JSON shape: `{"error": {"code", "message", "fields"?}}`, also for unknown
routes and methods (404, 405) and for unexpected failures (500, code `internal`);
validation errors name each failing field by its path, e.g. `capabilities.cpv_codes[2]`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.contracts.errors import InvalidData, StateConflict
from services.infra.auth import Tokens
from services.infra.body_limit import BodyLimit
from services.infra.erasure import ErasedPrincipals
from services.infra.errors import Conflict, InnomatchError, error_body
from services.infra.metrics import Metrics, exposition
from services.infra.runtime import Runtime


def field_path(loc: Sequence[int | str]) -> str:
    """("body", "capabilities", "cpv_codes", 2) -> "capabilities.cpv_codes[2]"."""
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path", "header") else list(loc)
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not out:
            out = str(part)
        else:
            out += f".{part}"
    return out or "body"


def _reason(error: dict[str, Any]) -> str:
    msg = str(error.get("msg", "invalid"))
    if error.get("type") == "json_invalid":
        return "the body is not valid JSON"
    if error.get("type") == "extra_forbidden":
        return "unknown field"
    return msg.removeprefix("Value error, ")


def _innomatch_response(exc: InnomatchError) -> Response:
    return JSONResponse(error_body(exc.code, exc.message, **exc.details), exc.status, headers=exc.headers)


async def _innomatch_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, InnomatchError)
    return _innomatch_response(exc)


def _invalid(errors: Sequence[Any]) -> Response:
    fields = [{"field": field_path(e["loc"]), "reason": _reason(e)} for e in errors]
    return JSONResponse(error_body("invalid", "the request is not valid", fields=fields), 422)


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return _invalid(exc.errors())


async def _rule_error(_: Request, exc: Exception) -> Response:
    """A pure rule's refusal (`services.contracts.errors`): 422 naming the fields, or 409."""
    if isinstance(exc, InvalidData):
        return _invalid([{**e, "loc": ("body", *e["loc"])} for e in exc.errors])
    assert isinstance(exc, StateConflict)
    return _innomatch_response(Conflict(exc.message))


# Errors Starlette raises itself (no such route, a method the route does not allow, ...),
# by status: the code and message of the documented error shape.
_HTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "the request is not valid"),
    401: ("unauthenticated", "authentication is required"),
    403: ("forbidden", "not allowed"),
    404: ("not_found", "no such resource"),
    405: ("method_not_allowed", "the method is not allowed here"),
    406: ("not_acceptable", "no acceptable representation"),
    409: ("conflict", "the request conflicts with the current state"),
    412: ("precondition_failed", "a precondition failed"),
    413: ("payload_too_large", "the request body is too large"),
    415: ("unsupported_media_type", "the media type is not supported"),
    429: ("rate_limited", "too many requests"),
}


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (unknown route, wrong method) in the one error shape."""
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    headers = dict(exc.headers or {})
    if status in (204, 304):  # no body allowed
        return Response(status_code=status, headers=headers)
    code, message = _HTTP_CODES.get(status, ("error", str(exc.detail or "the request failed")))
    if status == 404:
        message = f"no such resource: {request.url.path}"
    elif status == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    return JSONResponse(error_body(code, message), status, headers=headers)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    """Anything else a route raises (a database that went away, a bug): 500 in the one error
    shape. Starlette raises the exception again after sending this, so the server still logs
    it with its traceback; the body says nothing about it."""
    return JSONResponse(error_body("internal", "the service could not complete the request"), 500)


class RequestMetrics:
    """ASGI middleware: count and time every request by its route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            # The router writes the matched route into the scope it was given.
            route = getattr(scope.get("route"), "path", "unmatched")
            m = self.metrics
            m.http_requests.labels(m.service, scope["method"], route, str(status)).inc()
            m.http_latency.labels(m.service, scope["method"], route).observe(time.perf_counter() - started)


def create_service_app(
    runtime: Runtime,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter] = (),
    max_body_bytes: int = 64 * 1024,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title=title, description=description, version="1", lifespan=lifespan)
    app.state.runtime = runtime
    app.state.tokens = Tokens(runtime.settings)
    app.state.erased_principals = ErasedPrincipals(lambda: runtime.pool, runtime.schema)
    app.add_exception_handler(InnomatchError, _innomatch_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(InvalidData, _rule_error)
    app.add_exception_handler(StateConflict, _rule_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=runtime.metrics)
    metrics = runtime.metrics

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": runtime.name}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="The database and the broker answer, and no consumer waits on an outage",
    )
    async def readyz() -> Response:
        state = await runtime.readiness()
        body: dict[str, Any] = {"status": "ready" if state.ready else "not_ready", "checks": state.checks}
        if not state.ready:
            body["reasons"] = state.reasons
        return JSONResponse(body, 200 if state.ready else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def prometheus_metrics() -> Response:
        return Response(exposition(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app


# Dependencies are async so FastAPI does not hop to a worker thread for each of them.
async def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
