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

The assignment takes effect in memory before any I/O, so a database that is away during a
rebalance cannot leave the instance scoring suppliers against the partitions it owned before.
Settling then runs in the background and is retried until it succeeds (or the next
assignment replaces it), since a rebalance listener's failure is only logged by the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.structs import TopicPartition

from services.infra.faults import transient_reason
from services.infra.logs import get_logger

log = get_logger(__name__)


class NeedPartitions(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tracks the assignment of the shared needs group and settles after each one."""

    def __init__(
        self,
        topic: str,
        own: Callable[[frozenset[int]], None],
        settle: Callable[[frozenset[int]], Awaitable[None]],
        retry_s: float = 1.0,
    ) -> None:
        self.topic = topic
        self.own = own
        self.settle = settle
        self.retry_s = retry_s
        self.owned: frozenset[int] = frozenset()
        self._settling: asyncio.Task[None] | None = None

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.owned = self.owned - {tp.partition for tp in revoked if tp.topic == self.topic}
        self.own(self.owned)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.owned = self.owned | {tp.partition for tp in assigned if tp.topic == self.topic}
        self.own(self.owned)
        log.info("need_partitions_assigned", owned=sorted(self.owned))
        if self._settling is not None:
            self._settling.cancel()  # the new assignment settles everything still unsettled
        self._settling = asyncio.create_task(self._settle_until_done(self.owned))

    async def _settle_until_done(self, owned: frozenset[int]) -> None:
        attempt = 0
        while True:
            try:
                await self.settle(owned)
                return
            except Exception as exc:
                attempt += 1
                reason = transient_reason(exc)
                log.warning("settle_failed", error=str(exc), reason=reason, attempt=attempt)
                await asyncio.sleep(min(self.retry_s * attempt, 10.0))
