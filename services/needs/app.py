"""Composition root of the needs service."""

from __future__ import annotations

from fastapi import FastAPI

from services.contracts.events import SupplierEvent
from services.contracts.topics import SUPPLIERS
from services.infra.db import Connection
from services.infra.http import create_service_app
from services.infra.runtime import Runtime
from services.infra.settings import Settings
from services.needs import kpis
from services.needs.api import router


async def _learn_erasures(conn: Connection, events: list[SupplierEvent]) -> None:
    """Nothing beyond what the consumer does for every supplier.removed: mark the supplier
    erased here, so that this service refuses its token."""


def create_app(settings: Settings) -> FastAPI:
    runtime = Runtime("needs", settings)
    kpis.install(runtime)
    runtime.consume(
        SUPPLIERS, batch_handler=_learn_erasures, group_id=f"{settings.kafka_group_prefix}-needs-suppliers"
    )
    return create_service_app(
        runtime,
        title="Innomatch needs",
        description="Authorities form buyer groups and publish the needs they share.",
        routers=[router],
    )
