"""Transient faults: errors that say nothing about the event being handled.

A lost or refused database or broker connection, a timeout, a serialization failure or a
deadlock ends the same way whatever the event: waiting and trying the same work again fixes
it. Such an error must never send an event to a dead-letter topic. Every other error is
permanent (a bad event, a bug) and counts toward the bounded retries before the DLQ.

`transient_reason` is pure: it looks only at the exception and what caused it.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field

import asyncpg
from aiokafka.errors import KafkaError, KafkaTimeoutError

# Reasons, also the `reason` label of innomatch_consumer_transient_failures_total.
DATABASE_UNAVAILABLE = "database_unavailable"
DATABASE_CONFLICT = "database_conflict"  # serialization failure, deadlock, lock not available
BROKER_UNAVAILABLE = "broker_unavailable"
TIMEOUT = "timeout"

# Reasons that mean a dependency is away, so the service is not ready while they last. A
# conflict is retried at once and says nothing about the service's health.
OUTAGES = frozenset({DATABASE_UNAVAILABLE, BROKER_UNAVAILABLE, TIMEOUT})

# SQLSTATE classes and codes of errors that end by themselves (PostgreSQL appendix A).
_SQLSTATE_CLASSES = {
    "08": DATABASE_UNAVAILABLE,  # connection exception
    "40": DATABASE_CONFLICT,  # transaction rollback: serialization failure, deadlock
    "53": DATABASE_UNAVAILABLE,  # insufficient resources: too many connections, disk full
    "57": DATABASE_UNAVAILABLE,  # operator intervention: shutdown, cannot connect now
    "58": DATABASE_UNAVAILABLE,  # system error: I/O error
}
_SQLSTATES = {
    "55P03": DATABASE_CONFLICT,  # lock not available
    "55006": DATABASE_CONFLICT,  # object in use
}
# 57014 (query canceled) is a statement timeout or a cancel request: a timeout, not an outage
# of the server, but it ends by itself all the same.
_SQLSTATE_TIMEOUTS = {"57014"}

# OSError numbers of a network that is away (anything else, e.g. a missing file, is a bug).
_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.EHOSTDOWN,
        errno.EADDRNOTAVAIL,
    }
)

# asyncpg raises InterfaceError with these words when the connection or pool went away.
# "cannot switch to state": a connection whose server end was terminated mid-operation.
_CLOSED = (
    "connection is closed",
    "connection was closed",
    "pool is closed",
    "pool is closing",
    "cannot switch to state",
)


def _own_reason(exc: BaseException) -> str | None:
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        if state in _SQLSTATE_TIMEOUTS:
            return TIMEOUT
        return _SQLSTATES.get(state) or _SQLSTATE_CLASSES.get(state[:2])
    if isinstance(exc, asyncpg.InterfaceError):
        return DATABASE_UNAVAILABLE if any(w in str(exc).lower() for w in _CLOSED) else None
    if isinstance(exc, KafkaError):
        # A request the broker did not answer in time is not marked retriable, but is.
        transient = exc.retriable or exc.invalid_metadata or isinstance(exc, KafkaTimeoutError)
        return BROKER_UNAVAILABLE if transient else None
    if isinstance(exc, TimeoutError):  # asyncio.TimeoutError is the same class
        return TIMEOUT
    if isinstance(exc, ConnectionError | socket.gaierror):  # refused, reset, name not resolved
        return DATABASE_UNAVAILABLE
    if isinstance(exc, OSError) and exc.errno in _NETWORK_ERRNOS:
        return DATABASE_UNAVAILABLE
    return None


def transient_reason(exc: BaseException) -> str | None:
    """Why `exc` is transient (a reason above), or None when it is permanent.

    Follows the chain of causes, so a handler that wraps a lost connection in an error of
    its own still has it recognised.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if (reason := _own_reason(current)) is not None:
            return reason
        current = current.__cause__ or current.__context__
    return None


def describe(reason: str) -> str:
    """The reason in words, as /readyz shows it."""
    return reason.replace("_", " ")


@dataclass
class Stalls:
    """The consumers of a process that are waiting out a transient fault, and why.

    A consumer reports here when it starts waiting and when it is through; readiness is
    false while any of them waits on an outage.
    """

    waiting: dict[str, str] = field(default_factory=dict)

    def begin(self, consumer: str, reason: str) -> None:
        self.waiting[consumer] = reason

    def end(self, consumer: str) -> None:
        self.waiting.pop(consumer, None)

    def outages(self) -> list[str]:
        """One line per consumer waiting on an outage, e.g. "<topic>: database unavailable"."""
        return sorted(f"{c}: {describe(r)}" for c, r in self.waiting.items() if r in OUTAGES)
