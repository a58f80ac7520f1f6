"""The demo data set is valid input for the APIs and covers what the demo promises."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

from services.contracts.events import AlertSettings, Capabilities
from services.contracts.orgnr import is_public_body, normalize_org_number
from services.contracts.vocab import AuthorityLevel, FocusArea, Procedure, SupplierType
from services.demo import data
from services.demo.loader import _COMPANY_PREFIX, _PUBLIC_PREFIX, alerts, need_body, org_number, supplier_body

AREAS = {"transport", "health_care", "community_building"}


def test_org_numbers_drawn_are_valid_public_bodies_or_companies() -> None:
    rng = random.Random(7)
    for level, prefix in _PUBLIC_PREFIX.items():
        number = org_number(prefix, rng)
        assert is_public_body(number), (level, number)
    for _ in range(200):
        number = org_number(_COMPANY_PREFIX, rng)
        assert normalize_org_number(number) == number and not is_public_body(number)


def test_authorities_at_every_level_in_groups_that_exist() -> None:
    levels = Counter(AuthorityLevel(a.level) for a in data.AUTHORITIES)
    assert set(levels) == set(AuthorityLevel)
    keys = {a.key for a in data.AUTHORITIES}
    assert 3 <= len(data.GROUPS) <= 4
    for group in data.GROUPS:
        assert set(group.members) <= keys and FocusArea(group.focus_area)
    assert {g.focus_area for g in data.GROUPS} == AREAS


def test_suppliers_are_valid_registrations_in_both_languages() -> None:
    assert 45 <= len(data.SUPPLIERS) <= 55
    assert len({s.name for s in data.SUPPLIERS}) == len(data.SUPPLIERS)
    settings = alerts("http://127.0.0.1:1/hooks/x", "s" * 32, "sv")
    for s in data.SUPPLIERS:
        body = supplier_body(s, "559000-0001", settings)
        Capabilities.model_validate(body["capabilities"])  # CPV, NUTS, TRL as the API checks them
        AlertSettings.model_validate(body["alerts"])
        assert 1800 <= s.founded_year <= datetime.now(UTC).year
    assert {s.focus_area for s in data.SUPPLIERS} == AREAS
    assert Counter(s.language for s in data.SUPPLIERS).keys() == {"sv", "en"}
    assert {s.size for s in data.SUPPLIERS} == {"micro", "small", "medium", "large"}


def test_needs_are_valid_across_the_three_areas_with_cosigning() -> None:
    from services.contracts.events import NeedState

    assert len(data.NEEDS) == 10
    groups = {g.key for g in data.GROUPS}
    today = datetime.now(UTC)
    for n in data.NEEDS:
        body = need_body(n, today)
        NeedState.model_validate(
            {
                **body,
                "id": "n",
                "buyer_group_id": "g",
                "status": "open",
                "version": 1,
                "published_at": today,
                "updated_at": today,
            }
        )
        assert Procedure(n.procedure) and all(SupplierType(t) for t in n.preferred_supplier_types)
        assert n.group in groups and set(n.cosigned_by) <= groups - {n.group}
    assert {n.focus_area for n in data.NEEDS} == AREAS
    assert any(n.cosigned_by for n in data.NEEDS)
