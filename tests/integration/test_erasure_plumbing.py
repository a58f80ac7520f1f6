"""Erasure and retention plumbing on the real broker and PostgreSQL: tombstones through the
outbox and past consumers, the erased-principal marker, topic configurations, inbox pruning."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

from services.contracts.events import SupplierRemoved, SupplierRemovedState, new_event
from services.contracts.topics import SUPPLIERS, dlq
from services.infra import erasure, outbox
from services.infra.broker import TOPIC_CONFIGS, ensure_topics, topic_configs
from services.infra.runtime import Runtime
from tests.conftest import Stack
from tests.factories import supplier_registered
from tests.kafka_helpers import eventually, read_until


def _removed(supplier_id: str) -> SupplierRemoved:
    state = SupplierRemovedState(id=supplier_id, version=2, removed_at=datetime.now(UTC))
    return new_event(SupplierRemoved, source="/tests", subject=supplier_id, data=state)


async def test_a_tombstone_follows_the_removal_and_consumers_skip_it(stack: Stack, db: asyncpg.Pool) -> None:
    applied: list[tuple[str, str]] = []

    async def handler(conn: asyncpg.Connection, event: Any) -> None:
        applied.append((event.subject, event.type))

    group = f"test-{secrets.token_hex(4)}"
    runtime = Runtime("needs", stack.settings())
    runtime.consume(SUPPLIERS, handler, consumer=group, group_id=group)
    registered = supplier_registered()
    sid = registered.subject
    removed = _removed(sid)
    after = supplier_registered()  # the same key, behind the tombstone on its partition
    after = after.model_copy(update={"subject": sid, "data": after.data.model_copy(update={"id": sid})})
    async with db.acquire() as conn, conn.transaction():
        await outbox.append(conn, "needs", SUPPLIERS, registered)
        await outbox.append(conn, "needs", SUPPLIERS, removed)
        await outbox.append_tombstone(conn, "needs", SUPPLIERS, sid, removed.id)
        await outbox.append(conn, "needs", SUPPLIERS, after)
    await runtime.start()  # its relay publishes the four rows in order
    try:
        records = await read_until(
            stack.kafka_bootstrap,
            SUPPLIERS,
            lambda rs: len([r for r in rs if r.key == sid.encode()]) >= 4,
        )
        mine = [r for r in records if r.key == sid.encode()]
        assert [r.value is None for r in mine] == [False, False, True, False]
        # The consumer went past the tombstone: the event behind it was applied.
        await eventually(lambda: applied.count((sid, "supplier.registered")) == 2, timeout=30)
        assert [t for s, t in applied if s == sid] == [
            "supplier.registered",
            "supplier.removed",
            "supplier.registered",
        ]
        skipped = runtime.metrics.events_consumed.labels("needs", SUPPLIERS, "tombstone", "skipped")
        assert skipped._value.get() >= 1

        # The removal marked the supplier erased in the consumer's transaction, which commits
        # after the handler has seen the batch's events.
        async def erased() -> bool:
            async with db.acquire() as conn:
                return await erasure.is_erased(conn, "needs", f"supplier:{sid}")

        assert await eventually(erased, timeout=10)
    finally:
        await runtime.stop()
    dead = await read_until(stack.kafka_bootstrap, dlq(SUPPLIERS), lambda rs: True, timeout=5)
    assert not [r for r in dead if r.key == sid.encode()]


async def test_the_suppliers_topic_is_created_compacted_with_a_bounded_lag(stack: Stack) -> None:
    topic = f"test.suppliers.{secrets.token_hex(4)}"
    TOPIC_CONFIGS[topic] = TOPIC_CONFIGS[SUPPLIERS]
    try:
        assert await ensure_topics(stack.kafka_bootstrap, [topic], 1) == [topic]
        assert await ensure_topics(stack.kafka_bootstrap, [topic], 1) == []  # exists: no error
    finally:
        del TOPIC_CONFIGS[topic]
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        wanted = TOPIC_CONFIGS[SUPPLIERS]
        assert await topic_configs(admin, topic, list(wanted)) == wanted
        assert (
            wanted["cleanup.policy"] == "compact" and int(wanted["max.compaction.lag.ms"]) == 7 * 86_400_000
        )
    finally:
        await admin.close()


async def test_inbox_ids_older_than_the_retention_are_pruned(stack: Stack, db: asyncpg.Pool) -> None:
    consumer = f"test-{secrets.token_hex(4)}"
    await db.execute(
        "INSERT INTO needs.inbox (consumer, event_id, processed_at) VALUES "
        "($1, 'old', now() - interval '15 days'), ($1, 'recent', now() - interval '13 days'), "
        "($1, 'new', now())",
        consumer,
    )
    runtime = Runtime("needs", stack.settings(inbox_retention_days=14))
    await runtime.start()
    try:
        await runtime.prune_inbox()
    finally:
        await runtime.stop()
    left = await db.fetch("SELECT event_id FROM needs.inbox WHERE consumer = $1 ORDER BY 1", consumer)
    assert [r["event_id"] for r in left] == ["new", "recent"]
