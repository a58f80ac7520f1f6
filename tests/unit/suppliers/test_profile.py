"""Merge patches and versions of supplier profiles."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.contracts.errors import InvalidData
from services.suppliers.models import SupplierPatch
from services.suppliers.profile import apply_patch, tombstone
from tests.factories import supplier_state

NOW = datetime(2026, 1, 2, tzinfo=UTC)


def _set(body: dict[str, Any]) -> dict[str, Any]:
    """The fields a PATCH request sets, as the API hands them to the rule."""
    return SupplierPatch.model_validate(body).model_dump(mode="json", exclude_unset=True)


def test_a_patch_merges_capabilities_and_alerts_field_by_field() -> None:
    state = supplier_state()
    patch = _set({"capabilities": {"trl": 9, "cpv_codes": ["45000000-7"]}, "alerts": {"mode": "weekly"}})
    changed = apply_patch(state, patch, NOW)
    assert changed is not None
    assert changed.version == state.version + 1 and changed.updated_at == NOW
    assert changed.capabilities.trl == 9
    assert changed.capabilities.cpv_codes == ["45000000"]
    assert changed.capabilities.regions == state.capabilities.regions
    assert changed.alerts.mode == "weekly" and changed.alerts.language == state.alerts.language
    assert changed.created_at == state.created_at


def test_a_patch_that_changes_nothing_gives_none() -> None:
    state = supplier_state()
    same = {"name": state.name, "capabilities": {"cpv_codes": ["31158100-9"]}}
    assert apply_patch(state, _set(same), NOW) is None


def test_a_patch_is_validated_with_field_paths() -> None:
    patch = _set({"name": None, "capabilities": {"regions": ["SE11", "SE999"]}})
    with pytest.raises(InvalidData) as caught:
        apply_patch(supplier_state(), patch, NOW)
    locs = {tuple(e["loc"]) for e in caught.value.errors}
    assert ("name",) in locs
    assert ("capabilities", "regions", 1) in locs


def test_a_tombstone_keeps_only_id_version_and_time() -> None:
    state = supplier_state()
    removed = tombstone(state, NOW)
    assert removed.model_dump() == {"id": state.id, "version": state.version + 1, "removed_at": NOW}
