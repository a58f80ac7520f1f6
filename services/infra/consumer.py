"""Consuming events: per-message log context, the dead-letter middleware, and the
idempotent handler wrapper every service uses.

Flow of one message: FastStream hands the raw bytes to `EventConsumer`, which parses them into
a contracts event (a bad body is a `PoisonMessage`), then applies the handler and records the
event id in the inbox in one transaction. The dead-letter middleware retries other failures a
bounded number of times, then publishes the message to `<topic>.dlq` with the error in its
headers, and lets the consumer go on with the next message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import asyncpg
import structlog
from aiokafka import ConsumerRecord
from faststream import BaseMiddleware
from pydantic import ValidationError

from services.contracts.events import CloudEvent, parse_event
from services.contracts.topics import dlq
from services.infra.db import Connection
from services.infra.inbox import first_delivery
from services.infra.logs import get_logger
from services.infra.metrics import Metrics

if TYPE_CHECKING:
    from types import TracebackType

    from faststream._internal.context.repository import ContextRepo
    from faststream.kafka import KafkaBroker
    from faststream.message import StreamMessage

log = get_logger(__name__)


class PoisonMessage(Exception):
    """A message that no retry can fix (it cannot be parsed): straight to the DLQ."""


def _record(msg: Any) -> ConsumerRecord[Any, Any] | None:
    raw = getattr(msg, "raw_message", msg)
    return raw if isinstance(raw, ConsumerRecord) else None


def _header(record: ConsumerRecord[Any, Any], name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode(errors="replace")
    return None


class _MessageContext(BaseMiddleware):
    async def on_receive(self) -> None:
        record = _record(self.msg)
        if record is not None:
            structlog.contextvars.bind_contextvars(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                event_id=_header(record, "ce_id"),
            )

    async def after_processed(
        self,
        exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        exc_tb: TracebackType | None = None,
    ) -> bool | None:
        structlog.contextvars.unbind_contextvars("topic", "partition", "offset", "event_id")
        return False


def bind_message_context(msg: Any, /, *, context: ContextRepo) -> BaseMiddleware:
    """Bind topic, partition, offset and event id to every log line of this message."""
    return _MessageContext(msg, context=context)


class DeadLetters:
    """Sends messages that cannot be processed to `<topic>.dlq`; owns the retry budget."""

    def __init__(self, service: str, metrics: Metrics, max_attempts: int, backoff_s: float) -> None:
        self.service = service
        self.metrics = metrics
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.broker: KafkaBroker | None = None

    def middleware(self, msg: Any, /, *, context: ContextRepo) -> BaseMiddleware:
        return _DeadLetterMiddleware(msg, context=context, dead_letters=self)

    async def send(self, record: ConsumerRecord[Any, Any], error: BaseException, attempts: int) -> None:
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
        log.error("event_dead_lettered", reason=reason, error=str(error), attempts=attempts)


class _DeadLetterMiddleware(BaseMiddleware):
    def __init__(self, msg: Any, /, *, context: ContextRepo, dead_letters: DeadLetters) -> None:
        super().__init__(msg, context=context)
        self.dead_letters = dead_letters

    async def consume_scope(self, call_next: Callable[[Any], Awaitable[Any]], msg: StreamMessage[Any]) -> Any:
        record = _record(msg)
        budget = self.dead_letters.max_attempts
        for attempt in range(1, budget + 1):
            try:
                return await call_next(msg)
            except Exception as exc:
                if record is None:
                    raise
                if isinstance(exc, PoisonMessage) or attempt == budget:
                    await self.dead_letters.send(record, exc, attempt)
                    return None
                log.warning("event_retry", attempt=attempt, error=str(exc))
                await asyncio.sleep(self.dead_letters.backoff_s * 2 ** (attempt - 1))
        return None

    async def after_processed(
        self,
        exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        exc_tb: TracebackType | None = None,
    ) -> bool | None:
        # Failures before the handler (decoding, headers) never reach consume_scope.
        record = _record(self.msg)
        if isinstance(exc_val, Exception) and record is not None:
            await self.dead_letters.send(record, PoisonMessage(str(exc_val)), 1)
            return True
        return False


EventHandler = Callable[[Connection, Any], Awaitable[None]]


class EventConsumer:
    """Parses an event and applies `handler` once per event id, inside one transaction."""

    def __init__(
        self,
        *,
        pool: Callable[[], asyncpg.Pool],
        schema: str,
        consumer: str,
        topic: str,
        handler: EventHandler,
        metrics: Metrics,
    ) -> None:
        self.pool = pool
        self.schema = schema
        self.consumer = consumer
        self.topic = topic
        self.handler = handler
        self.metrics = metrics

    def parse(self, body: bytes) -> CloudEvent[Any]:
        try:
            return parse_event(self.topic, body)
        except (ValidationError, ValueError) as exc:
            raise PoisonMessage(f"not a valid {self.topic} event: {exc}") from exc

    async def __call__(self, body: bytes) -> None:
        event = self.parse(body)
        event_id: str = event.id
        event_type: str = event.type
        started = time.perf_counter()
        async with self.pool().acquire() as conn, conn.transaction():
            fresh = await first_delivery(conn, self.schema, self.consumer, event_id)
            if fresh:
                await self.handler(conn, event)
        m = self.metrics
        m.handler_latency.labels(m.service, self.topic).observe(time.perf_counter() - started)
        outcome = "processed" if fresh else "duplicate"
        m.events_consumed.labels(m.service, self.topic, event_type, outcome).inc()
