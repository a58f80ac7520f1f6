"""The idempotent inbox: a consumer records each event id in the transaction of its effect.

A redelivered event finds its id already there and changes nothing.
"""

from __future__ import annotations

from services.infra.db import Connection


async def first_deliveries(conn: Connection, schema: str, consumer: str, event_ids: list[str]) -> set[str]:
    """Record (consumer, id) for each id; return the ids seen for the first time.

    Must run inside the transaction that applies the events' effects.
    """
    rows = await conn.fetch(
        f'INSERT INTO "{schema}".inbox (consumer, event_id) SELECT $1, unnest($2::text[]) '
        "ON CONFLICT DO NOTHING RETURNING event_id",
        consumer,
        event_ids,
    )
    return {r["event_id"] for r in rows}
