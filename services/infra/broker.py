"""The FastStream Kafka broker every service uses, and topic administration."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware

from services.infra.consumer import DeadLetters, bind_message_context, raw_records
from services.infra.logs import broker_logger
from services.infra.metrics import Metrics
from services.infra.settings import Settings


class _Broker(KafkaBroker):
    async def start(self) -> None:
        """FastStream's start (connect, subscribers, publishers), with the subscribers starting
        at once rather than one after another: each waits for its group's join, which on the
        embedded broker takes seconds, so a service with five groups starts in one join's time."""
        await self.connect()
        await asyncio.gather(*(sub.start() for sub in self.subscribers))
        for pub in self.publishers:
            await pub.start()
        self.running = True


def make_broker(settings: Settings, service: str, metrics: Metrics) -> tuple[KafkaBroker, DeadLetters]:
    dead_letters = DeadLetters(service, metrics, settings.dlq_max_attempts, settings.dlq_retry_backoff_s)
    broker = _Broker(
        settings.kafka_bootstrap,
        client_id=f"innomatch-{service}",
        acks="all",
        enable_idempotence=settings.kafka_idempotent_producer,
        linger_ms=2,
        graceful_timeout=settings.kafka_shutdown_grace_s,
        # FastStream's per-message "Received"/"Processed" lines are debug detail; our own log
        # lines carry the topic, offset and event id.
        log_level=logging.DEBUG,
        logger=broker_logger(),  # through our structlog pipeline, not FastStream's own handler
        middlewares=(
            KafkaPrometheusMiddleware(
                registry=metrics.registry, app_name=service, metrics_prefix="innomatch_faststream"
            ),
            bind_message_context,
            dead_letters.middleware,
        ),
    )
    dead_letters.broker = broker
    return broker, dead_letters


def make_producer(settings: Settings, service: str) -> AIOKafkaProducer:
    """The outbox relay's producer (not started): every write confirmed by all in-sync replicas."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=f"innomatch-{service}-outbox",
        acks="all",
        enable_idempotence=settings.kafka_idempotent_producer,
        linger_ms=2,
    )


def subscriber_options(settings: Settings, group_id: str) -> dict[str, Any]:
    """At-least-once consumption in batches: offsets are committed only after the handler
    (and its transaction) is done with the whole batch."""
    return {
        "group_id": group_id,
        "ack_policy": AckPolicy.ACK,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms,
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": max(settings.kafka_session_timeout_ms // 3, 100),
        "batch": True,
        "max_records": settings.kafka_max_batch,
        "batch_timeout_ms": settings.kafka_fetch_max_wait_ms,
        "decoder": raw_records,
    }


async def ensure_topics(bootstrap: str, topics: Sequence[str], partitions: int) -> list[str]:
    """Create the topics that do not exist yet; return those created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="innomatch-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in missing]
                )
        return missing
    finally:
        await admin.close()
