"""The matcher schema: its projection of supplier profiles."""

from __future__ import annotations

from services.contracts.events import SupplierState
from services.infra.db import Connection


async def upsert_supplier(conn: Connection, state: SupplierState) -> bool:
    """Store `state` unless a newer version is already there; True when stored."""
    stored = await conn.fetchval(
        "INSERT INTO matcher.suppliers (id, version, profile) VALUES ($1, $2, $3::jsonb) "
        "ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, profile = EXCLUDED.profile, "
        "updated_at = now() WHERE matcher.suppliers.version < EXCLUDED.version RETURNING true",
        state.id,
        state.version,
        state.model_dump_json(),
    )
    return bool(stored)


async def delete_supplier(conn: Connection, supplier_id: str) -> None:
    await conn.execute("DELETE FROM matcher.suppliers WHERE id = $1", supplier_id)


async def load_suppliers(conn: Connection) -> list[SupplierState]:
    rows = await conn.fetch("SELECT profile FROM matcher.suppliers")
    return [SupplierState.model_validate_json(r["profile"]) for r in rows]
