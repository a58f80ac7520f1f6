"""Valid domain objects for tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from services.contracts.events import (
    NeedPublished,
    NeedState,
    SupplierRegistered,
    SupplierState,
    new_event,
)
from services.contracts.orgnr import luhn_check_digit

_serial = iter(range(100_000, 999_999))


def org_number() -> str:
    """A fresh valid organisationsnummer of a company (third digit >= 2)."""
    first9 = f"556{next(_serial):06d}"
    return f"{first9[:6]}-{first9[6:]}{luhn_check_digit(first9)}"


def registration(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "org_number": org_number(),
        "name": "Laddbolaget AB",
        "size": "small",
        "company_type": "industrial",
        "founded_year": 2019,
        "contact_email": "info@laddbolaget.se",
        "capabilities": {
            "cpv_codes": ["31158100"],
            "focus_areas": ["transport"],
            "keywords": ["laddstolpar"],
            "description": "Laddinfrastruktur för elbussar och depåer.",
            "regions": ["SE11"],
            "trl": 7,
        },
        "alerts": {"language": "sv", "mode": "instant", "min_score": 0.5},
    }
    body.update(overrides)
    return body


def supplier_state(**overrides: Any) -> SupplierState:
    now = datetime.now(UTC)
    data = registration()
    data.update(id=str(uuid.uuid4()), version=1, created_at=now, updated_at=now)
    data.update(overrides)
    return SupplierState.model_validate(data)


def supplier_registered(state: SupplierState | None = None) -> SupplierRegistered:
    state = state or supplier_state()
    return new_event(SupplierRegistered, source="/tests", data=state)


_public_serial = iter(range(100_000, 999_999))


def public_org_number() -> str:
    """A fresh valid organisationsnummer of a public body (first digit 2)."""
    first9 = f"212{next(_public_serial):06d}"
    return f"{first9[:6]}-{first9[6:]}{luhn_check_digit(first9)}"


def authority(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "org_number": public_org_number(),
        "name": "Stockholms kommun",
        "level": "local",
        "region": "SE110",
    }
    body.update(overrides)
    return body


def need(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Laddinfrastruktur för elbussar",
        "description": "Snabbladdning av elbussar vid depåer och ändhållplatser.",
        "cpv_codes": ["31158100"],
        "focus_area": "transport",
        "regions": ["SE11"],
        "min_trl": 6,
        "preferred_supplier_types": ["sme"],
        "procedure": "innovation_partnership",
        "respond_by": "2099-06-30",
        "budget_sek": 5_000_000,
    }
    body.update(overrides)
    return body


def need_state(**overrides: Any) -> NeedState:
    """An open need that `supplier_state()` fits (same CPV code, region and focus)."""
    now = datetime.now(UTC)
    data = need()
    data.update(
        id=str(uuid.uuid4()),
        buyer_group_id=str(uuid.uuid4()),
        status="open",
        version=1,
        published_at=now,
        updated_at=now,
    )
    data.update(overrides)
    return NeedState.model_validate(data)


def need_published(state: NeedState | None = None) -> NeedPublished:
    state = state or need_state()
    return new_event(NeedPublished, source="/tests", data=state)
