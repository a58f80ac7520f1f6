"""Stopping a service is bounded: a step that will not end in time is abandoned, not awaited."""

from __future__ import annotations

import asyncio
import time

from services.infra.runtime import within


async def test_a_step_that_ignores_cancellation_is_abandoned_at_its_deadline() -> None:
    released = asyncio.Event()

    async def stubborn() -> None:  # like a Kafka producer waiting on a request in flight
        while not released.is_set():
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue

    started = time.monotonic()
    assert await within("stubborn", stubborn(), 0.2) is False
    assert time.monotonic() - started < 1.0
    released.set()


async def test_a_step_that_ends_or_fails_in_time_is_done() -> None:
    async def fails() -> None:
        raise RuntimeError("broker gone")

    assert await within("quick", asyncio.sleep(0), 1.0) is True
    assert await within("failing", fails(), 1.0) is True  # logged, not raised
