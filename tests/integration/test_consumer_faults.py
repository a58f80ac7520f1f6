"""Transient faults on the real broker and PostgreSQL: the consumer waits, nothing goes to a DLQ.

The database is taken away through a TCP proxy between the consumer and PostgreSQL: cutting
it drops every open connection and refuses new ones, as a stopped server does, without
disturbing the rest of the suite's database.
"""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg

from services.contracts.topics import SUPPLIERS
from services.infra.runtime import Runtime
from tests.conftest import Stack
from tests.factories import supplier_registered
from tests.kafka_helpers import eventually, produce
from tests.tcp_proxy import TcpProxy


def _runtime(stack: Stack, handler: Any, **settings: Any) -> Runtime:
    group = f"test-{secrets.token_hex(4)}"
    runtime = Runtime("matcher", stack.settings(**settings))
    runtime.consume(SUPPLIERS, handler, consumer=group, group_id=group)
    return runtime


def _count(counter: Any, *labels: str) -> float:
    value: float = counter.labels(*labels)._value.get()
    return value


async def _effects(db: asyncpg.Pool, table: str) -> list[str]:
    return [r["event_id"] for r in await db.fetch(f"SELECT event_id FROM matcher.{table} ORDER BY n")]


async def test_a_database_outage_keeps_the_events_and_they_are_applied_when_it_ends(
    stack: Stack, db: asyncpg.Pool
) -> None:
    table = f"test_outage_{secrets.token_hex(4)}"
    await db.execute(f"CREATE TABLE matcher.{table} (n bigserial, event_id text UNIQUE)")

    before = supplier_registered()
    during = [supplier_registered() for _ in range(5)]
    ours = {before.id, *(e.id for e in during)}  # the topic holds other tests' events too

    async def handler(conn: asyncpg.Connection, event: Any) -> None:
        if event.id in ours:
            await conn.execute(f"INSERT INTO matcher.{table} (event_id) VALUES ($1)", event.id)

    proxy = TcpProxy.for_url(stack.database_url)
    await proxy.restore()
    runtime = _runtime(
        stack, handler, database_url=proxy.url(stack.database_url), consumer_retry_backoff_max_s=0.5
    )
    await runtime.start()
    m = runtime.metrics
    try:
        await produce(
            stack.kafka_bootstrap, SUPPLIERS, [(before.subject.encode(), before.model_dump_json().encode())]
        )
        await eventually(lambda: _effects(db, table))
        assert (await runtime.readiness()).ready

        await proxy.cut()  # the database goes away
        await produce(
            stack.kafka_bootstrap,
            SUPPLIERS,
            [(e.subject.encode(), e.model_dump_json().encode()) for e in during],
        )

        async def waiting_on_the_database() -> bool:
            return _count(m.transient_failures, "matcher", SUPPLIERS, "database_unavailable") >= 4

        await eventually(waiting_on_the_database)
        state = await runtime.readiness()
        assert not state.ready
        assert state.checks["database"] is False
        assert state.checks["consumers"] is False
        assert "database unavailable" in state.reasons
        assert any(r.startswith("consumer waiting:") and "database unavailable" in r for r in state.reasons)

        await proxy.restore()  # and comes back

        async def all_applied() -> bool:
            return len(await _effects(db, table)) == 6

        await eventually(all_applied, timeout=30)
        await eventually(lambda: not runtime.stalls.waiting)
        assert (await runtime.readiness()).ready
    finally:
        await runtime.stop()
        await proxy.cut()

    assert sorted(await _effects(db, table)) == sorted([before.id, *(e.id for e in during)])
    assert _count(m.events_dlq, "matcher", SUPPLIERS, "handler_error") == 0


async def test_a_connection_terminated_mid_batch_more_often_than_the_dlq_budget_loses_nothing(
    stack: Stack, db: asyncpg.Pool
) -> None:
    table = f"test_terminated_{secrets.token_hex(4)}"
    await db.execute(f"CREATE TABLE matcher.{table} (n bigserial, event_id text UNIQUE)")
    target = supplier_registered()
    others = [supplier_registered() for _ in range(3)]
    ours = {target.id, *(e.id for e in others)}
    terminations = 0

    async def handler(conn: asyncpg.Connection, event: Any) -> None:
        nonlocal terminations
        if event.id not in ours:
            return
        await conn.execute(f"INSERT INTO matcher.{table} (event_id) VALUES ($1)", event.id)
        if event.id == target.id and terminations < 5:  # more than dlq_max_attempts (3)
            terminations += 1
            # What an operator's pg_terminate_backend or a failover does to the connection.
            await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    runtime = _runtime(stack, handler, consumer_retry_backoff_s=0.02, consumer_retry_backoff_max_s=0.1)
    await runtime.start()
    m = runtime.metrics
    try:
        await produce(
            stack.kafka_bootstrap,
            SUPPLIERS,
            [(e.subject.encode(), e.model_dump_json().encode()) for e in [target, *others]],
        )

        async def all_applied() -> bool:
            return len(await _effects(db, table)) == 4

        await eventually(all_applied, timeout=30)
    finally:
        await runtime.stop()
    assert terminations == 5
    assert _count(m.events_dlq, "matcher", SUPPLIERS, "handler_error") == 0
    assert _count(m.transient_failures, "matcher", SUPPLIERS, "database_unavailable") >= 5


async def test_with_the_database_healthy_a_failing_event_still_goes_to_the_dlq_and_the_rest_are_applied(
    stack: Stack, db: asyncpg.Pool
) -> None:
    table = f"test_poison_{secrets.token_hex(4)}"
    await db.execute(f"CREATE TABLE matcher.{table} (n bigserial, event_id text UNIQUE)")
    poisoned = supplier_registered()
    good = [supplier_registered() for _ in range(3)]
    ours = {poisoned.id, *(e.id for e in good)}

    async def handler(conn: asyncpg.Connection, event: Any) -> None:
        if event.id not in ours:
            return
        await conn.execute(f"INSERT INTO matcher.{table} (event_id) VALUES ($1)", event.id)
        if event.id == poisoned.id:
            raise ValueError("this event breaks a rule of the handler")

    runtime = _runtime(stack, handler)
    await runtime.start()
    m = runtime.metrics
    try:
        key = poisoned.subject.encode()  # one partition, so the good events come after it
        await produce(
            stack.kafka_bootstrap,
            SUPPLIERS,
            [(key, e.model_dump_json().encode()) for e in [poisoned, *good]],
        )

        async def good_applied() -> bool:
            return len(await _effects(db, table)) == 3

        await eventually(good_applied)
        await eventually(lambda: _count(m.events_dlq, "matcher", SUPPLIERS, "handler_error") == 1)
    finally:
        await runtime.stop()
    assert sorted(await _effects(db, table)) == sorted(e.id for e in good)
    assert _count(m.transient_failures, "matcher", SUPPLIERS, "database_unavailable") == 0
