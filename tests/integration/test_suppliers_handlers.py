"""The suppliers service's use cases against a real PostgreSQL, with no web server in
between: what each command stores, which events it leaves in the outbox, what it refuses."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from services.contracts.errors import InvalidData
from services.infra import erasure
from services.infra.auth import Principal
from services.infra.errors import Conflict, Forbidden, NotFound
from services.suppliers.handlers import Suppliers
from services.suppliers.models import SupplierRegistration
from tests import factories
from tests.conftest import Stack


@pytest.fixture
def suppliers(stack: Stack, db: asyncpg.Pool) -> Suppliers:
    return Suppliers(db, stack.settings())


async def _outbox(db: asyncpg.Pool, key: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(topic, event type, data) of the supplier's outbox rows, oldest first (None: a tombstone)."""
    rows = await db.fetch(
        "SELECT topic, event_type, payload FROM suppliers.outbox WHERE key = $1 ORDER BY id", key
    )
    return [
        (r["topic"], r["event_type"], json.loads(r["payload"])["data"] if r["payload"] else None)
        for r in rows
    ]


async def _register(suppliers: Suppliers, **overrides: Any) -> tuple[str, Principal]:
    body = SupplierRegistration.model_validate(factories.registration(**overrides))
    state = await suppliers.register(body.model_dump())
    return state.id, Principal("supplier", state.id)


async def test_registering_stores_the_profile_and_leaves_supplier_registered(
    suppliers: Suppliers, db: asyncpg.Pool
) -> None:
    supplier_id, me = await _register(suppliers)

    assert (await suppliers.supplier(me, supplier_id)).version == 1
    [(topic, event_type, data)] = await _outbox(db, supplier_id)
    assert (topic, event_type) == ("innomatch.suppliers.v1", "supplier.registered")
    assert data is not None and data["id"] == supplier_id


async def test_the_same_org_number_twice_is_a_conflict(suppliers: Suppliers) -> None:
    org_number = factories.org_number()
    await _register(suppliers, org_number=org_number)
    with pytest.raises(Conflict):
        await _register(suppliers, org_number=org_number)


async def test_a_change_merges_the_patch_and_an_empty_one_changes_nothing(
    suppliers: Suppliers, db: asyncpg.Pool
) -> None:
    supplier_id, me = await _register(suppliers)

    changed = await suppliers.change(me, supplier_id, {"capabilities": {"trl": 8}}, None)
    same = await suppliers.change(me, supplier_id, {"capabilities": {"trl": 8}}, None)

    assert changed.version == same.version == 2
    assert changed.capabilities.trl == 8 and changed.capabilities.cpv_codes == ["31158100"]
    assert [t for _, t, _ in await _outbox(db, supplier_id)] == ["supplier.registered", "supplier.updated"]


async def test_an_invalid_change_names_the_field_and_stores_nothing(
    suppliers: Suppliers, db: asyncpg.Pool
) -> None:
    supplier_id, me = await _register(suppliers)
    with pytest.raises(InvalidData) as raised:
        await suppliers.change(me, supplier_id, {"capabilities": {"trl": 0}}, None)
    assert [e["loc"] for e in raised.value.errors] == [("capabilities", "trl")]
    assert (await suppliers.supplier(me, supplier_id)).version == 1


async def test_another_supplier_may_not_reach_a_profile(suppliers: Suppliers) -> None:
    supplier_id, _ = await _register(suppliers)
    _, other = await _register(suppliers)
    with pytest.raises(Forbidden):
        await suppliers.change(other, supplier_id, {"name": "Kapat AB"}, None)


async def test_erasure_leaves_removed_then_a_tombstone_and_marks_the_supplier_erased(
    suppliers: Suppliers, db: asyncpg.Pool
) -> None:
    supplier_id, me = await _register(suppliers)

    await suppliers.erase(me, supplier_id, None)

    rows = await _outbox(db, supplier_id)
    assert [(t, e) for t, e, _ in rows][1:] == [
        ("innomatch.suppliers.v1", "supplier.removed"),
        ("innomatch.suppliers.v1", "tombstone"),
    ]
    removed = rows[1][2]
    assert removed is not None and "contact_email" not in removed  # the data is erased
    async with db.acquire() as conn:
        assert await erasure.is_erased(conn, "suppliers", erasure.supplier(supplier_id))
    with pytest.raises(NotFound):
        await suppliers.erase(me, supplier_id, None)


async def test_a_supplier_can_leave_consortium_suggestions(suppliers: Suppliers) -> None:
    supplier_id, me = await _register(suppliers)
    assert (await suppliers.supplier(me, supplier_id)).capabilities.open_to_consortia  # by default
    changed = await suppliers.change(me, supplier_id, {"capabilities": {"open_to_consortia": False}}, None)
    assert changed.version == 2 and not changed.capabilities.open_to_consortia
