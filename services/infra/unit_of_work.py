"""The unit of work: one transaction, and the domain events of the change made in it.

HTTP commands and event consumers run their use case inside one. It opens the transaction;
the use case reads and writes through its repository and `emit`s the events of the change;
when the use case returns, the events go to the outbox, each on its topic from `contracts`,
and the transaction commits, so state and events are stored together or not at all. An
exception rolls both back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

import asyncpg

from services.contracts.topics import topic_of
from services.infra import outbox
from services.infra.db import Connection
from services.infra.settings import Settings


@dataclass
class UnitOfWork:
    conn: Connection
    schema: str
    events: list[outbox.Event] = field(default_factory=list)
    # Keys whose earlier events compaction may drop: a tombstone follows the key's last event.
    erased: list[tuple[str, str]] = field(default_factory=list)  # (event type, key)

    def emit(self, *events: outbox.Event) -> None:
        self.events.extend(events)

    def emit_erasure(self, last: outbox.Event) -> None:
        """`last`, the aggregate's final event, then a tombstone for its key."""
        self.events.append(last)
        self.erased.append((last.type, last.subject))

    async def flush(self) -> None:
        """Append what was emitted to the outbox (done on leaving `unit_of_work`)."""
        by_topic: dict[str, list[outbox.Event]] = {}
        for event in self.events:
            by_topic.setdefault(topic_of(event.type), []).append(event)
        for topic, events in by_topic.items():
            await outbox.append_many(self.conn, self.schema, topic, events)
        last_of = {e.subject: e.id for e in self.events}
        for event_type, key in self.erased:
            await outbox.append_tombstone(self.conn, self.schema, topic_of(event_type), key, last_of[key])
        self.events, self.erased = [], []


@asynccontextmanager
async def unit_of_work(
    pool: asyncpg.Pool | Callable[[], asyncpg.Pool], schema: str
) -> AsyncIterator[UnitOfWork]:
    """A connection from `pool` (or from the pool a callable returns) in a transaction."""
    source = pool if isinstance(pool, asyncpg.Pool) else pool()
    async with source.acquire() as conn, conn.transaction():
        work = UnitOfWork(conn, schema)
        yield work
        await work.flush()


class UseCases:
    """What a service's use cases stand on: its pool (or what opens it), settings and schema."""

    def __init__(
        self, pool: asyncpg.Pool | Callable[[], asyncpg.Pool], settings: Settings, schema: str
    ) -> None:
        self._pool = pool
        self.settings = settings
        self.schema = schema

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool if isinstance(self._pool, asyncpg.Pool) else self._pool()

    def work(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A unit of work in the service's schema."""
        return unit_of_work(self.pool, self.schema)
