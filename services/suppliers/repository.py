"""The suppliers schema: live profiles and the tombstones of removed suppliers."""

from __future__ import annotations

from services.contracts.events import SupplierState
from services.infra.db import Connection


async def insert(conn: Connection, state: SupplierState) -> None:
    await conn.execute(
        "INSERT INTO suppliers.suppliers (id, org_number, profile, version, created_at, updated_at) "
        "VALUES ($1, $2, $3::jsonb, $4, $5, $6)",
        state.id,
        state.org_number,
        state.model_dump_json(),
        state.version,
        state.created_at,
        state.updated_at,
    )


async def get(conn: Connection, supplier_id: str) -> SupplierState | None:
    profile = await conn.fetchval(
        "SELECT profile FROM suppliers.suppliers WHERE id = $1 AND removed_at IS NULL", supplier_id
    )
    return SupplierState.model_validate_json(profile) if profile else None
