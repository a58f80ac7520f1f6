"""The idempotent inbox: a consumer records each event id in the transaction of its effect.

A redelivered event finds its id already there and changes nothing. Ids older than the
retention (INNOMATCH_INBOX_RETENTION_DAYS) are pruned: redeliveries come within minutes, and
an event read again after that (a consumer group reset, a new matcher instance) meets the
handlers' version checks and the erasure markers instead.
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


PRUNE_BATCH = 10_000


async def prune(conn: Connection, schema: str, older_than_s: float, batch: int = PRUNE_BATCH) -> int:
    """Delete up to `batch` ids recorded more than `older_than_s` seconds ago; return how many.

    Small batches keep each delete short; the caller repeats until fewer come back.
    """
    status = await conn.execute(
        f'DELETE FROM "{schema}".inbox WHERE ctid = ANY(ARRAY(SELECT ctid FROM "{schema}".inbox '
        "WHERE processed_at < now() - make_interval(secs => $1) LIMIT $2))",
        older_than_s,
        batch,
    )
    return int(status.rsplit(" ", 1)[-1])
