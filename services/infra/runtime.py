"""What one service process runs besides HTTP: the database pool, the broker with its
consumers, the outbox relay, the consumer-lag watcher and the inbox pruner. One `Runtime` per
process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.abc import ConsumerRebalanceListener

from services.infra.broker import make_broker, make_producer, subscriber_options
from services.infra.consumer import BatchHandler, EventConsumer, EventHandler
from services.infra.db import create_pool
from services.infra.faults import Stalls
from services.infra.inbox import PRUNE_BATCH, prune
from services.infra.logs import get_logger
from services.infra.metrics import Metrics
from services.infra.outbox import OutboxRelay
from services.infra.settings import ServiceName, Settings

log = get_logger(__name__)


@dataclass(frozen=True)
class Readiness:
    ready: bool
    checks: dict[str, bool]
    # Why not, in words ("database unavailable", "consumer waiting: <group> <topic>: ..."),
    # empty when ready.
    reasons: list[str]


class Runtime:
    def __init__(self, name: ServiceName, settings: Settings) -> None:
        self.name = name
        self.schema = name
        self.settings = settings
        self.metrics = Metrics(name)
        self.broker, self.dead_letters = make_broker(settings, name, self.metrics)
        # Consumers waiting out a transient fault; the process is not ready meanwhile.
        self.stalls = Stalls()
        self._producer: AIOKafkaProducer | None = None  # the outbox relay's; made in start()
        self._pool: asyncpg.Pool | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # Run after the pool opens and before any consumer starts (e.g. loading a replica).
        self.before_consuming: list[Callable[[], Awaitable[None]]] = []
        # Long-running tasks of the service (e.g. a delivery worker), started after the
        # consumers and cancelled on stop like the outbox relay.
        self.background: list[Callable[[], Coroutine[Any, Any, None]]] = []

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError(f"{self.name}: the database pool is not open yet")
        return self._pool

    def consume(
        self,
        topic: str,
        handler: EventHandler | None = None,
        *,
        batch_handler: BatchHandler | None = None,
        consumer: str | None = None,
        group_id: str | None = None,
        listener: ConsumerRebalanceListener | None = None,
        restore: BatchHandler | None = None,
    ) -> None:
        """Apply `handler` to each event on `topic` (or `batch_handler` to each polled batch's
        new events), once per event id, at least once; `listener` hears of the group's
        rebalances; `restore` is given each event sent to the DLQ (see `EventConsumer`)."""
        apply = EventConsumer(
            pool=lambda: self.pool,
            schema=self.schema,
            consumer=consumer or self.name,
            topic=topic,
            handler=handler,
            batch_handler=batch_handler,
            metrics=self.metrics,
            dead_letters=self.dead_letters,
            stalls=self.stalls,
            backoff_s=self.settings.consumer_retry_backoff_s,
            backoff_max_s=self.settings.consumer_retry_backoff_max_s,
            restore=restore,
        )

        async def handle(records: Any) -> None:
            await apply(records)

        options = subscriber_options(
            self.settings, group_id or f"{self.settings.kafka_group_prefix}-{self.name}"
        )
        if listener is not None:
            options["listener"] = listener
        self.broker.subscriber(topic, **options)(handle)

    async def start(self) -> None:
        self._pool = await create_pool(self.settings)
        for hook in self.before_consuming:
            await hook()
        try:
            await asyncio.wait_for(self.broker.start(), self.settings.kafka_start_timeout_s)
        except TimeoutError:
            log.error("consumers_not_started", within_s=self.settings.kafka_start_timeout_s)
            raise
        self._producer = make_producer(self.settings, self.name)
        await asyncio.wait_for(self._producer.start(), self.settings.kafka_start_timeout_s)
        relay = OutboxRelay(
            pool=self.pool,
            producer=self._producer,
            schema=self.schema,
            metrics=self.metrics,
            batch_size=self.settings.outbox_batch_size,
            poll_interval_s=self.settings.outbox_poll_interval_s,
        )
        self._tasks = [
            asyncio.create_task(relay.run()),
            asyncio.create_task(self._watch_lag()),
            asyncio.create_task(self._prune_inbox()),
        ]
        self._tasks += [asyncio.create_task(task()) for task in self.background]
        log.info("runtime_started", consumers=len(self.broker.subscribers))

    async def stop(self) -> None:
        """Stop within a bounded time whatever the broker or database do: each step gets a
        deadline, and a step that misses it is abandoned (logged) rather than awaited, since a
        Kafka producer whose request is in flight may not even honour cancellation."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await within("background_tasks", asyncio.gather(*self._tasks, return_exceptions=True), 5)
        # A consumer that cannot leave its group in time is dropped by the broker after its
        # session timeout, and what it had not committed is consumed again.
        await within("broker", self.broker.stop(), self.settings.kafka_shutdown_grace_s + 3)
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await within("outbox_producer", producer.stop(), self.settings.kafka_shutdown_grace_s)
        if self._pool is not None:
            pool, self._pool = self._pool, None
            if not await within("database_pool", pool.close(), 5):
                pool.terminate()

    async def readiness(self) -> Readiness:
        checks = {"database": False, "broker": False, "consumers": False}
        reasons: list[str] = []
        if self._pool is not None:
            with contextlib.suppress(Exception):
                async with self._pool.acquire(timeout=2) as conn:
                    checks["database"] = await conn.fetchval("SELECT true", timeout=2) is True
        if not checks["database"]:
            reasons.append("database unavailable")
        with contextlib.suppress(Exception):
            checks["broker"] = await self.broker.ping(timeout=2)
        if not checks["broker"]:
            reasons.append("broker unavailable")
        waiting = self.stalls.outages()
        checks["consumers"] = not waiting
        reasons += [f"consumer waiting: {w}" for w in waiting]
        ready = all(checks.values())
        self.metrics.ready.labels(self.name).set(1 if ready else 0)
        return Readiness(ready, checks, reasons)

    async def prune_inbox(self) -> int:
        """Delete the inbox ids older than the retention; return how many."""
        older_than_s = self.settings.inbox_retention_days * 86400
        total = 0
        while True:
            async with self.pool.acquire() as conn:
                deleted = await prune(conn, self.schema, older_than_s)
            total += deleted
            if deleted < PRUNE_BATCH:
                return total

    async def _prune_inbox(self) -> None:
        """Prune at start and then every INNOMATCH_INBOX_PRUNE_INTERVAL_S; replicas may run it
        at the same time, since each delete only takes what is there."""
        while True:
            try:
                if deleted := await self.prune_inbox():
                    log.info("inbox_pruned", deleted=deleted)
            except Exception as exc:  # the database is away: try at the next interval
                log.warning("inbox_prune_failed", error=str(exc))
            await asyncio.sleep(self.settings.inbox_prune_interval_s)

    async def _watch_lag(self) -> None:
        """The lag of each partition this process consumes. A partition that a rebalance gave
        to another replica loses its series here (the other replica reports it), so a revoked
        partition does not show its last lag for ever."""
        reported: dict[str, set[tuple[str, str]]] = {}  # group -> (topic, partition)
        while True:
            await asyncio.sleep(self.settings.lag_poll_interval_s)
            for sub in self.broker.subscribers:
                consumer: Any = getattr(sub, "consumer", None)
                if consumer is None:
                    continue
                group = str(getattr(sub, "group_id", ""))
                try:
                    partitions = list(consumer.assignment())
                    ends = await consumer.end_offsets(partitions) if partitions else {}
                    current = set()
                    for tp in partitions:
                        committed = await consumer.committed(tp) or 0
                        self.metrics.consumer_lag.labels(self.name, group, tp.topic, str(tp.partition)).set(
                            max(ends[tp] - committed, 0)
                        )
                        current.add((tp.topic, str(tp.partition)))
                except Exception as exc:  # lag is best effort; never take the service down
                    log.debug("lag_probe_failed", error=str(exc))
                    continue
                for topic, partition in reported.get(group, set()) - current:
                    with contextlib.suppress(KeyError):
                        self.metrics.consumer_lag.remove(self.name, group, topic, partition)
                reported[group] = current


async def within(step: str, work: Awaitable[Any], seconds: float) -> bool:
    """Await `work` for at most `seconds`; past that, cancel it without waiting for it to end
    and return False. Errors are logged, never raised: stopping goes on regardless."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        log.warning("stop_step_timed_out", step=step, after_s=seconds)
        return False
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("stop_step_failed", step=step, error=str(exc))
    return True
