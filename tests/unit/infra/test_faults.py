"""Which errors are transient (waited out, never a DLQ) and which are the event's own."""

from __future__ import annotations

import errno

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, RecordTooLargeError

from services.infra.faults import (
    BROKER_UNAVAILABLE,
    DATABASE_CONFLICT,
    DATABASE_UNAVAILABLE,
    TIMEOUT,
    Stalls,
    transient_reason,
)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"), DATABASE_UNAVAILABLE),
        (ConnectionResetError(), DATABASE_UNAVAILABLE),
        (OSError(errno.EHOSTUNREACH, "No route to host"), DATABASE_UNAVAILABLE),
        (
            asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
            DATABASE_UNAVAILABLE,
        ),
        (
            asyncpg.InterfaceError(
                "cannot call Transaction.__aexit__(): the underlying connection is closed"
            ),
            DATABASE_UNAVAILABLE,
        ),
        (
            asyncpg.AdminShutdownError("terminating connection due to administrator command"),
            DATABASE_UNAVAILABLE,
        ),
        (asyncpg.CannotConnectNowError("the database system is starting up"), DATABASE_UNAVAILABLE),
        (asyncpg.TooManyConnectionsError("sorry, too many clients already"), DATABASE_UNAVAILABLE),
        (asyncpg.SerializationError("could not serialize access"), DATABASE_CONFLICT),
        (asyncpg.DeadlockDetectedError("deadlock detected"), DATABASE_CONFLICT),
        (asyncpg.LockNotAvailableError("could not obtain lock"), DATABASE_CONFLICT),
        (asyncpg.QueryCanceledError("canceling statement due to statement timeout"), TIMEOUT),
        (TimeoutError(), TIMEOUT),
        (KafkaConnectionError(), BROKER_UNAVAILABLE),
        (KafkaTimeoutError(), BROKER_UNAVAILABLE),
    ],
)
def test_faults_that_end_by_themselves_are_transient(error: BaseException, reason: str) -> None:
    assert transient_reason(error) == reason


@pytest.mark.parametrize(
    "error",
    [
        ValueError("a rule of the handler"),
        KeyError("missing"),
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.UndefinedTableError("relation does not exist"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        FileNotFoundError(errno.ENOENT, "No such file"),
        RecordTooLargeError(),
    ],
)
def test_errors_of_the_event_or_the_code_are_permanent(error: BaseException) -> None:
    assert transient_reason(error) is None


def test_a_wrapped_lost_connection_is_still_transient() -> None:
    try:
        try:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed")
        except OSError as exc:
            raise RuntimeError("could not store the supplier") from exc
    except RuntimeError as wrapped:
        assert transient_reason(wrapped) == DATABASE_UNAVAILABLE


def test_only_outages_make_a_process_unready() -> None:
    stalls = Stalls()
    stalls.begin("matcher innomatch.needs.v1", DATABASE_CONFLICT)
    assert stalls.outages() == []
    stalls.begin("matcher innomatch.suppliers.v1", DATABASE_UNAVAILABLE)
    assert stalls.outages() == ["matcher innomatch.suppliers.v1: database unavailable"]
    stalls.end("matcher innomatch.suppliers.v1")
    assert stalls.outages() == []
