"""Composition root of the notifier service."""

from __future__ import annotations

from fastapi import FastAPI

from services.contracts.topics import SUPPLIERS
from services.infra.http import create_service_app
from services.infra.runtime import Runtime
from services.infra.settings import Settings
from services.notifier.api import router
from services.notifier.handlers import on_supplier_event


def create_app(settings: Settings) -> FastAPI:
    runtime = Runtime("notifier", settings)
    runtime.consume(SUPPLIERS, on_supplier_event)
    return create_service_app(
        runtime,
        title="Innomatch notifier",
        description="Delivers match alerts by webhook, e-mail and the in-app inbox.",
        routers=[router],
    )
