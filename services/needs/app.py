"""Composition root of the needs service."""

from __future__ import annotations

from fastapi import FastAPI

from services.infra.http import create_service_app
from services.infra.runtime import Runtime
from services.infra.settings import Settings
from services.needs import kpis
from services.needs.api import router


def create_app(settings: Settings) -> FastAPI:
    runtime = Runtime("needs", settings)
    kpis.install(runtime)
    return create_service_app(
        runtime,
        title="Innomatch needs",
        description="Authorities form buyer groups and publish the needs they share.",
        routers=[router],
    )
