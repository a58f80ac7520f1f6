"""At-least-once consumption on the real broker: the idempotent inbox and the dead-letter topic."""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg

from services.contracts.topics import SUPPLIERS, dlq
from services.infra.runtime import Runtime
from tests.conftest import Stack
from tests.factories import supplier_registered
from tests.kafka_helpers import eventually, produce, read_until


def _runtime(stack: Stack, handler: Any) -> tuple[Runtime, str]:
    group = f"test-{secrets.token_hex(4)}"
    runtime = Runtime("matcher", stack.settings())
    runtime.consume(SUPPLIERS, handler, consumer=group, group_id=group)
    return runtime, group


async def test_a_redelivered_event_changes_nothing(stack: Stack, db: asyncpg.Pool) -> None:
    applied: list[str] = []

    async def handler(conn: asyncpg.Connection, event: Any) -> None:
        applied.append(event.id)

    runtime, group = _runtime(stack, handler)
    await runtime.start()
    try:
        event = supplier_registered()
        body = event.model_dump_json().encode()
        await produce(stack.kafka_bootstrap, SUPPLIERS, [(event.subject.encode(), body)] * 3)
        consumed = runtime.metrics.events_consumed
        await eventually(
            lambda: consumed.labels("matcher", SUPPLIERS, event.type, "duplicate")._value.get() >= 2
        )
    finally:
        await runtime.stop()
    assert applied.count(event.id) == 1
    rows = await db.fetchval(
        "SELECT count(*) FROM matcher.inbox WHERE consumer = $1 AND event_id = $2", group, event.id
    )
    assert rows == 1


async def test_bad_messages_go_to_the_dlq_and_the_consumer_goes_on(stack: Stack, db: asyncpg.Pool) -> None:
    applied: list[str] = []
    poisoned = supplier_registered()
    good = supplier_registered()
    await db.execute("CREATE TABLE IF NOT EXISTS matcher.test_effects (event_id text)")

    async def handler(conn: asyncpg.Connection, event: Any) -> None:
        # Runs in the consumer's transaction: a failed batch leaves no effect behind.
        await conn.execute("INSERT INTO matcher.test_effects VALUES ($1)", event.id)
        if event.id == poisoned.id:
            raise RuntimeError("the handler cannot apply this event")
        applied.append(event.id)

    runtime, _ = _runtime(stack, handler)
    await runtime.start()
    key = good.subject.encode()  # one key: one partition, so the order below is the order consumed
    unparseable = b'{"this is": "not an event"'
    try:
        await produce(
            stack.kafka_bootstrap,
            SUPPLIERS,
            [
                (key, unparseable),
                (key, poisoned.model_dump_json().encode()),
                (key, good.model_dump_json().encode()),
            ],
        )
        await eventually(lambda: good.id in applied)
    finally:
        await runtime.stop()

    def ours(records: list[Any]) -> list[Any]:
        return [r for r in records if r.value in (unparseable, poisoned.model_dump_json().encode())]

    records = ours(await read_until(stack.kafka_bootstrap, dlq(SUPPLIERS), lambda rs: len(ours(rs)) >= 2))
    by_body = {r.value: {k: v.decode() for k, v in r.headers} for r in records}
    bad = by_body[unparseable]
    assert bad["innomatch-reason"] == "unparseable"
    assert "not a valid innomatch.suppliers.v1 event" in bad["innomatch-error"]
    assert bad["innomatch-source-topic"] == SUPPLIERS
    assert bad["innomatch-attempts"] == "1"
    failed = by_body[poisoned.model_dump_json().encode()]
    assert failed["innomatch-reason"] == "handler_error"
    assert failed["innomatch-error"] == "the handler cannot apply this event"
    assert failed["innomatch-attempts"] == str(runtime.settings.dlq_max_attempts)
    effects = await db.fetch(
        "SELECT event_id FROM matcher.test_effects WHERE event_id = ANY($1::text[])", [good.id, poisoned.id]
    )
    assert [r["event_id"] for r in effects] == [good.id], "the good event's effect exactly once"
    dlq_count = runtime.metrics.events_dlq
    assert dlq_count.labels("matcher", SUPPLIERS, "unparseable")._value.get() == 1
    assert dlq_count.labels("matcher", SUPPLIERS, "handler_error")._value.get() == 1


async def test_memory_a_failed_event_changed_is_restored_from_the_database(
    stack: Stack, db: asyncpg.Pool
) -> None:
    poisoned = supplier_registered()
    good = supplier_registered()
    table = f"test_memory_{secrets.token_hex(4)}"
    await db.execute(f"CREATE TABLE matcher.{table} (event_id text PRIMARY KEY)")
    memory: set[str] = set()  # what a handler keeps in memory besides its transaction
    restored: list[str] = []

    async def handler(conn: asyncpg.Connection, events: list[Any]) -> None:
        for event in events:
            memory.add(event.id)  # ahead of the commit, as a matcher's index is
            await conn.execute(f"INSERT INTO matcher.{table} VALUES ($1)", event.id)
            if event.id == poisoned.id:
                raise RuntimeError("the handler cannot apply this event")

    async def restore(conn: asyncpg.Connection, events: list[Any]) -> None:
        restored.extend(e.id for e in events)
        stored = {r["event_id"] for r in await conn.fetch(f"SELECT event_id FROM matcher.{table}")}
        for event in events:
            if event.id not in stored:
                memory.discard(event.id)

    group = f"test-{secrets.token_hex(4)}"
    runtime = Runtime("matcher", stack.settings(dlq_retry_backoff_s=0))
    runtime.consume(SUPPLIERS, batch_handler=handler, consumer=group, group_id=group, restore=restore)
    await runtime.start()
    key = good.subject.encode()
    try:
        await produce(
            stack.kafka_bootstrap,
            SUPPLIERS,
            [(key, poisoned.model_dump_json().encode()), (key, good.model_dump_json().encode())],
        )
        await eventually(lambda: restored and good.id in memory)
    finally:
        await runtime.stop()

    assert restored == [poisoned.id], "restore hears of the dead-lettered event alone"
    assert poisoned.id not in memory and good.id in memory, "memory holds what was committed"
