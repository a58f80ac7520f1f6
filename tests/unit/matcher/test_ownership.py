"""The needs' partition assignment takes effect at once, and settling retries until done."""

from __future__ import annotations

import asyncio

from aiokafka.structs import TopicPartition

from services.matcher.ownership import NeedPartitions

TOPIC = "innomatch.needs.v1"


async def test_ownership_follows_the_assignment_even_when_settling_fails_for_a_while() -> None:
    owned: list[frozenset[int]] = []
    attempts: list[frozenset[int]] = []
    settled = asyncio.Event()

    async def settle(partitions: frozenset[int]) -> None:
        attempts.append(partitions)
        if len(attempts) < 3:
            raise ConnectionRefusedError("the database is away")
        settled.set()

    listener = NeedPartitions(TOPIC, owned.append, settle, retry_s=0.01)
    await listener.on_partitions_assigned([TopicPartition(TOPIC, 1)])
    assert owned[-1] == {1}

    await listener.on_partitions_revoked([TopicPartition(TOPIC, 1)])
    await listener.on_partitions_assigned([TopicPartition(TOPIC, p) for p in (0, 1, 2)])

    assert owned == [frozenset({1}), frozenset(), frozenset({0, 1, 2})]  # before any settling
    await asyncio.wait_for(settled.wait(), 5)
    assert attempts[-1] == {0, 1, 2}
