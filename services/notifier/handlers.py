"""Event handlers of the notifier: learn each recipient's alert settings."""

from __future__ import annotations

from services.contracts.events import SupplierEvent, SupplierRemoved
from services.infra.db import Connection
from services.notifier import repository


async def on_supplier_event(conn: Connection, event: SupplierEvent) -> None:
    principal = f"supplier:{event.subject}"
    if isinstance(event, SupplierRemoved):
        await repository.delete_recipient(conn, principal)
    else:
        await repository.upsert_recipient(conn, principal, event.data.version, event.data.alerts)
