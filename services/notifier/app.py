"""Composition root of the notifier service."""

from __future__ import annotations

from fastapi import FastAPI

from services.contracts.topics import BUYER_GROUPS, DIALOGUES, MATCHES, NEEDS, SUPPLIERS
from services.infra.http import create_service_app
from services.infra.runtime import Runtime
from services.infra.settings import Settings
from services.notifier.api import router
from services.notifier.delivery import DeliveryWorker
from services.notifier.handlers import Handlers
from services.notifier.metrics import NotifierMetrics


def create_app(settings: Settings) -> FastAPI:
    runtime = Runtime("notifier", settings)
    metrics = NotifierMetrics(runtime.metrics)
    handlers = Handlers(metrics, smtp=settings.smtp_url is not None, forum_url=settings.forum_url)

    # A consumer group per topic: members of one group subscribed to different topics make
    # every start a cascade of rebalances (each pauses all consumption for seconds), and
    # the order of events across topics does not matter to the handlers anyway.
    def group(topic: str) -> str:
        return f"{settings.kafka_group_prefix}-notifier-{topic.split('.')[1]}"

    runtime.consume(SUPPLIERS, batch_handler=handlers.on_supplier_events, group_id=group(SUPPLIERS))
    runtime.consume(BUYER_GROUPS, batch_handler=handlers.on_buyer_group_events, group_id=group(BUYER_GROUPS))
    runtime.consume(NEEDS, batch_handler=handlers.on_need_events, group_id=group(NEEDS))
    runtime.consume(MATCHES, batch_handler=handlers.on_match_events, group_id=group(MATCHES))
    runtime.consume(DIALOGUES, batch_handler=handlers.on_dialogue_events, group_id=group(DIALOGUES))

    worker: DeliveryWorker | None = None

    async def deliver() -> None:
        assert worker is not None
        await worker.run()

    async def open_worker() -> None:
        nonlocal worker
        worker = DeliveryWorker(runtime.pool, settings, metrics)
        app.state.delivery_worker = worker

    runtime.before_consuming.append(open_worker)
    runtime.background.append(deliver)
    app = create_service_app(
        runtime,
        title="Innomatch notifier",
        description=(
            "Delivers match alerts by signed webhook, e-mail and the in-app inbox, instantly or "
            "in daily/weekly digests, tells market dialogues' participants of invitations and "
            "answers, and publishes the audit trail on innomatch.alerts.v1."
        ),
        routers=[router],
    )
    return app
