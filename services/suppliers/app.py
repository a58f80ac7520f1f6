"""Composition root of the suppliers service."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from services.contracts.cpv import search_cpv
from services.infra.http import create_service_app
from services.infra.ratelimit import RateLimiter
from services.infra.runtime import Runtime
from services.infra.settings import Settings
from services.suppliers import kpis
from services.suppliers.api import router


async def _warm_cpv_index() -> None:
    """Build the CPV search indexes (both languages) before the first request needs them."""
    await asyncio.to_thread(search_cpv, "innomatch", "sv")


def create_app(settings: Settings) -> FastAPI:
    runtime = Runtime("suppliers", settings)
    runtime.before_consuming.append(_warm_cpv_index)
    kpis.install(runtime)
    app = create_service_app(
        runtime,
        title="Innomatch suppliers",
        description="Suppliers register their company and capabilities, and keep them current.",
        routers=[router],
    )
    app.state.registration_limiter = RateLimiter(settings.registration_rate_per_minute)
    return app
