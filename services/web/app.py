"""Composition root of the web forum: pages over the other services' HTTP APIs, sessions in
its own schema, HTML errors for pages (the operational routes keep their JSON)."""

from __future__ import annotations

import asyncio
import hashlib
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.infra.http import create_service_app
from services.infra.logs import configure_logging
from services.infra.runtime import Runtime
from services.infra.settings import ServiceName, Settings
from services.web.api import account, buyer, common, operator, public, supplier
from services.web.client import ApiError, Backend
from services.web.handlers import Forum
from services.web.mail import Mailer

_BACKENDS: tuple[ServiceName, ...] = ("suppliers", "needs", "matcher", "notifier")


def create_app(settings: Settings) -> FastAPI:
    runtime = Runtime("web", settings)
    operator_token = settings.operator_token.get_secret_value() if settings.operator_token else None
    backend = Backend(
        {s: settings.backend_url_of(s) for s in _BACKENDS},
        operator_token,
        read_cache_s=settings.web_read_cache_seconds,
    )
    dev_mode = settings.mode == "development"
    mailer = Mailer(settings.smtp_url, settings.web_email_from)
    app = create_service_app(
        runtime,
        title="Innomatch web",
        description="The forum in a browser: needs, suppliers, matches and dialogues.",
        # Fixed paths (/needs/new, /suppliers/new) before the public pages' /needs/{id}, /suppliers/{id}.
        routers=[account.router, supplier.router, buyer.router, operator.router, public.router],
        max_body_bytes=256 * 1024,
    )
    app.state.forum = Forum(settings, lambda: runtime.pool, backend, mailer)
    app.state.dev_mode = dev_mode
    # CSRF tokens are keyed by a secret derived from the token secret, for this purpose only.
    app.state.csrf_key = hashlib.sha256(
        b"web-csrf:" + settings.token_secret.get_secret_value().encode()
    ).hexdigest()
    runtime.background.append(lambda: _close_on_stop(backend))
    for exc in (common.CsrfRefused, common.PageError, ApiError, StarletteHTTPException):
        app.add_exception_handler(exc, common.page_error)
    app.add_exception_handler(Exception, common.unexpected_error)
    secure = settings.web_secure_cookies if settings.web_secure_cookies is not None else not dev_mode
    app.add_middleware(common.ForumCookies, secure=secure, session_hours=settings.web_session_hours)
    static = Path(str(files("services.web").joinpath("static")))
    app.mount("/static", StaticFiles(directory=static), name="static")
    return app


async def _close_on_stop(backend: Backend) -> None:
    """Waits until the runtime stops (it cancels its background tasks), then closes the client."""
    try:
        await asyncio.Event().wait()
    finally:
        await backend.close()


def from_environment() -> FastAPI:
    """The app as each of `innomatch serve web`'s worker processes builds it (settings from the
    INNOMATCH_* variables)."""
    settings = Settings()
    configure_logging(settings, "web")
    return create_app(settings)
