"""Event handlers of the notifier: learn each recipient's alert settings."""

from __future__ import annotations

import asyncpg

from services.contracts.events import SupplierEvent, SupplierRemoved
from services.notifier import repository


async def on_supplier_event(conn: asyncpg.Connection, event: SupplierEvent) -> None:
    principal = f"supplier:{event.subject}"
    if isinstance(event, SupplierRemoved):
        await repository.delete_recipient(conn, principal)
    else:
        await repository.upsert_recipient(conn, principal, event.data.version, event.data.alerts)
