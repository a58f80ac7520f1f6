"""Composition root of the matcher service."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import Gauge

from services.contracts.topics import SUPPLIERS
from services.infra.http import create_service_app
from services.infra.runtime import Runtime
from services.infra.settings import Settings
from services.matcher import repository
from services.matcher.handlers import SupplierReplica


def create_app(settings: Settings) -> FastAPI:
    runtime = Runtime("matcher", settings)
    replica = SupplierReplica(
        Gauge(
            "innomatch_matcher_supplier_profiles",
            "Supplier profiles held by this matcher instance.",
            registry=runtime.metrics.registry,
        )
    )
    runtime.consume(SUPPLIERS, replica.on_supplier_event)

    async def load_replica() -> None:
        async with runtime.pool.acquire() as conn:
            replica.load(await repository.load_suppliers(conn))

    runtime.before_consuming.append(load_replica)

    return create_service_app(
        runtime,
        title="Innomatch matcher",
        description="Pairs suppliers with needs, with a score and an explanation.",
    )
