"""Counting the report from in-memory events: folding to the latest state, the window,
and the joins from alerts through matches to the suppliers they are about."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.contracts import topics
from services.contracts.events import (
    AlertDelivered,
    AlertFailed,
    AlertState,
    BuyerGroupCreated,
    BuyerGroupState,
    BuyerGroupUpdated,
    CloudEvent,
    DialogueOpened,
    DialogueParticipation,
    DialogueState,
    DialogueSupplierAnswered,
    MatchExplanation,
    MatchFound,
    MatchJudged,
    MatchState,
    MatchUpdated,
    MatchWithdrawn,
    NeedClosed,
    NeedPublished,
    NeedState,
    NeedUpdated,
    SupplierRegistered,
    SupplierRemoved,
    SupplierRemovedState,
    SupplierUpdated,
    alert_id,
    match_id,
    new_event,
    topic_for,
)
from services.report.aggregate import Authority, build_report, fold
from tests.factories import supplier_state

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
DAY1 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
DAY2 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
SINCE = datetime(2026, 11, 10, tzinfo=UTC)


def ev(cls: type[CloudEvent[Any]], data: Any, at: datetime) -> tuple[str, CloudEvent[Any]]:
    return topic_for(cls), new_event(cls, source="/tests", data=data, time=at)


def need(at: datetime, **overrides: Any) -> NeedState:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "buyer_group_id": "g1",
        "title": "Laddinfrastruktur",
        "description": "Snabbladdning",
        "cpv_codes": ["31158100"],
        "focus_area": "transport",
        "regions": ["SE11"],
        "min_trl": 6,
        "procedure": "innovation_partnership",
        "respond_by": date(2099, 1, 1),
        "status": "open",
        "authority_levels": ["local"],
        "version": 1,
        "published_at": at,
        "updated_at": at,
    }
    values.update(overrides)
    return NeedState.model_validate(values)


def group(at: datetime, **overrides: Any) -> BuyerGroupState:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "name": "Elbussgruppen",
        "focus_area": "transport",
        "member_authority_ids": ["a1"],
        "authority_levels": ["local"],
        "version": 1,
        "created_at": at,
        "updated_at": at,
    }
    values.update(overrides)
    return BuyerGroupState.model_validate(values)


def match(
    need_id: str, supplier_id: str, at: datetime, version: int = 1, status: str = "active"
) -> MatchState:
    return MatchState(
        id=match_id(need_id, supplier_id),
        need_id=need_id,
        supplier_id=supplier_id,
        score=0.8,
        version=version,
        status=status,  # type: ignore[arg-type]
        explanation=MatchExplanation(region_verdict="ok", trl_verdict="ok"),
        updated_at=at,
    )


def alert(
    recipient: str, m: MatchState, at: datetime, outcome: str = "delivered", channel: str = "webhook"
) -> AlertState:
    return AlertState(
        id=alert_id(recipient, m.id, channel),
        recipient=recipient,
        match_id=m.id,
        match_version=m.version,
        channel=channel,  # type: ignore[arg-type]
        outcome=outcome,  # type: ignore[arg-type]
        attempts=1,
        at=at,
    )


def test_needs_fold_to_their_latest_state_and_count_by_area_region_procedure() -> None:
    a = need(DAY1)
    b = need(DAY2, focus_area="health_care", regions=["SE11", "SE232"], procedure="pre_commercial")
    b2 = b.model_copy(update={"cosigners": ["g2"], "authority_levels": ["local", "regional"], "version": 2})
    b3 = b2.model_copy(update={"status": "closed", "version": 3})
    events = [ev(NeedPublished, a, DAY1), ev(NeedPublished, b, DAY2), ev(NeedUpdated, b2, DAY2)]
    # An older version arriving late must not undo the newer one.
    events += [ev(NeedClosed, b3, DAY2), ev(NeedUpdated, b2, DAY2)]
    report = build_report(fold(events), since=None, now=NOW)
    needs = report.needs
    assert (needs.total, needs.open, needs.closed, needs.cosigned) == (2, 1, 1, 1)
    assert needs.by_focus_area == {"health_care": 1, "transport": 1}
    assert needs.by_region == {"SE11": 2, "SE232": 1}
    assert needs.by_procedure == {"innovation_partnership": 1, "pre_commercial": 1}
    assert needs.by_authority_level == {"local": 2, "regional": 1}
    assert build_report(fold(events), since=SINCE, now=NOW).needs.total == 1


def test_suppliers_by_size_type_and_trl_and_removal_takes_them_out() -> None:
    young = supplier_state(size="micro", founded_year=2024, created_at=DAY2, updated_at=DAY2)
    old = supplier_state(size="large", company_type="industry_service", founded_year=1990, created_at=DAY1)
    gone = supplier_state(created_at=DAY1)
    moved = young.model_copy(
        update={"version": 2, "capabilities": young.capabilities.model_copy(update={"trl": 9})}
    )
    removed = SupplierRemovedState(id=gone.id, version=2, removed_at=DAY2)
    events = [
        ev(SupplierRegistered, young, DAY2),
        ev(SupplierRegistered, old, DAY1),
        ev(SupplierRegistered, gone, DAY1),
        ev(SupplierUpdated, moved, DAY2),
        ev(SupplierRemoved, removed, DAY2),
    ]
    suppliers = build_report(fold(events), since=None, now=NOW).suppliers
    assert (suppliers.total, suppliers.removed) == (2, 1)
    assert suppliers.by_size == {"large": 1, "micro": 1}
    assert suppliers.by_company_type == {"industrial": 1, "industry_service": 1}
    assert suppliers.by_supplier_type == {
        "industrial": 1,
        "industry_service": 1,
        "large": 1,
        "sme": 1,
        "startup": 1,
    }
    assert suppliers.by_trl == {"7": 1, "9": 1}
    in_window = build_report(fold(events), since=SINCE, now=NOW).suppliers
    assert (in_window.total, in_window.removed, in_window.by_size) == (1, 1, {"micro": 1})


def test_buyer_groups_and_their_authorities_by_level() -> None:
    g1 = group(DAY1, member_authority_ids=["a1", "a2"], authority_levels=["local", "national"])
    g2 = group(
        DAY2,
        focus_area="health_care",
        member_authority_ids=["a2", "a3"],
        authority_levels=["national", "regional"],
    )
    g2b = g2.model_copy(update={"name": "Vårdgruppen", "version": 2})
    events = [
        ev(BuyerGroupCreated, g1, DAY1),
        ev(BuyerGroupCreated, g2, DAY2),
        ev(BuyerGroupUpdated, g2b, DAY2),
    ]
    authorities = [
        Authority("a1", "local", DAY1),
        Authority("a2", "national", DAY1),
        Authority("a3", "regional", DAY2),
        Authority("a4", "local", DAY2),
    ]
    groups = build_report(fold(events), since=None, now=NOW, authorities=authorities).buyer_groups
    assert (groups.total, groups.member_authorities) == (2, 4)
    assert groups.by_focus_area == {"health_care": 1, "transport": 1}
    assert groups.by_authority_level == {"local": 1, "national": 2, "regional": 1}
    assert groups.authorities is not None
    assert groups.authorities.total == 4
    assert groups.authorities.by_level == {"local": 2, "national": 1, "regional": 1}
    assert groups.authorities.in_groups_by_level == {"local": 1, "national": 1, "regional": 1}
    windowed = build_report(fold(events), since=SINCE, now=NOW, authorities=authorities).buyer_groups
    assert windowed.total == 1 and windowed.authorities is not None
    assert windowed.authorities.by_level == {"local": 1, "regional": 1}
    assert windowed.authorities.in_groups_by_level == {"national": 1, "regional": 1}
    assert build_report(fold(events), since=None, now=NOW).buyer_groups.authorities is None


def test_matches_and_alerts_over_time_with_shares_of_smes_and_startups() -> None:
    startup = supplier_state(size="small", founded_year=2023)
    large = supplier_state(size="large", founded_year=1950)
    removed = SupplierRemovedState(id=str(uuid.uuid4()), version=2, removed_at=DAY1)
    m1 = match("n1", startup.id, DAY1)
    m1b = match("n1", startup.id, DAY2, version=2)
    m2 = match("n1", large.id, DAY2)
    m3 = match("n2", large.id, DAY2)
    m3w = match("n2", large.id, DAY2, version=2, status="withdrawn")
    m4 = match("n2", removed.id, DAY2)
    events = [
        ev(SupplierRegistered, startup, DAY1),
        ev(SupplierRegistered, large, DAY1),
        ev(SupplierRemoved, removed, DAY1),
        ev(MatchFound, m1, DAY1),
        ev(MatchUpdated, m1b, DAY2),
        ev(MatchFound, m2, DAY2),
        ev(MatchFound, m3, DAY2),
        ev(MatchWithdrawn, m3w, DAY2),
        ev(MatchFound, m4, DAY2),
        # The group hears of m1 and m2; the start-up of m1; a failure and then a retry that worked.
        ev(AlertDelivered, alert("buyer_group:g1", m1, DAY1), DAY1),
        ev(AlertDelivered, alert("buyer_group:g1", m2, DAY2, channel="inbox"), DAY2),
        ev(AlertFailed, alert(f"supplier:{startup.id}", m1, DAY2, outcome="failed"), DAY2),
        ev(AlertDelivered, alert(f"supplier:{startup.id}", m1, DAY2 + timedelta(minutes=1)), DAY2),
        ev(AlertFailed, alert("buyer_group:g1", m4, DAY2, outcome="failed"), DAY2),
    ]
    report = build_report(fold(events), since=None, now=NOW)
    matches = report.matches
    assert (matches.total, matches.active, matches.withdrawn) == (4, 3, 1)
    assert matches.by_day == {"2026-11-01": 1, "2026-11-20": 3}
    shares = matches.matched_suppliers
    assert (shares.suppliers, shares.known) == (3, 2)
    assert shares.sme_share == 0.5 and shares.startup_share == 0.5
    alerts = report.alerts
    assert (alerts.total, alerts.delivered, alerts.failed) == (4, 3, 1)
    assert alerts.by_channel == {"inbox": 1, "webhook": 2}
    assert alerts.by_recipient_kind == {"buyer_group": 2, "supplier": 1}
    assert alerts.by_day == {"2026-11-01": 1, "2026-11-20": 2}
    about = alerts.alerted_suppliers
    assert (about.suppliers, about.known, about.sme_share, about.startup_share) == (2, 2, 0.5, 0.5)

    windowed = build_report(fold(events), since=SINCE, now=NOW)
    assert (windowed.matches.total, windowed.alerts.delivered) == (3, 2)
    # The group's alert about m1 came before the window; the start-up's own alert about it did not.
    about = windowed.alerts.alerted_suppliers
    assert about.by_supplier_type == {"industrial": 2, "large": 1, "sme": 1, "startup": 1}


def test_shares_are_none_without_known_suppliers() -> None:
    report = build_report(fold([]), since=None, now=NOW, skipped=3)
    assert report.matches.matched_suppliers.sme_share is None
    assert report.alerts.alerted_suppliers.startup_share is None
    assert (report.events_read, report.records_skipped) == (3, 3)


def test_the_topics_read_are_the_event_topics() -> None:
    from services.report.source import REPORT_TOPICS

    assert set(REPORT_TOPICS) == {
        topics.SUPPLIERS,
        topics.NEEDS,
        topics.BUYER_GROUPS,
        topics.MATCHES,
        topics.ALERTS,
        topics.DIALOGUES,
    }


def scored(need_id: str, supplier_id: str, score: float, status: str = "active") -> MatchState:
    return match(need_id, supplier_id, DAY2, status=status).model_copy(update={"score": score})


def test_the_share_of_needs_with_an_sme_or_start_up_among_their_ten_best_matches() -> None:
    large = [supplier_state(size="large", founded_year=1950) for _ in range(11)]
    small = supplier_state(size="small", founded_year=1990)  # an SME, not young
    young_large = supplier_state(size="large", founded_year=2024)  # a start-up, not an SME
    n_small_11th, n_small_top, n_young, n_withdrawn, n_none, n_old = (
        need(DAY2),
        need(DAY2),
        need(DAY2),
        need(DAY2),
        need(DAY2),
        need(DAY1),
    )
    events = [ev(SupplierRegistered, s, DAY1) for s in [*large, small, young_large]]
    events += [
        ev(NeedPublished, n, n.published_at)
        for n in (n_small_11th, n_small_top, n_young, n_withdrawn, n_none, n_old)
    ]
    matches = [
        # Ten large suppliers score above the SME: it is 11th, out of the top 10.
        *(scored(n_small_11th.id, s.id, 0.9) for s in large[:10]),
        scored(n_small_11th.id, small.id, 0.5),
        *(scored(n_small_top.id, s.id, 0.5) for s in large[:10]),
        scored(n_small_top.id, small.id, 0.95),
        scored(n_young.id, young_large.id, 0.4),
        scored(n_withdrawn.id, small.id, 0.9, status="withdrawn"),
        scored(n_withdrawn.id, large[0].id, 0.5),
        scored(n_old.id, small.id, 0.9),  # published before the window
    ]
    events += [ev(MatchFound if m.status == "active" else MatchWithdrawn, m, DAY2) for m in matches]
    report = build_report(fold(events), since=None, now=NOW).matches
    # n_none has no match; n_old counts without a window.
    assert report.needs_with_matches == 5
    assert report.needs_with_sme_or_startup_in_top10 == 3  # n_small_top, n_young, n_old
    assert report.sme_or_startup_in_top10_share == 3 / 5
    windowed = build_report(fold(events), since=SINCE, now=NOW).matches
    assert (windowed.needs_with_matches, windowed.needs_with_sme_or_startup_in_top10) == (4, 2)
    assert build_report(fold([]), since=None, now=NOW).matches.sme_or_startup_in_top10_share is None


def test_needs_by_cpv_code_and_authorities_by_name_and_region() -> None:
    a = need(DAY1, cpv_codes=["31158100", "34144910"])
    b = need(DAY2, cpv_codes=["31158100"])
    g = group(DAY2, member_authority_ids=["a2", "a1"])
    events = [ev(NeedPublished, a, DAY1), ev(NeedPublished, b, DAY2), ev(BuyerGroupCreated, g, DAY2)]
    authorities = [
        Authority("a1", "local", DAY1, name="Stockholms kommun", org_number="212000-0142", region="SE110"),
        Authority("a2", "regional", DAY2, name="Region Skåne", org_number="232100-0255", region="SE224"),
        Authority("a3", "local", DAY2, name="Göteborgs kommun", org_number="212000-1355", region="SE232"),
    ]
    report = build_report(fold(events), since=None, now=NOW, authorities=authorities)
    assert report.needs.by_cpv == {"31158100": 2, "34144910": 1}
    section = report.buyer_groups.authorities
    assert section is not None
    assert section.by_region == {"SE110": 1, "SE224": 1, "SE232": 1}
    assert [(r.name, r.region) for r in section.in_groups] == [
        ("Region Skåne", "SE224"),
        ("Stockholms kommun", "SE110"),
    ]


def test_buyers_verdicts_on_the_ten_best_make_a_precision_per_focus_area() -> None:
    transport, health = need(DAY2), need(DAY2, focus_area="health_care")
    events = [ev(NeedPublished, n, DAY2) for n in (transport, health)]
    best = [scored(transport.id, f"s{i}", 0.9 - i / 100) for i in range(12)]
    verdicts = {
        0: "selected",
        1: "not_relevant",
        2: "relevant",
        11: "relevant",
    }  # the 12th is out of the top 10
    judged = [
        m.model_copy(update={"version": 2, "verdict": verdicts[i]}) if i in verdicts else m
        for i, m in enumerate(best)
    ]
    events += [ev(MatchFound, m, DAY2) for m in best]
    events += [ev(MatchJudged, m, DAY2) for m in judged if m.verdict is not None]
    events.append(ev(MatchFound, scored(health.id, "s0", 0.7), DAY2))

    precision = build_report(fold(events), since=None, now=NOW).matches.judged_precision_top10

    assert list(precision) == ["transport"]  # no verdict on the health need
    assert (precision["transport"].judged, precision["transport"].relevant) == (3, 2)
    assert precision["transport"].precision == 2 / 3


def dialogue(at: datetime, invited: list[str], joined: tuple[str, ...] = ()) -> DialogueState:
    return DialogueState(
        id=str(uuid.uuid4()),
        need_id=str(uuid.uuid4()),
        buyer_group_ids=["g1"],
        title="Marknadsdialog",
        agenda="",
        open_to_all=bool(joined),
        closes_at=at + timedelta(days=14),
        status="open",
        invited_supplier_ids=invited,
        joined_supplier_ids=list(joined),
        version=1,
        opened_at=at,
        updated_at=at,
    )


def answered(d: DialogueState, supplier_id: str, at: datetime) -> tuple[str, CloudEvent[Any]]:
    data = DialogueParticipation(dialogue_id=d.id, supplier_id=supplier_id, at=at, dialogue=d)
    return ev(DialogueSupplierAnswered, data, at)


def test_how_many_invited_smes_and_young_firms_answered_a_dialogue() -> None:
    sme = supplier_state(size="small", founded_year=2015)
    young = supplier_state(size="large", founded_year=2024)
    big = supplier_state(size="large", founded_year=1990)
    early_sme = supplier_state(size="micro", founded_year=2010)
    events = [ev(SupplierRegistered, s, DAY1) for s in (sme, young, big, early_sme)]
    first = dialogue(DAY2, [sme.id, young.id, big.id])
    second = dialogue(DAY2, [sme.id])
    joined_by_young = dialogue(DAY2, [big.id], joined=(young.id,))
    early = dialogue(DAY1, [early_sme.id])
    events += [ev(DialogueOpened, d, d.opened_at) for d in (first, second, joined_by_young, early)]
    events += [
        answered(second, sme.id, DAY2),  # invited to both: answering one counts
        answered(first, big.id, DAY2),
        answered(joined_by_young, young.id, DAY2),  # joined uninvited: not an invited answer
        answered(early, early_sme.id, DAY1),
    ]

    windowed = build_report(fold(events), since=SINCE, now=NOW).dialogues
    assert windowed.total == 3
    assert (windowed.invited.invited, windowed.invited.answered) == (3, 2)
    assert (windowed.smes.invited, windowed.smes.answered, windowed.smes.share) == (1, 1, 1.0)
    assert (windowed.startups.invited, windowed.startups.answered, windowed.startups.share) == (1, 0, 0.0)
    assert (windowed.smes_or_startups.invited, windowed.smes_or_startups.answered) == (2, 1)

    everything = build_report(fold(events), since=None, now=NOW).dialogues
    assert (everything.total, everything.smes.invited, everything.smes.answered) == (4, 2, 2)
    empty = build_report(fold([]), since=None, now=NOW).dialogues
    assert (empty.total, empty.smes_or_startups.invited, empty.smes_or_startups.share) == (0, 0, None)
