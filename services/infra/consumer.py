"""Consuming events: per-message log context, the dead-letter topic, and the idempotent
batch handler every service uses.

Flow of one poll: FastStream hands `EventConsumer` a batch of records. Each record is parsed
into a contracts event; one that cannot be parsed goes to `<topic>.dlq` at once. The rest are
applied in one transaction, with their ids recorded in the inbox, so a redelivered event
changes nothing. If that transaction fails, the events are applied one by one, each retried a
bounded number of times, and an event that still fails goes to the DLQ with the error in its
headers; the consumer goes on with the next. Offsets are committed only after all of this.
If even the DLQ cannot be written, the batch is negatively acknowledged and read again:
nothing is committed that was neither applied nor dead-lettered.
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
from services.infra.db import Connection
from services.infra.inbox import first_deliveries
from services.infra.logs import get_logger
from services.infra.metrics import Metrics

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
    ) -> None:
        if (handler is None) == (batch_handler is None):
            raise ValueError("give either handler or batch_handler")
        self.pool = pool
        self.schema = schema
        self.consumer = consumer
        self.topic = topic
        self.handler = handler
        self.batch_handler = batch_handler
        self.metrics = metrics
        self.dead_letters = dead_letters

    def parse(self, body: bytes) -> CloudEvent[Any]:
        try:
            return parse_event(self.topic, body)
        except (ValidationError, ValueError) as exc:
            raise PoisonMessage(f"not a valid {self.topic} event: {exc}") from exc

    async def __call__(self, records: Sequence[Record]) -> None:
        parsed: list[tuple[Record, CloudEvent[Any]]] = []
        for record in records:
            try:
                parsed.append((record, self.parse(record.value or b"")))
            except PoisonMessage as exc:
                await self.dead_letters.send(record, exc, 1)
        if not parsed:
            return
        try:
            await self._apply([event for _, event in parsed])
        except Exception as exc:
            log.warning("batch_failed_applying_one_by_one", error=str(exc), size=len(parsed))
            for record, event in parsed:
                await self._apply_alone(record, event)

    async def _apply(self, events: list[CloudEvent[Any]]) -> None:
        started = time.perf_counter()
        async with self.pool().acquire() as conn, conn.transaction():
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

    async def _apply_alone(self, record: Record, event: CloudEvent[Any]) -> None:
        budget = self.dead_letters.max_attempts
        for attempt in range(1, budget + 1):
            try:
                await self._apply([event])
                return
            except Exception as exc:
                if attempt == budget:
                    await self.dead_letters.send(record, exc, attempt)
                    return
                log.warning("event_retry", attempt=attempt, error=str(exc), event_id=event.id)
                await asyncio.sleep(self.dead_letters.backoff_s * 2 ** (attempt - 1))
