"""The suppliers service's use cases: registering, changing and erasing a profile.

Each command runs in a unit of work (`services/infra/unit_of_work.py`): it reads and writes
through `repository`, decides with the pure `profile` rules, and emits the events of the
change, which reach the outbox in the same transaction. Commands raise domain errors
(`services/contracts/errors.py`) or the errors of `services/infra/errors.py`; the HTTP layer
maps them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.contracts.events import (
    SupplierRegistered,
    SupplierRemoved,
    SupplierState,
    SupplierUpdated,
    new_event,
)
from services.infra import erasure
from services.infra.auth import Principal
from services.infra.db import Connection
from services.infra.errors import Conflict, Forbidden, NotFound
from services.infra.etags import check_if_match
from services.infra.settings import Settings
from services.infra.unit_of_work import UseCases
from services.infra.webhooks import validate_webhook_setting
from services.suppliers import profile, repository

SOURCE = "/innomatch/suppliers"


def authorize(principal: Principal, supplier_id: str) -> None:
    if not (principal.is_operator or principal.is_supplier(supplier_id)):
        raise Forbidden("a supplier may only reach its own profile")


class Suppliers(UseCases):
    """The use cases, on the service's pool and settings."""

    def __init__(
        self, pool: asyncpg.Pool | Callable[[], asyncpg.Pool], settings: Settings, schema: str = "suppliers"
    ) -> None:
        super().__init__(pool, settings, schema)

    async def register(self, registration: dict[str, Any]) -> SupplierState:
        """`registration`: the profile's fields, validated by the caller."""
        now = datetime.now(UTC)
        state = SupplierState(id=str(uuid.uuid4()), version=1, created_at=now, updated_at=now, **registration)
        await validate_webhook_setting(state.alerts.webhook_url, self.settings)
        try:
            async with self.work() as work:
                await repository.insert(work.conn, state)
                work.emit(new_event(SupplierRegistered, source=SOURCE, subject=state.id, data=state))
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(f"a supplier with org_number {state.org_number} is already registered") from exc
        return state

    async def supplier(self, principal: Principal, supplier_id: str) -> SupplierState:
        authorize(principal, supplier_id)
        async with self.pool.acquire() as conn:
            state = await repository.get(conn, supplier_id)
        if state is None:
            raise NotFound(f"no supplier {supplier_id}")
        return state

    async def change(
        self, principal: Principal, supplier_id: str, patch: dict[str, Any], if_match: str | None
    ) -> SupplierState:
        """`patch`: a JSON merge patch of the profile, as sent."""
        authorize(principal, supplier_id)
        async with self.work() as work:
            state = await _locked(work.conn, supplier_id, if_match)
            changed = profile.apply_patch(state, patch, datetime.now(UTC))
            if changed is None:
                return state
            if changed.alerts.webhook_url != state.alerts.webhook_url:
                await validate_webhook_setting(changed.alerts.webhook_url, self.settings)
            await repository.update(work.conn, changed)
            work.emit(new_event(SupplierUpdated, source=SOURCE, subject=supplier_id, data=changed))
            return changed

    async def erase(self, principal: Principal, supplier_id: str, if_match: str | None) -> None:
        """Erase the profile, publish supplier.removed and a tombstone, and refuse its tokens."""
        authorize(principal, supplier_id)
        async with self.work() as work:
            state = await _locked(work.conn, supplier_id, if_match)
            removed = profile.tombstone(state, datetime.now(UTC))
            await repository.remove(work.conn, removed)
            work.emit_erasure(new_event(SupplierRemoved, source=SOURCE, subject=supplier_id, data=removed))
            await erasure.record(work.conn, self.schema, [erasure.supplier(supplier_id)])


async def _locked(conn: Connection, supplier_id: str, if_match: str | None) -> SupplierState:
    state = await repository.get_for_update(conn, supplier_id)
    if state is None:
        raise NotFound(f"no supplier {supplier_id}")
    check_if_match(if_match, state.version, "supplier")
    return state
