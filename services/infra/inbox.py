"""The idempotent inbox: a consumer records each event id in the transaction of its effect.

A redelivered event finds its id already there and changes nothing.
"""

from __future__ import annotations

from services.infra.db import Connection


async def first_delivery(conn: Connection, schema: str, consumer: str, event_id: str) -> bool:
    """Record (consumer, event_id); True the first time, False for a redelivery.

    Must run inside the transaction that applies the event's effect.
    """
    inserted = await conn.fetchval(
        f'INSERT INTO "{schema}".inbox (consumer, event_id) VALUES ($1, $2) '
        "ON CONFLICT DO NOTHING RETURNING true",
        consumer,
        event_id,
    )
    return bool(inserted)
