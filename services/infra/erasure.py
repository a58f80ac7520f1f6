"""Erased principals: the marker that outlives an erased supplier's data, in every schema.

When a supplier is erased, the suppliers service records `supplier:<id>` in its own
`erased_principals` in the transaction that erases the profile; every other service records
it in the transaction that applies the `supplier.removed` event (`EventConsumer` does it for
each service that consumes the suppliers topic). The row is kept for good, and it means two
things in the schema that holds it:

- the principal's tokens are refused (401), checked locally without asking another service;
- no late, reordered or replayed event restores a copy of the principal's data (handlers ask
  `is_erased` or join the table before writing one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import asyncpg

from services.contracts.events import SupplierRemoved
from services.infra.db import Connection


def supplier(supplier_id: str) -> str:
    return f"supplier:{supplier_id}"


async def record(conn: Connection, schema: str, principals: Sequence[str]) -> None:
    """Mark `principals` erased; call in the transaction that erases their data."""
    if not principals:
        return
    await conn.execute(
        f'INSERT INTO "{schema}".erased_principals (principal) SELECT DISTINCT unnest($1::text[]) '
        "ON CONFLICT DO NOTHING",
        list(principals),
    )


async def record_removals(conn: Connection, schema: str, events: Iterable[Any]) -> None:
    """Mark the suppliers of the `supplier.removed` events among `events` erased."""
    await record(conn, schema, [supplier(e.subject) for e in events if isinstance(e, SupplierRemoved)])


async def erased_among(conn: Connection, schema: str, principals: Sequence[str]) -> set[str]:
    rows = await conn.fetch(
        f'SELECT principal FROM "{schema}".erased_principals WHERE principal = ANY($1::text[])',
        list(principals),
    )
    return {r["principal"] for r in rows}


async def is_erased(conn: Connection, schema: str, principal: str) -> bool:
    return bool(await erased_among(conn, schema, [principal]))


class ErasedPrincipals:
    """The check the HTTP layer makes for each supplier or buyer-group token: one primary-key
    read in the service's own schema."""

    def __init__(self, pool: Callable[[], asyncpg.Pool], schema: str) -> None:
        self._pool = pool
        self._schema = schema

    async def contains(self, principal: str) -> bool:
        async with self._pool().acquire() as conn:
            return await is_erased(conn, self._schema, principal)
