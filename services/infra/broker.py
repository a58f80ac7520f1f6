"""The FastStream Kafka broker every service uses, and topic administration."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware

from services.contracts.topics import SUPPLIERS
from services.infra.consumer import DeadLetters, bind_message_context, raw_records
from services.infra.logs import broker_logger, get_logger
from services.infra.metrics import Metrics
from services.infra.settings import Settings

log = get_logger(__name__)

_DAY_MS = 86_400_000

# Topic configurations Innomatch sets. The suppliers topic carries personal data (names,
# e-mail addresses, webhook secrets): it is compacted, an erased supplier's key ends with a
# tombstone, and every record becomes eligible for compaction within 7 days
# (max.compaction.lag.ms; segments roll daily so the active one is not where data waits).
# The tombstone itself is dropped a day after compaction (delete.retention.ms). A live
# supplier's latest record stays, so a consumer can still rebuild its view from the topic.
TOPIC_CONFIGS: dict[str, dict[str, str]] = {
    SUPPLIERS: {
        "cleanup.policy": "compact",
        "max.compaction.lag.ms": str(7 * _DAY_MS),
        "segment.ms": str(_DAY_MS),
        "delete.retention.ms": str(_DAY_MS),
    },
}


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


def bootstrap_servers(bootstrap: str) -> list[str]:
    """`host:port[,host:port...]` as the list of addresses it names."""
    return [address.strip() for address in bootstrap.split(",") if address.strip()]


def make_broker(settings: Settings, service: str, metrics: Metrics) -> tuple[KafkaBroker, DeadLetters]:
    dead_letters = DeadLetters(service, metrics, settings.dlq_max_attempts, settings.dlq_retry_backoff_s)
    broker = _Broker(
        # A list: FastStream takes a string as one address, so "a:9092,b:9092" (a cluster's
        # bootstrap list, as aiokafka and Kafka's own tools read it) would not resolve.
        bootstrap_servers(settings.kafka_bootstrap),
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


async def ensure_topics(
    bootstrap: str,
    topics: Sequence[str],
    partitions: int,
    replication_factor: int = 1,
    min_insync_replicas: int | None = None,
) -> list[str]:
    """Create the topics that do not exist yet, with their `TOPIC_CONFIGS` (and
    `min.insync.replicas` when given), and set those configurations on topics that exist with
    others; return the topics created. An existing topic keeps its partitions and replicas."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="innomatch-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        isr = {} if min_insync_replicas is None else {"min.insync.replicas": str(min_insync_replicas)}
        wanted = {t: {**TOPIC_CONFIGS.get(t, {}), **isr} for t in topics}
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(
                            t,
                            num_partitions=partitions,
                            replication_factor=replication_factor,
                            topic_configs=wanted[t],
                        )
                        for t in missing
                    ]
                )
        for topic in topics:
            if topic in existing and wanted[topic]:
                await _configure(admin, topic, wanted[topic])
        return missing
    finally:
        await admin.close()


async def topic_configs(admin: AIOKafkaAdminClient, topic: str, names: Sequence[str]) -> dict[str, str]:
    """The current values of the named configurations of `topic`."""
    # All of them, filtered here: tansu drops the connection when asked for named ones.
    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    found: dict[str, str] = {}
    for response in responses:
        for resource in response.resources:
            for entry in resource[4]:  # (name, value, read_only, source, sensitive, synonyms)
                if entry[0] in names:
                    found[entry[0]] = entry[1]
    return found


async def _configure(admin: AIOKafkaAdminClient, topic: str, wanted: dict[str, str]) -> None:
    """Set `wanted` on an existing topic where it differs. A broker that cannot alter
    configurations (tansu) keeps what the topic was created with; that is logged."""
    try:
        current = await topic_configs(admin, topic, list(wanted))
        if all(current.get(k) == v for k, v in wanted.items()):
            return
        # AlterConfigs (not the incremental API, which aiokafka lacks) sets the topic's whole
        # override set, so every configuration Innomatch manages is in `wanted`.
        responses = await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, wanted)])
        errors = [r for response in responses for r in response.resources if r[0] != 0]
        if errors:
            log.warning("topic_config_not_set", topic=topic, error=str(errors[0][1]), code=errors[0][0])
            return
        log.info("topic_configured", topic=topic, configs=wanted)
    except KafkaError as exc:
        log.warning("topic_config_not_set", topic=topic, error=str(exc) or type(exc).__name__)
