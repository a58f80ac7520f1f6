"""Composition root of the suppliers service."""

from __future__ import annotations

from fastapi import FastAPI

from services.infra.http import create_service_app
from services.infra.runtime import Runtime
from services.infra.settings import Settings
from services.suppliers.api import router


def create_app(settings: Settings) -> FastAPI:
    runtime = Runtime("suppliers", settings)
    return create_service_app(
        runtime,
        title="Innomatch suppliers",
        description="Suppliers register their company and capabilities, and keep them current.",
        routers=[router],
    )
