"""The suppliers schema: live profiles and the tombstones of removed suppliers."""

from __future__ import annotations

from services.contracts.events import SupplierRemovedState, SupplierState
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


async def get_for_update(conn: Connection, supplier_id: str) -> SupplierState | None:
    """The live profile, locked until the transaction ends."""
    profile = await conn.fetchval(
        "SELECT profile FROM suppliers.suppliers WHERE id = $1 AND removed_at IS NULL FOR UPDATE",
        supplier_id,
    )
    return SupplierState.model_validate_json(profile) if profile else None


async def update(conn: Connection, state: SupplierState) -> None:
    await conn.execute(
        "UPDATE suppliers.suppliers SET profile = $2::jsonb, version = $3, updated_at = $4 "
        "WHERE id = $1 AND removed_at IS NULL",
        state.id,
        state.model_dump_json(),
        state.version,
        state.updated_at,
    )


async def remove(conn: Connection, tombstone: SupplierRemovedState) -> None:
    """Erase the profile and the org_number; the row stays as a tombstone."""
    await conn.execute(
        "UPDATE suppliers.suppliers SET profile = NULL, org_number = NULL, version = $2, "
        "updated_at = $3, removed_at = $3 WHERE id = $1 AND removed_at IS NULL",
        tombstone.id,
        tombstone.version,
        tombstone.removed_at,
    )
