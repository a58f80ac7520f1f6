"""The transactional outbox.

A service writes its state change and the event in one database transaction (`append`); the
relay publishes what the outbox holds, waits for the broker's confirmation, and only then
deletes the rows. A crash anywhere in between publishes a row again rather than losing it;
consumers deduplicate by event id (the inbox).

The relay publishes with an aiokafka producer of its own rather than through FastStream: a
batch of rows is handed to the producer at once and confirmed together, which costs a tenth
of the CPU of a FastStream publish (with its middlewares) per event.

Tombstones: `append_tombstone` adds a record with a null value for a key (after the event
that erased the aggregate), so that a compacted topic drops every earlier record of the key.
It carries no CloudEvents headers, and consumers skip it.

Order: each aggregate's events reach its topic in the order they were written, whatever the
number of relays (one per replica of the service). A batch is published under a
transaction-level advisory lock of the schema's outbox, taken with `pg_try_advisory_xact_lock`:
only one relay publishes at a time, always the oldest rows, and its lock ends with the
transaction that deletes them, so the next batch, by whichever relay, starts after them.
A relay that finds the lock taken leaves the work to the one holding it. (Claiming rows with
`SKIP LOCKED` alone let relay B publish an aggregate's later event while relay A still held
the earlier one.) Two relays no longer publish at once, which costs no throughput where the
relays share the same cores and broker partitions, as the measured stacks do.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Protocol

import asyncpg
from aiokafka import AIOKafkaProducer
from asyncpg.pool import PoolConnectionProxy

from services.infra.db import Connection
from services.infra.logs import get_logger
from services.infra.metrics import Metrics

log = get_logger(__name__)

CONTENT_TYPE = "application/cloudevents+json"

# First key of the relays' advisory locks (the second is the schema's hash); the two-key
# space is apart from the migrations' one-key lock.
_RELAY_LOCK_CLASS = 0x1A7E


class Event(Protocol):
    """What the outbox needs of an event (every contracts event model has these)."""

    @property
    def id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def subject(self) -> str: ...

    def model_dump_json(self) -> str: ...


def channel(schema: str) -> str:
    return f"{schema}_outbox"


async def append(conn: Connection, schema: str, topic: str, event: Event) -> None:
    """Add `event` to the outbox; call inside the transaction that changes the state."""
    await conn.execute(
        f'INSERT INTO "{schema}".outbox (event_id, topic, event_type, key, payload) '
        "VALUES ($1, $2, $3, $4, $5)",
        event.id,
        topic,
        event.type,
        event.subject,
        event.model_dump_json().encode(),
    )
    # Delivered at commit, and not at all on rollback.
    await conn.execute("SELECT pg_notify($1, '')", channel(schema))


TOMBSTONE = "tombstone"  # the event_type of a tombstone row (metrics label)


async def append_tombstone(conn: Connection, schema: str, topic: str, key: str, after_event_id: str) -> None:
    """Add a Kafka tombstone for `key`; call in the transaction that erases the aggregate,
    after appending its last event."""
    await conn.execute(
        f'INSERT INTO "{schema}".outbox (event_id, topic, event_type, key, payload) '
        "VALUES ($1, $2, $3, $4, NULL)",
        f"{after_event_id}.tombstone",
        topic,
        TOMBSTONE,
        key,
    )
    await conn.execute("SELECT pg_notify($1, '')", channel(schema))


class OutboxRelay:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        schema: str,
        metrics: Metrics,
        batch_size: int = 500,
        poll_interval_s: float = 1.0,
        publish_timeout_s: float = 30.0,
    ) -> None:
        self.pool = pool
        self.producer = producer
        self.schema = schema
        self.metrics = metrics
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        # A batch the broker has not confirmed in this time is given up and tried again.
        self.publish_timeout_s = publish_timeout_s
        self._wake = asyncio.Event()
        self._listener_lost = False

    async def publish_pending(self) -> int:
        """Publish one batch of outbox rows and delete them once confirmed; return the count."""
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock($1, hashtext($2))", _RELAY_LOCK_CLASS, self.schema
            ):
                return 0  # another relay is publishing; it is woken by the same NOTIFY
            rows = await conn.fetch(
                f'SELECT id, event_id, topic, event_type, key, payload FROM "{self.schema}".outbox '
                "ORDER BY id LIMIT $1 FOR UPDATE",
                self.batch_size,
            )
            if not rows:
                return 0
            try:
                async with asyncio.timeout(self.publish_timeout_s):
                    await self._publish(rows)
            except Exception:
                self.metrics.publish_failures.labels(self.metrics.service).inc()
                raise
            await conn.execute(
                f'DELETE FROM "{self.schema}".outbox WHERE id = ANY($1::bigint[])',
                [row["id"] for row in rows],
            )
        for row in rows:
            self.metrics.events_published.labels(self.metrics.service, row["topic"], row["event_type"]).inc()
        return len(rows)

    async def _publish(self, rows: Sequence[asyncpg.Record]) -> None:
        """Hand every row to the producer (it batches them per partition), then wait for all
        the confirmations."""
        pending = [
            await self.producer.send(
                row["topic"],
                None if row["payload"] is None else bytes(row["payload"]),
                key=row["key"].encode(),
                headers=_headers(row),
            )
            for row in rows
        ]
        await asyncio.gather(*pending)

    async def update_backlog(self) -> None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age "
                f'FROM "{self.schema}".outbox'
            )
        assert row is not None
        self.metrics.outbox_backlog.labels(self.metrics.service).set(row["n"])
        self.metrics.outbox_oldest_age.labels(self.metrics.service).set(float(row["age"]))

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    def _on_lost(self, *_: object) -> None:
        self._listener_lost = True
        self._wake.set()

    async def run(self) -> None:
        """Publish until cancelled: woken by NOTIFY, and by a timer as a safety net. A LISTEN
        connection lost with the database is opened again once the database is back."""
        listener: PoolConnectionProxy | None = None
        next_backlog = 0.0
        try:
            while True:
                self._wake.clear()
                try:
                    if listener is None or self._listener_lost:
                        listener = await self._listen(listener)
                    while await self.publish_pending() == self.batch_size:
                        pass
                    # Counting the outbox scans it: once a poll interval, not after every batch.
                    if (now := time.monotonic()) >= next_backlog:
                        next_backlog = now + self.poll_interval_s
                        await self.update_backlog()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the broker or database is away: keep the rows, retry
                    log.warning("outbox_publish_failed", error=str(exc), schema=self.schema)
                    await asyncio.sleep(self.poll_interval_s)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
        finally:
            if listener is not None:
                await self._unlisten(listener)

    async def _listen(self, old: PoolConnectionProxy | None) -> PoolConnectionProxy:
        if old is not None:
            await self._unlisten(old)
        listener: PoolConnectionProxy = await self.pool.acquire()
        try:
            await listener.add_listener(channel(self.schema), self._on_notify)
            # A lost connection hears no NOTIFY: wake the loop to open another at once.
            listener.add_termination_listener(self._on_lost)
            self._listener_lost = False
        except BaseException:
            await self.pool.release(listener)
            raise
        return listener

    async def _unlisten(self, listener: PoolConnectionProxy) -> None:
        with contextlib.suppress(Exception):
            listener.remove_termination_listener(self._on_lost)
            await listener.remove_listener(channel(self.schema), self._on_notify)
        with contextlib.suppress(Exception):
            await self.pool.release(listener)


def _headers(row: asyncpg.Record) -> list[tuple[str, bytes]]:
    if row["payload"] is None:
        return []  # a tombstone is no event
    return [
        ("content-type", CONTENT_TYPE.encode()),
        ("ce_id", row["event_id"].encode()),
        ("ce_type", row["event_type"].encode()),
    ]


async def append_many(conn: Connection, schema: str, topic: str, events: Sequence[Event]) -> None:
    """`append` for many events in one statement and one wake-up of the relay."""
    if not events:
        return
    await conn.executemany(
        f'INSERT INTO "{schema}".outbox (event_id, topic, event_type, key, payload) '
        "VALUES ($1, $2, $3, $4, $5)",
        [(e.id, topic, e.type, e.subject, e.model_dump_json().encode()) for e in events],
    )
    await conn.execute("SELECT pg_notify($1, '')", channel(schema))
