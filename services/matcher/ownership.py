"""Which needs a matcher instance owns: the partitions of the needs topic that the shared
consumer group assigned to it.

The owner of a need's partition ranks the need when it is published or changed, and it alone
scores changed suppliers against it, so a supplier change costs each instance only its share
of the open needs and more instances add supplier throughput. A need's partition is the
producer's: murmur2 of its id (the event key) over the topic's partitions.

Around a rebalance an instance owns nothing for a moment, and a supplier change it handles
then would reach the needs of no partition. So every supplier changed or removed since the
last assignment is kept, and when partitions are assigned the instance settles them against
every need it now owns (`Matcher.settle`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.structs import TopicPartition

from services.infra.logs import get_logger

log = get_logger(__name__)


class NeedPartitions(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tracks the assignment of the shared needs group and settles after each one."""

    def __init__(self, topic: str, settle: Callable[[frozenset[int]], Awaitable[None]]) -> None:
        self.topic = topic
        self.settle = settle
        self.owned: frozenset[int] = frozenset()

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.owned = self.owned - {tp.partition for tp in revoked if tp.topic == self.topic}

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.owned = self.owned | {tp.partition for tp in assigned if tp.topic == self.topic}
        log.info("need_partitions_assigned", owned=sorted(self.owned))
        await self.settle(self.owned)
