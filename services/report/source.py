"""Where the report's facts come from: the event topics, and the needs service's operator
API for the authorities (which no event carries).

The topics are read from the beginning without a consumer group (manual assignment, no
offsets committed), up to what was written when reading started, so a report is a
snapshot even while the services keep publishing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import ValidationError

from services.contracts import topics
from services.contracts.events import CloudEvent, parse_event
from services.report.aggregate import Authority

REPORT_TOPICS: tuple[str, ...] = (
    topics.SUPPLIERS,
    topics.NEEDS,
    topics.BUYER_GROUPS,
    topics.MATCHES,
    topics.ALERTS,
    topics.DIALOGUES,
)


# Empty polls in a row before the partitions count as read to their end: a margin, since
# the broker's end offsets cannot be relied on (see read_topics).
_QUIET_POLLS = 3


@dataclass
class Read:
    events: list[tuple[str, CloudEvent[Any]]] = field(default_factory=list)
    skipped: int = 0


def parse_records(records: Sequence[tuple[str, bytes | None]], into: Read) -> None:
    """Parse (topic, value) records into events; count the ones that are not events.
    Tombstones (null values) of the compacted suppliers topic are neither."""
    for topic, value in records:
        if value is None:
            continue
        try:
            into.events.append((topic, parse_event(topic, value or b"")))
        except (ValidationError, ValueError):
            into.skipped += 1


async def read_topics(
    bootstrap: str,
    names: Sequence[str] = REPORT_TOPICS,
    *,
    fetch_max_wait_ms: int = 50,
    idle_ms: int = 500,
    timeout_s: float = 120,
) -> Read:
    """Every event on the topics up to the moment this starts, in partition order.

    A partition is read to its end offset as the broker reports it, then on until it has
    nothing more (no record in a few polls of idle_ms) or shows a record written after the
    start. The end offset alone is not enough: tansu under-reports it after batched writes.
    """
    started_ms = time.time() * 1000
    out = Read()
    partitions = await _partitions(bootstrap, names)
    if not partitions:
        return out
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        # Where a partition no longer starts at 0 (retention), start at its first record;
        # the default, "latest", would silently skip everything.
        auto_offset_reset="earliest",
        fetch_max_wait_ms=fetch_max_wait_ms,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        client_id="innomatch-report",
    )
    try:
        await consumer.start()
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            # Offset 0 rather than seek_to_beginning: tansu was seen to answer the earliest-offset
            # request with the end offset, which skipped all but the newest records.
            consumer.seek(tp, 0)
        pending = set(partitions)
        deadline = time.monotonic() + timeout_s
        quiet = 0
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"still reading after {timeout_s:.0f} s: {sorted(map(str, pending))}")
            batch = await consumer.getmany(*pending, timeout_ms=idle_ms)
            quiet = 0 if batch else quiet + 1
            for tp, records in batch.items():
                before = [r for r in records if r.timestamp <= started_ms]
                parse_records([(tp.topic, r.value) for r in before], out)
                if len(before) < len(records):
                    pending.discard(tp)  # written after the report started
            if quiet >= _QUIET_POLLS:
                # Nothing more for a while: done wherever the reported end has been reached.
                for tp in list(pending):
                    if await consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
        return out
    finally:
        await consumer.stop()


async def _partitions(bootstrap: str, names: Sequence[str]) -> list[TopicPartition]:
    """The partitions of those of the topics that exist.

    Asked of the broker directly: a consumer without a subscription knows no topic's
    partitions (Apache Kafka answers its first metadata request with none at all).
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="innomatch-report")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [name for name in names if name in existing]
        described = await admin.describe_topics(wanted) if wanted else []
    finally:
        await admin.close()
    found = {t["topic"]: sorted(p["partition"] for p in t["partitions"]) for t in described}
    return [TopicPartition(name, p) for name in wanted for p in found.get(name, ())]


async def fetch_authorities(needs_url: str, operator_token: str, *, timeout_s: float = 30) -> list[Authority]:
    """All authorities from the needs service (operator only)."""
    async with httpx.AsyncClient(base_url=needs_url, timeout=timeout_s) as client:
        response = await client.get("/v1/authorities", headers={"Authorization": f"Bearer {operator_token}"})
        response.raise_for_status()
        return [
            Authority(
                id=a["id"],
                level=a["level"],
                created_at=datetime.fromisoformat(a["created_at"]),
                name=a.get("name", ""),
                org_number=a.get("org_number", ""),
                region=a.get("region", ""),
            )
            for a in response.json()
        ]
