"""Consortium suggestions: members that together cover a two-code need, SMEs first."""

from __future__ import annotations

from services.matcher.consortia import member, suggest
from services.matcher.engine import MatchEngine, need_profile
from services.matcher.scoring import score_pair
from tests import factories

CHARGING, BUSES = "31158100", "34144910"  # battery chargers; electric buses


def _supplier(codes: list[str], size: str = "small", regions: tuple[str, ...] = ("SE11",), **caps: object):  # type: ignore[no-untyped-def]
    body = factories.registration()["capabilities"]
    return factories.supplier_state(
        size=size,
        founded_year=1990,
        capabilities={**body, "cpv_codes": codes, "regions": list(regions), **caps},
    )


def _members(engine: MatchEngine, need):  # type: ignore[no-untyped-def]
    return [member(need, s, scored) for s, scored in engine.consortium_candidates(need)]


def test_two_suppliers_each_covering_one_code_make_a_consortium_an_sme_first() -> None:
    chargers = _supplier([CHARGING], size="large")
    buses = _supplier([BUSES])
    unrelated = _supplier(["72000000"])  # IT services: relates to neither code
    engine = MatchEngine()
    engine.load_suppliers([chargers, buses, unrelated])
    need = need_profile(factories.need_state(cpv_codes=[CHARGING, BUSES], min_trl=6))

    found = suggest(need, _members(engine, need))

    assert found, "the two together cover both codes, which neither does alone"
    best = found[0]
    assert {m.supplier_id for m in best.members} == {chargers.id, buses.id}
    assert best.members[0].supplier_id == buses.id  # the SME first
    assert set(best.codes) == {CHARGING, BUSES} and best.coverage > best.best_single
    assert unrelated.id not in {m.supplier_id for c in found for m in c.members}


def test_no_consortium_when_one_supplier_covers_everything() -> None:
    both = _supplier([CHARGING, BUSES])
    chargers = _supplier([CHARGING])
    engine = MatchEngine()
    engine.load_suppliers([both, chargers])
    need = need_profile(factories.need_state(cpv_codes=[CHARGING, BUSES]))
    assert suggest(need, _members(engine, need)) == []


def test_a_member_covers_the_regions_it_serves_and_maturity_is_a_condition() -> None:
    north = _supplier([CHARGING], regions=("SE33",))
    south = _supplier([CHARGING], regions=("SE22",))
    immature = _supplier([BUSES], regions=("SE33",), trl=3)
    engine = MatchEngine()
    engine.load_suppliers([north, south, immature])
    need = need_profile(factories.need_state(cpv_codes=[CHARGING], regions=["SE33", "SE22"], min_trl=6))

    found = suggest(need, _members(engine, need))

    assert [sorted(m.supplier_id for m in c.members) for c in found] == [sorted([north.id, south.id])]
    assert found[0].regions == ("SE33", "SE22")
    profile = engine.supplier(north.id)
    assert profile is not None
    assert member(need, profile, score_pair(need, profile, 0.35)).regions == ("SE33",)
