"""A need's partition of the needs topic, as the producer picks it: pure, so the index uses it."""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def partition_of(key: str, partitions: int) -> int:
    """The partition the default Kafka partitioner gives `key` among `partitions`."""
    return int((murmur2(key.encode()) & 0x7FFFFFFF) % partitions)
