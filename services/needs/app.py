"""Composition root of the needs service."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from services.contracts.topics import MATCHES, SUPPLIERS
from services.infra.http import create_service_app
from services.infra.logs import get_logger
from services.infra.runtime import Runtime
from services.infra.settings import Settings
from services.needs import kpis
from services.needs.api import router
from services.needs.handlers import Dialogues, learn_matches, learn_suppliers

log = get_logger(__name__)
# How often dialogues whose closes_at has passed are closed (dialogue.closed published).
CLOSE_DIALOGUES_EVERY_S = 5.0


def create_app(settings: Settings) -> FastAPI:
    runtime = Runtime("needs", settings)
    kpis.install(runtime)
    prefix = settings.kafka_group_prefix
    # The registry's group and inbox are new with market dialogues (the group was
    # `-needs-suppliers`), so an existing deployment fills it from the compacted topic.
    runtime.consume(
        SUPPLIERS,
        batch_handler=learn_suppliers,
        consumer="needs-supplier-registry",
        group_id=f"{prefix}-needs-supplier-registry",
    )
    runtime.consume(MATCHES, batch_handler=learn_matches, group_id=f"{prefix}-needs-matches")

    async def close_dialogues() -> None:
        dialogues = Dialogues(lambda: runtime.pool, settings, runtime.schema)
        while True:
            try:
                await dialogues.close_due()
            except Exception as exc:  # the database is away: try again at the next tick
                log.warning("closing_dialogues_failed", error=str(exc))
            await asyncio.sleep(CLOSE_DIALOGUES_EVERY_S)

    runtime.background.append(close_dialogues)
    return create_service_app(
        runtime,
        title="Innomatch needs",
        description="Authorities form buyer groups, publish the needs they share and hold market "
        "dialogues about them.",
        routers=[router],
    )
