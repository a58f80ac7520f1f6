"""Consuming events: per-message log context, the dead-letter topic, and the idempotent
batch handler every service uses.

Flow of one poll: FastStream hands `EventConsumer` a batch of records. A record with a null
value is a tombstone of a compacted topic, not an event, and is skipped. Each other record is
parsed into a contracts event; one that cannot be parsed goes to `<topic>.dlq` at once. The
rest are applied in one transaction, with their ids recorded in the inbox, so a redelivered
event changes nothing. Offsets are committed only after all of this.

Erasure: a `supplier.removed` event marks `supplier:<id>` erased in the consuming service's
schema in the same transaction, before the handler runs (`services/infra/erasure.py`), so
every service that consumes the suppliers topic refuses the supplier's token and can refuse
its data from then on.

Two kinds of failure are told apart (`services/infra/faults.py`):
- A transient fault (the database or broker away, a timeout, a serialization failure or a
  deadlock) says nothing about the events. The consumer stops where it is and tries the same
  batch again with exponential backoff, for as long as the fault lasts, and never sends an
  event to the DLQ for it. While it waits on an outage, the process is not ready (`Stalls`).
- Any other error is permanent for some event of the batch: the events are then applied one
  by one, each retried a bounded number of times, and an event that still fails, with the
  database answering, goes to the DLQ with the error in its headers; the consumer goes on
  with the next.

If even the DLQ cannot be written for a permanent reason, the batch is negatively
acknowledged and read again: nothing is committed that was neither applied nor dead-lettered.

A handler that keeps state in memory may have changed it in a transaction that then failed.
A retried transaction applies the same events again; for an event that goes to the DLQ, the
consumer calls `restore` with it, so memory takes back what the database holds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
import structlog
from aiokafka import ConsumerRecord
from faststream import BaseMiddleware
from faststream.exceptions import HandlerException, NackMessage
from pydantic import ValidationError

from services.contracts.events import CloudEvent, parse_event
from services.contracts.topics import dlq
from services.infra import erasure
from services.infra.db import Connection
from services.infra.faults import DATABASE_UNAVAILABLE, Stalls, transient_reason
from services.infra.inbox import first_deliveries
from services.infra.logs import get_logger
from services.infra.metrics import Metrics
from services.infra.unit_of_work import unit_of_work

if TYPE_CHECKING:
    from types import TracebackType

    from faststream._internal.context.repository import ContextRepo
    from faststream.kafka import KafkaBroker
    from faststream.message import StreamMessage

log = get_logger(__name__)

Record: TypeAlias = "ConsumerRecord[Any, Any]"


class PoisonMessage(Exception):
    """A message that no retry can fix (it cannot be parsed): straight to the DLQ."""


def records_of(msg: Any) -> tuple[Record, ...]:
    """The Kafka records behind a FastStream message (one, or a batch)."""
    raw = getattr(msg, "raw_message", msg)
    if isinstance(raw, ConsumerRecord):
        return (raw,)
    if isinstance(raw, tuple) and all(isinstance(r, ConsumerRecord) for r in raw):
        return raw
    return ()


async def raw_records(msg: StreamMessage[Any]) -> tuple[Record, ...]:
    """FastStream decoder: hand handlers the records, parsing is theirs (bad bodies reach the DLQ)."""
    return records_of(msg)


def _header(record: Record, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode(errors="replace")
    return None


class _MessageContext(BaseMiddleware):
    async def on_receive(self) -> None:
        records = records_of(self.msg)
        if records:
            structlog.contextvars.bind_contextvars(
                topic=records[0].topic,
                partition=records[0].partition,
                offset=records[0].offset if len(records) == 1 else f"{records[0].offset}..",
            )

    async def after_processed(
        self,
        exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        exc_tb: TracebackType | None = None,
    ) -> bool | None:
        structlog.contextvars.unbind_contextvars("topic", "partition", "offset")
        return False


def bind_message_context(msg: Any, /, *, context: ContextRepo) -> BaseMiddleware:
    """Bind topic, partition and offset to every log line written while a message is handled."""
    return _MessageContext(msg, context=context)


class DeadLetters:
    """Sends messages that cannot be processed to `<topic>.dlq`, with the error in headers."""

    def __init__(self, service: str, metrics: Metrics, max_attempts: int, backoff_s: float) -> None:
        self.service = service
        self.metrics = metrics
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.broker: KafkaBroker | None = None

    def middleware(self, msg: Any, /, *, context: ContextRepo) -> BaseMiddleware:
        return _DeadLetterSafetyNet(msg, context=context, dead_letters=self)

    async def send(self, record: Record, error: BaseException, attempts: int) -> None:
        assert self.broker is not None, "DeadLetters.broker is set by make_broker"
        reason = "unparseable" if isinstance(error, PoisonMessage) else "handler_error"
        headers = {k: bytes(v).decode(errors="replace") for k, v in record.headers or ()}
        headers.update(
            {
                "innomatch-error": str(error)[:2000] or type(error).__name__,
                "innomatch-error-type": type(error).__name__,
                "innomatch-reason": reason,
                "innomatch-attempts": str(attempts),
                "innomatch-consumer": self.service,
                "innomatch-source-topic": record.topic,
                "innomatch-source-partition": str(record.partition),
                "innomatch-source-offset": str(record.offset),
            }
        )
        await self.broker.publish(record.value or b"", dlq(record.topic), key=record.key, headers=headers)
        self.metrics.events_dlq.labels(self.service, record.topic, reason).inc()
        self.metrics.events_consumed.labels(
            self.service, record.topic, _header(record, "ce_type") or "", "dlq"
        ).inc()
        log.error(
            "event_dead_lettered",
            reason=reason,
            error=str(error),
            attempts=attempts,
            offset=record.offset,
            event_id=_header(record, "ce_id"),
        )


class _DeadLetterSafetyNet(BaseMiddleware):
    """Catches what escapes the handler (or fails before it, such as decoding).

    FastStream's at-least-once policy commits even after an error, so an error must end here:
    the records go to the DLQ, or, if the DLQ cannot be written, the batch is nacked and read
    again.
    """

    def __init__(self, msg: Any, /, *, context: ContextRepo, dead_letters: DeadLetters) -> None:
        super().__init__(msg, context=context)
        self.dead_letters = dead_letters

    async def after_processed(
        self,
        exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        exc_tb: TracebackType | None = None,
    ) -> bool | None:
        if not isinstance(exc_val, Exception) or isinstance(exc_val, HandlerException):
            return False
        records = records_of(self.msg)
        if not records:
            return False
        try:
            for record in records:
                await self.dead_letters.send(record, exc_val, 1)
        except Exception as send_error:
            log.error("dead_letter_failed", error=str(send_error), cause=str(exc_val))
            raise NackMessage() from send_error
        return True


EventHandler = Callable[[Connection, Any], Awaitable[None]]
# Takes the batch's new events at once (in order), for handlers that gain from bulk work.
BatchHandler = Callable[[Connection, list[Any]], Awaitable[None]]


class EventConsumer:
    """Applies `handler` to each event of a batch, once per event id, in one transaction."""

    def __init__(
        self,
        *,
        pool: Callable[[], asyncpg.Pool],
        schema: str,
        consumer: str,
        topic: str,
        handler: EventHandler | None = None,
        batch_handler: BatchHandler | None = None,
        metrics: Metrics,
        dead_letters: DeadLetters,
        stalls: Stalls | None = None,
        backoff_s: float = 0.2,
        backoff_max_s: float = 5.0,
        restore: BatchHandler | None = None,
    ) -> None:
        if (handler is None) == (batch_handler is None):
            raise ValueError("give either handler or batch_handler")
        self.pool = pool
        self.schema = schema
        self.consumer = consumer
        self.topic = topic
        self.handler = handler
        self.batch_handler = batch_handler
        self.restore = restore
        self.metrics = metrics
        self.dead_letters = dead_letters
        self.stalls = stalls if stalls is not None else Stalls()
        # Waiting out a transient fault: the first pause, doubled up to the longest one.
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self._name = f"{consumer} {topic}"

    def parse(self, body: bytes) -> CloudEvent[Any]:
        try:
            return parse_event(self.topic, body)
        except (ValidationError, ValueError) as exc:
            raise PoisonMessage(f"not a valid {self.topic} event: {exc}") from exc

    async def __call__(self, records: Sequence[Record]) -> None:
        parsed: list[tuple[Record, CloudEvent[Any]]] = []
        for record in records:
            if record.value is None:  # a tombstone: the key's earlier records are to go
                m = self.metrics
                m.events_consumed.labels(m.service, self.topic, "tombstone", "skipped").inc()
                continue
            try:
                parsed.append((record, self.parse(record.value or b"")))
            except PoisonMessage as exc:
                await self._dead_letter(record, exc, 1)
        if not parsed:
            return
        error = await self._until_done(lambda: self._apply([event for _, event in parsed]))
        if error is None:
            return
        log.warning("batch_failed_applying_one_by_one", error=str(error), size=len(parsed))
        for record, event in parsed:
            await self._apply_alone(record, event)

    async def _until_done(self, work: Callable[[], Awaitable[None]]) -> Exception | None:
        """Run `work` until it succeeds or fails for a permanent reason (returned).

        A transient fault is waited out with exponential backoff, however long it lasts:
        the consumer stays on the same records, and their offsets stay uncommitted.
        """
        delay = self.backoff_s
        try:
            while True:
                try:
                    await work()
                    return None
                except Exception as exc:
                    reason = transient_reason(exc)
                    if reason is None and not await self._database_answers():
                        # An error of its own kind while the database is away: the outage
                        # may be its cause, so it proves nothing against the event.
                        reason = DATABASE_UNAVAILABLE
                    if reason is None:
                        return exc
                    if self._name not in self.stalls.waiting:
                        log.warning("consumer_waiting", reason=reason, error=str(exc) or type(exc).__name__)
                    self.stalls.begin(self._name, reason)
                    m = self.metrics
                    m.transient_failures.labels(m.service, self.topic, reason).inc()
                    log.info("consumer_retry_after_transient_fault", reason=reason, delay_s=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.backoff_max_s)
        finally:
            if self.stalls.waiting.pop(self._name, None) is not None:
                log.info("consumer_resumed")

    async def _database_answers(self) -> bool:
        try:
            async with self.pool().acquire(timeout=5) as conn:
                return await conn.fetchval("SELECT true", timeout=5) is True
        except Exception:
            return False

    async def _dead_letter(self, record: Record, error: BaseException, attempts: int) -> None:
        """Send `record` to the DLQ, waiting out a broker that is away."""
        failed = await self._until_done(lambda: self.dead_letters.send(record, error, attempts))
        if failed is not None:
            raise failed

    async def _apply(self, events: list[CloudEvent[Any]]) -> None:
        started = time.perf_counter()
        async with unit_of_work(self.pool, self.schema) as work:
            conn = work.conn
            fresh = await first_deliveries(conn, self.schema, self.consumer, [e.id for e in events])
            outcomes = []
            new = []
            for event in events:
                if event.id in fresh:
                    fresh.discard(event.id)  # the same event twice in one batch applies once
                    new.append(event)
                    outcomes.append((event.type, "processed"))
                else:
                    outcomes.append((event.type, "duplicate"))
            await erasure.record_removals(conn, self.schema, new)
            if self.batch_handler is not None:
                if new:
                    await self.batch_handler(conn, new)
            else:
                assert self.handler is not None
                for event in new:
                    with structlog.contextvars.bound_contextvars(event_id=event.id):
                        await self.handler(conn, event)
        m = self.metrics
        m.handler_latency.labels(m.service, self.topic).observe(time.perf_counter() - started)
        for event_type, outcome in outcomes:
            m.events_consumed.labels(m.service, self.topic, event_type, outcome).inc()

    async def _restore(self, event: CloudEvent[Any]) -> None:
        assert self.restore is not None
        async with unit_of_work(self.pool, self.schema) as work:
            await self.restore(work.conn, [event])

    async def _apply_alone(self, record: Record, event: CloudEvent[Any]) -> None:
        """Apply one event; only permanent failures count toward the DLQ budget."""
        budget = self.dead_letters.max_attempts
        for attempt in range(1, budget + 1):
            error = await self._until_done(lambda: self._apply([event]))
            if error is None:
                return
            if attempt == budget:
                await self._dead_letter(record, error, attempt)
                if self.restore is not None:
                    failed = await self._until_done(lambda: self._restore(event))
                    if failed is not None:  # memory may stay ahead of the database: say so
                        log.error("restore_failed", error=str(failed), event_id=event.id)
                return
            log.warning("event_retry", attempt=attempt, error=str(error), event_id=event.id)
            await asyncio.sleep(self.dead_letters.backoff_s * 2 ** (attempt - 1))
