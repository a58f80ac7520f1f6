"""The pure rules of needs: co-signing, closing, search terms, similarity and cursors."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from services.contracts.errors import StateConflict
from services.contracts.events import NeedState
from services.needs import rules
from tests.factories import need

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def state(**overrides: object) -> NeedState:
    data = need()
    data.update(
        id=str(uuid.uuid4()),
        buyer_group_id="g-owner",
        status="open",
        version=1,
        published_at=NOW,
        updated_at=NOW,
    )
    data.update(overrides)
    return NeedState.model_validate(data)


def test_cosigning_is_idempotent_and_not_for_the_owner_or_a_closed_need() -> None:
    need_state = state()
    signed = rules.cosign(need_state, "g-other", NOW + timedelta(seconds=1))
    assert signed is not None
    assert signed.cosigners == ["g-other"] and signed.version == 2
    assert rules.cosign(signed, "g-other", NOW) is None
    with pytest.raises(StateConflict, match="its own need"):
        rules.cosign(need_state, "g-owner", NOW)
    closed = rules.close(need_state, "done", NOW)
    with pytest.raises(StateConflict, match="closed"):
        rules.cosign(closed, "g-other", NOW)


def test_closing_sets_the_reason_once() -> None:
    closed = rules.close(state(), "Upphandlad", NOW)
    assert closed.status == "closed" and closed.closed_reason == "Upphandlad" and closed.version == 2
    with pytest.raises(StateConflict):
        rules.close(closed, "again", NOW)
    with pytest.raises(StateConflict):
        rules.apply_patch(closed, {"min_trl": 3}, NOW)


def test_a_patch_that_changes_nothing_is_no_new_version() -> None:
    need_state = state()
    assert rules.apply_patch(need_state, {"min_trl": need_state.min_trl}, NOW) is None
    changed = rules.apply_patch(need_state, {"min_trl": 9}, NOW + timedelta(seconds=1))
    assert changed is not None and changed.version == 2 and changed.min_trl == 9


def test_backing_lists_the_levels_in_order() -> None:
    backing = rules.Backing(3, {"local": 2, "national": 1, "regional": 0})
    assert backing.levels == ["national", "local"]
    assert rules.with_backing(state(), backing).authority_levels == ["national", "local"]


def test_respond_by_must_be_after_today() -> None:
    today = date(2026, 11, 23)
    assert rules.respond_by_in_future(date(2026, 11, 24), today) == date(2026, 11, 24)
    with pytest.raises(ValueError, match="after today"):
        rules.respond_by_in_future(today, today)


def test_search_terms_of_a_need() -> None:
    assert rules.cpv_with_ancestors(["34144910"]) == [
        "34144910",
        "34144900",
        "34144000",
        "34140000",
        "34100000",
        "34000000",
    ]
    assert rules.cpv_branches(["34144910", "34000000", "33100000"]) == [
        "34100000",
        "34000000",
        "33100000",
        "33000000",
    ]
    assert rules.region_with_parents("se110") == ["SE", "SE1", "SE11", "SE110"]
    assert rules.regions_with_parents(["SE11", "SE12"]) == ["SE", "SE1", "SE11", "SE12"]
    assert rules.significant_words("Elbussar och laddning för 2030", "ELBUSSAR vid depåer") == [
        "elbussar",
        "laddning",
        "depåer",
    ]
    assert rules.query_terms("  Elbussar  Depå ") == ["elbussar", "depå"]


def test_similarity_weighs_branches_over_words() -> None:
    same = rules.similarity(["34100000", "34000000"], ["elbussar"], ["34100000", "34000000"], ["tåg"])
    assert same.score == pytest.approx(0.6)
    assert same.shared_cpv_branches == ["34100000", "34000000"] and same.shared_words == []
    words = rules.similarity(["33000000"], ["elbussar", "depåer"], ["34000000"], ["elbussar", "depåer"])
    assert words.score == pytest.approx(0.4) and words.shared_words == ["elbussar", "depåer"]
    assert rules.similarity([], [], [], []).score == 0


def test_cursors_round_trip_and_refuse_garbage() -> None:
    ident = uuid.uuid4()
    at = datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC)
    assert rules.decode_cursor(rules.encode_cursor(at, str(ident))) == (at, ident)
    for bad in ("garbage", "", "W10", rules.encode_cursor(at, "x")):
        with pytest.raises(ValueError, match="next_cursor"):
            rules.decode_cursor(bad)
