"""Changes to a supplier profile: merge patches, versions and entity tags."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from services.contracts.errors import InvalidData
from services.contracts.events import SupplierRemovedState, SupplierState

_MERGED_OBJECTS = ("capabilities", "alerts")


def merge(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge patch, one level deep for capabilities and alerts."""
    merged = dict(current)
    for key, value in patch.items():
        if key in _MERGED_OBJECTS and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def apply_patch(state: SupplierState, patch: Mapping[str, Any], now: datetime) -> SupplierState | None:
    """The profile after `patch` (the fields a request set, as JSON), one version on; None when
    the patch changes nothing."""
    merged = merge(state.model_dump(mode="json"), dict(patch))
    try:
        changed = SupplierState.model_validate(merged)
    except ValidationError as exc:
        raise InvalidData(exc.errors()) from None
    if changed == state:
        return None
    return changed.model_copy(update={"version": state.version + 1, "updated_at": now})


def tombstone(state: SupplierState, now: datetime) -> SupplierRemovedState:
    return SupplierRemovedState(id=state.id, version=state.version + 1, removed_at=now)
