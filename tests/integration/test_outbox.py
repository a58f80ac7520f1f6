"""The transactional outbox on a real PostgreSQL and a real broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from services.contracts.topics import SUPPLIERS
from services.infra import outbox
from services.infra.broker import make_producer
from services.infra.db import apply_migrations, migrations_for
from services.infra.metrics import Metrics
from services.infra.outbox import OutboxRelay
from tests.conftest import Stack
from tests.factories import supplier_registered, supplier_state
from tests.kafka_helpers import bodies, eventually, read_until
from tests.tcp_proxy import TcpProxy

# A schema of the tests' own, with the outbox and inbox tables every service schema has, so no
# running service's relay touches these rows.
SCHEMA = f"outbox_test_{secrets.token_hex(4)}"


@pytest.fixture(scope="module", autouse=True)
async def _outbox_schema(stack: Stack) -> AsyncIterator[None]:
    conn = await asyncpg.connect(stack.database_url)
    try:
        infra = [m for m in migrations_for("needs") if m.name.startswith("infra/")]
        await apply_migrations(conn, SCHEMA, infra)
        yield
        await conn.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
    finally:
        await conn.close()


async def _pending(db: asyncpg.Pool, ids: list[str]) -> int:
    n: int = await db.fetchval(f"SELECT count(*) FROM {SCHEMA}.outbox WHERE event_id = ANY($1::text[])", ids)
    return n


def _published_ids(records: list[Any]) -> Counter[str]:
    return Counter(b["id"] for b in bodies(records) if isinstance(b, dict) and "id" in b)


async def test_rows_committed_before_a_crash_are_published_once_the_relay_runs(
    stack: Stack, db: asyncpg.Pool
) -> None:
    events = [supplier_registered() for _ in range(20)]
    ids = [e.id for e in events]
    async with db.acquire() as conn, conn.transaction():
        for e in events:
            await outbox.append(conn, SCHEMA, SUPPLIERS, e)
    # No relay ran when the transaction committed, as if the service died right then.
    assert await _pending(db, ids) == 20

    metrics = Metrics("test")
    producer = make_producer(stack.settings(), "test")
    await producer.start()
    relay = OutboxRelay(pool=db, producer=producer, schema=SCHEMA, metrics=metrics, poll_interval_s=0.2)
    task = asyncio.create_task(relay.run())
    try:
        records = await read_until(
            stack.kafka_bootstrap, SUPPLIERS, lambda rs: set(ids) <= set(_published_ids(rs))
        )

        async def drained() -> bool:
            return await _pending(db, ids) == 0

        await eventually(drained)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await producer.stop()

    published = _published_ids(records)
    assert all(published[i] == 1 for i in ids), "each row is published exactly once"
    by_id = {b["id"]: r for r, b in zip(records, bodies(records), strict=False) if "id" in b}
    for e in events:
        assert by_id[e.id].key == e.subject.encode()
        assert dict(by_id[e.id].headers)["ce_type"] == b"supplier.registered"


async def test_a_failed_publish_keeps_the_rows_for_the_next_try(stack: Stack, db: asyncpg.Pool) -> None:
    event = supplier_registered()
    async with db.acquire() as conn, conn.transaction():
        await outbox.append(conn, SCHEMA, SUPPLIERS, event)

    metrics = Metrics("test")
    # A producer that never reaches a broker: the relay gives the batch up at its deadline.
    unconnected = make_producer(stack.settings(kafka_bootstrap="127.0.0.1:9"), "test")
    failing = OutboxRelay(pool=db, producer=unconnected, schema=SCHEMA, metrics=metrics, publish_timeout_s=1)
    with pytest.raises(TimeoutError):
        await failing.publish_pending()
    assert await _pending(db, [event.id]) == 1
    assert metrics.publish_failures.labels("test")._value.get() == 1

    producer = make_producer(stack.settings(), "test")
    await producer.start()
    try:
        relay = OutboxRelay(pool=db, producer=producer, schema=SCHEMA, metrics=metrics)
        while await relay.publish_pending():
            pass
    finally:
        await producer.stop()
    assert await _pending(db, [event.id]) == 0
    records = await read_until(stack.kafka_bootstrap, SUPPLIERS, lambda rs: event.id in _published_ids(rs))
    assert _published_ids(records)[event.id] == 1


async def test_events_of_one_aggregate_arrive_in_the_order_written(stack: Stack, db: asyncpg.Pool) -> None:
    states = [supplier_state() for _ in range(3)]
    versions = [
        supplier_registered(s.model_copy(update={"version": v})) for v in range(1, 31) for s in states
    ]
    async with db.acquire() as conn, conn.transaction():
        for e in versions:
            await outbox.append(conn, SCHEMA, SUPPLIERS, e)

    metrics = Metrics("test")
    producer = make_producer(stack.settings(), "test")
    await producer.start()
    try:
        relay = OutboxRelay(pool=db, producer=producer, schema=SCHEMA, metrics=metrics, batch_size=25)
        while await relay.publish_pending():
            pass
        await relay.update_backlog()
    finally:
        await producer.stop()

    wanted = {e.id for e in versions}
    records = await read_until(stack.kafka_bootstrap, SUPPLIERS, lambda rs: wanted <= set(_published_ids(rs)))
    for s in states:
        seen = [json.loads(r.value)["data"]["version"] for r in records if r.key == s.id.encode()]
        assert seen == list(range(1, 31))
    assert metrics.events_published.labels("test", SUPPLIERS, "supplier.registered")._value.get() == 90
    assert metrics.outbox_backlog.labels("test")._value.get() == 0


class _Slow:
    """A producer that waits before each send."""

    def __init__(self, producer: Any, delay_s: float) -> None:
        self.producer = producer
        self.delay_s = delay_s

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(self.delay_s)
        return await self.producer.send(*args, **kwargs)


async def test_two_relays_at_once_keep_each_aggregates_order_on_the_topic(
    stack: Stack, db: asyncpg.Pool
) -> None:
    states = [supplier_state() for _ in range(12)]
    versions = 40
    wanted: set[str] = set()

    async def write() -> None:
        # Versions are written as services write them: one aggregate's next version after the
        # previous one committed, many aggregates interleaved, while both relays run.
        for v in range(1, versions + 1):
            async with db.acquire() as conn, conn.transaction():
                for s in states:
                    e = supplier_registered(s.model_copy(update={"version": v}))
                    wanted.add(e.id)
                    await outbox.append(conn, SCHEMA, SUPPLIERS, e)
            await asyncio.sleep(0.005)

    metrics = Metrics("test")
    producers = [make_producer(stack.settings(), f"test-{i}") for i in range(2)]
    for p in producers:
        await p.start()
    # One relay is slow to hand its batch over (a GC pause, a slow network): the other must
    # not publish an aggregate's later versions meanwhile.
    relays = [
        OutboxRelay(pool=db, producer=p, schema=SCHEMA, metrics=metrics, batch_size=7, poll_interval_s=0.05)
        for p in (_Slow(producers[0], 0.03), producers[1])
    ]
    tasks = [asyncio.create_task(r.run()) for r in relays]
    try:
        await write()

        async def drained() -> bool:
            return await _pending(db, list(wanted)) == 0

        await eventually(drained, timeout=60)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for p in producers:
            await p.stop()

    records = await read_until(stack.kafka_bootstrap, SUPPLIERS, lambda rs: wanted <= set(_published_ids(rs)))
    for s in states:
        seen = [json.loads(r.value)["data"]["version"] for r in records if r.key == s.id.encode()]
        assert seen == list(range(1, versions + 1)), f"supplier {s.id} out of order"
    assert _published_ids(records).keys() >= wanted
    assert all(n == 1 for i, n in _published_ids(records).items() if i in wanted)


async def test_after_a_database_outage_the_relay_is_woken_by_notify_again(stack: Stack) -> None:
    proxy = TcpProxy.for_url(stack.database_url)
    await proxy.restore()
    pool = await asyncpg.create_pool(proxy.url(stack.database_url), min_size=1, max_size=4)
    assert pool is not None
    metrics = Metrics("test")
    producer = make_producer(stack.settings(), "test")
    await producer.start()
    # Polled only every 3 s: an event published sooner was announced by NOTIFY.
    relay = OutboxRelay(pool=pool, producer=producer, schema=SCHEMA, metrics=metrics, poll_interval_s=3)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.5)
        await proxy.cut()  # the database goes away, and the LISTEN connection with it
        await asyncio.sleep(0.5)
        await proxy.restore()
        await asyncio.sleep(4)  # the relay's next try after the failure listens again
        events = [supplier_registered() for _ in range(3)]
        conn = await asyncpg.connect(stack.database_url)
        try:
            for event in events:  # each one alone: a poll could catch one in time, not all three
                async with conn.transaction():
                    await outbox.append(conn, SCHEMA, SUPPLIERS, event)
                written = time.monotonic()
                while await conn.fetchval(
                    f"SELECT count(*) FROM {SCHEMA}.outbox WHERE event_id = $1", event.id
                ):
                    await asyncio.sleep(0.02)
                assert time.monotonic() - written < 1, "published on NOTIFY, not on the 3 s poll"
        finally:
            await conn.close()
        ids = {e.id for e in events}
        await read_until(stack.kafka_bootstrap, SUPPLIERS, lambda rs: ids <= set(_published_ids(rs)))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await producer.stop()
        await pool.close()
        await proxy.cut()
