"""Event handlers of the matcher: keep the replica of supplier profiles current."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import Gauge

from services.contracts.events import SupplierEvent, SupplierRemoved, SupplierState
from services.infra.db import Connection
from services.matcher import repository


@dataclass
class SupplierReplica:
    """Every live supplier profile, in memory, so one instance can score a need alone."""

    gauge: Gauge
    profiles: dict[str, SupplierState] = field(default_factory=dict)

    def load(self, states: list[SupplierState]) -> None:
        self.profiles = {s.id: s for s in states}
        self.gauge.set(len(self.profiles))

    async def on_supplier_event(self, conn: Connection, event: SupplierEvent) -> None:
        if isinstance(event, SupplierRemoved):
            await repository.delete_supplier(conn, event.subject)
            self.profiles.pop(event.subject, None)
        elif await repository.upsert_supplier(conn, event.data):
            self.profiles[event.data.id] = event.data
        self.gauge.set(len(self.profiles))
