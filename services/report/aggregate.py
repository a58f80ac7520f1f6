"""Fold the events into the latest state of each aggregate and count them: no I/O here.

The topics carry the full state of an aggregate in every event, so the latest version of
each one is the current view. The window (`since`) applies to the time each thing came
into being: needs by `published_at`, buyer groups and suppliers by `created_at`, removals
by `removed_at`, matches by the time of their first event, alerts by their `at`. What an
item looks like is always its latest state, even when that changed after the window began.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.contracts import topics
from services.contracts.events import (
    AlertState,
    BuyerGroupState,
    CloudEvent,
    DialogueState,
    DialogueSupplierAnswered,
    MatchState,
    NeedState,
    SupplierRemovedState,
    SupplierState,
)
from services.contracts.vocab import NeedStatus, SupplierType, Verdict, supplier_types
from services.report.model import (
    AlertsSection,
    AuthoritiesSection,
    AuthorityRow,
    BuyerGroupsSection,
    Counts,
    DialogueAnswers,
    DialoguesSection,
    JudgedPrecision,
    MatchesSection,
    NeedsSection,
    Report,
    SupplierShares,
    SuppliersSection,
)


@dataclass(frozen=True)
class Authority:
    """An authority as the needs service's operator API lists it."""

    id: str
    level: str
    created_at: datetime
    name: str = ""
    org_number: str = ""
    region: str = ""


@dataclass
class Folded:
    """The latest state of every aggregate seen on the topics."""

    suppliers: dict[str, SupplierState | SupplierRemovedState] = field(default_factory=dict)
    needs: dict[str, NeedState] = field(default_factory=dict)
    groups: dict[str, BuyerGroupState] = field(default_factory=dict)
    matches: dict[str, MatchState] = field(default_factory=dict)
    match_first_seen: dict[str, datetime] = field(default_factory=dict)
    alerts: dict[str, AlertState] = field(default_factory=dict)
    dialogues: dict[str, DialogueState] = field(default_factory=dict)
    # (dialogue id, supplier id) of every supplier that asked or responded in a dialogue.
    dialogue_answers: set[tuple[str, str]] = field(default_factory=set)
    events: int = 0


def _newer(old: Any, new: Any) -> bool:
    # A redelivered or reordered older version must not replace a newer one.
    return old is None or new.version >= old.version


def fold(events: Iterable[tuple[str, CloudEvent[Any]]]) -> Folded:
    """The latest state of each aggregate, from (topic, event) pairs in topic order."""
    out = Folded()
    for topic, event in events:
        out.events += 1
        data = event.data
        if topic == topics.SUPPLIERS and _newer(out.suppliers.get(data.id), data):
            out.suppliers[data.id] = data
        elif topic == topics.NEEDS and _newer(out.needs.get(data.id), data):
            out.needs[data.id] = data
        elif topic == topics.BUYER_GROUPS and _newer(out.groups.get(data.id), data):
            out.groups[data.id] = data
        elif topic == topics.MATCHES:
            seen = out.match_first_seen.get(data.id)
            out.match_first_seen[data.id] = event.time if seen is None else min(seen, event.time)
            if _newer(out.matches.get(data.id), data):
                out.matches[data.id] = data
        elif topic == topics.ALERTS:
            old = out.alerts.get(data.id)
            if old is None or data.at >= old.at:
                out.alerts[data.id] = data
        elif topic == topics.DIALOGUES:
            state = data if isinstance(data, DialogueState) else data.dialogue
            if _newer(out.dialogues.get(state.id), state):
                out.dialogues[state.id] = state
            if isinstance(event, DialogueSupplierAnswered):
                out.dialogue_answers.add((data.dialogue_id, data.supplier_id))
    return out


def _hour(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H")


def _in(since: datetime | None, at: datetime) -> bool:
    return since is None or at >= since


def _counts(values: Iterable[str]) -> Counts:
    return dict(sorted(Counter(values).items()))


def _types(state: SupplierState, this_year: int) -> frozenset[SupplierType]:
    return supplier_types(state.size, state.company_type, state.founded_year, this_year)


def _shares(
    supplier_ids: set[str], suppliers: Mapping[str, SupplierState | SupplierRemovedState], this_year: int
) -> SupplierShares:
    known = [s for i in supplier_ids if isinstance(s := suppliers.get(i), SupplierState)]
    types = [str(t) for s in known for t in _types(s, this_year)]
    counted = Counter(types)

    def share(kind: SupplierType) -> float | None:
        return counted[str(kind)] / len(known) if known else None

    return SupplierShares(
        suppliers=len(supplier_ids),
        known=len(known),
        by_supplier_type=_counts(types),
        sme_share=share(SupplierType.sme),
        startup_share=share(SupplierType.startup),
    )


def _needs(folded: Folded, since: datetime | None) -> NeedsSection:
    needs = [n for n in folded.needs.values() if _in(since, n.published_at)]
    return NeedsSection(
        total=len(needs),
        open=sum(n.status == NeedStatus.open for n in needs),
        closed=sum(n.status == NeedStatus.closed for n in needs),
        cosigned=sum(bool(n.cosigners) for n in needs),
        by_focus_area=_counts(str(n.focus_area) for n in needs),
        by_region=_counts(r for n in needs for r in n.regions),
        by_cpv=_counts(c for n in needs for c in n.cpv_codes),
        by_procedure=_counts(str(n.procedure) for n in needs),
        by_authority_level=_counts(str(level) for n in needs for level in n.authority_levels),
    )


def _authorities(
    authorities: list[Authority], groups: list[BuyerGroupState], since: datetime | None
) -> AuthoritiesSection:
    by_id = {a.id: a for a in authorities}
    members = [by_id[m] for m in sorted({m for g in groups for m in g.member_authority_ids if m in by_id})]
    registered = [a for a in authorities if _in(since, a.created_at)]
    return AuthoritiesSection(
        total=len(registered),
        by_level=_counts(a.level for a in registered),
        in_groups_by_level=_counts(a.level for a in members),
        by_region=_counts(a.region for a in registered if a.region),
        in_groups=[
            AuthorityRow(name=a.name or a.id, org_number=a.org_number, level=a.level, region=a.region)
            for a in sorted(members, key=lambda a: (a.name, a.id))
        ],
    )


def _groups(
    folded: Folded, since: datetime | None, authorities: list[Authority] | None
) -> BuyerGroupsSection:
    groups = [g for g in folded.groups.values() if _in(since, g.created_at)]
    return BuyerGroupsSection(
        total=len(groups),
        by_focus_area=_counts(str(g.focus_area) for g in groups),
        by_authority_level=_counts(str(level) for g in groups for level in g.authority_levels),
        member_authorities=sum(len(g.member_authority_ids) for g in groups),
        authorities=None if authorities is None else _authorities(authorities, groups, since),
    )


def _suppliers(folded: Folded, since: datetime | None, this_year: int) -> SuppliersSection:
    states = folded.suppliers.values()
    active = [s for s in states if isinstance(s, SupplierState) and _in(since, s.created_at)]
    removed = [s for s in states if isinstance(s, SupplierRemovedState) and _in(since, s.removed_at)]
    return SuppliersSection(
        total=len(active),
        removed=len(removed),
        by_size=_counts(str(s.size) for s in active),
        by_company_type=_counts(str(s.company_type) for s in active),
        by_supplier_type=_counts(str(t) for s in active for t in _types(s, this_year)),
        by_trl=_counts(str(s.capabilities.trl) for s in active),
        by_focus_area=_counts(str(f) for s in active for f in s.capabilities.focus_areas),
    )


TOP = 10
_SMALL_OR_YOUNG = frozenset({SupplierType.sme, SupplierType.startup})


def _small_or_young_in_top(folded: Folded, since: datetime | None, this_year: int) -> tuple[int, int]:
    """(needs published in the window with an active match, those of them with an SME or a
    start-up among their TOP best active matches), ranked as the matcher ranks: by score,
    ties by supplier id."""
    by_need: dict[str, list[MatchState]] = {}
    for m in folded.matches.values():
        if m.status == "active":
            by_need.setdefault(m.need_id, []).append(m)
    with_matches = with_small = 0
    for need in folded.needs.values():
        ranked = sorted(by_need.get(need.id, []), key=lambda m: (-m.score, m.supplier_id))[:TOP]
        if not _in(since, need.published_at) or not ranked:
            continue
        with_matches += 1
        if any(
            isinstance(s := folded.suppliers.get(m.supplier_id), SupplierState)
            and _types(s, this_year) & _SMALL_OR_YOUNG
            for m in ranked
        ):
            with_small += 1
    return with_matches, with_small


_FOUND_RELEVANT = frozenset({Verdict.relevant, Verdict.contacted, Verdict.selected})


def _judged_precision(folded: Folded, since: datetime | None) -> dict[str, JudgedPrecision]:
    """Per focus area, the buyers' verdicts on the TOP best active matches of the needs
    published in the window, by score (the matcher's proposal, before a not-relevant verdict
    moved a match to the end of the shortlist): what share of the judged ones the buyers
    found relevant."""
    by_need: dict[str, list[MatchState]] = {}
    for m in folded.matches.values():
        if m.status == "active":
            by_need.setdefault(m.need_id, []).append(m)
    judged: dict[str, list[bool]] = {}
    for need in folded.needs.values():
        if not _in(since, need.published_at):
            continue
        ranked = sorted(by_need.get(need.id, []), key=lambda m: (-m.score, m.supplier_id))[:TOP]
        verdicts = [m.verdict in _FOUND_RELEVANT for m in ranked if m.verdict is not None]
        if verdicts:
            judged.setdefault(need.focus_area.value, []).extend(verdicts)
    return {
        area: JudgedPrecision(judged=len(v), relevant=sum(v), precision=sum(v) / len(v))
        for area, v in sorted(judged.items())
    }


def _matches(folded: Folded, since: datetime | None, this_year: int) -> MatchesSection:
    ids = [i for i, at in folded.match_first_seen.items() if _in(since, at)]
    active = [folded.matches[i] for i in ids if folded.matches[i].status == "active"]
    with_matches, with_small = _small_or_young_in_top(folded, since, this_year)
    return MatchesSection(
        needs_with_matches=with_matches,
        needs_with_sme_or_startup_in_top10=with_small,
        sme_or_startup_in_top10_share=with_small / with_matches if with_matches else None,
        total=len(ids),
        active=len(active),
        withdrawn=len(ids) - len(active),
        by_day=_counts(folded.match_first_seen[i].date().isoformat() for i in ids),
        by_hour=_counts(_hour(folded.match_first_seen[i]) for i in ids),
        matched_suppliers=_shares({m.supplier_id for m in active}, folded.suppliers, this_year),
        judged_precision_top10=_judged_precision(folded, since),
    )


def _alerted_supplier(alert: AlertState, matches: Mapping[str, MatchState]) -> str | None:
    match = matches.get(alert.match_id)
    if match is not None:
        return match.supplier_id
    kind, _, ident = alert.recipient.partition(":")
    return ident if kind == "supplier" else None


def _alerts(folded: Folded, since: datetime | None, this_year: int) -> AlertsSection:
    # Match alerts only: market dialogue notices share the audit topic (match_id "dialogue:...").
    alerts = [
        a for a in folded.alerts.values() if _in(since, a.at) and not a.match_id.startswith("dialogue:")
    ]
    delivered = [a for a in alerts if a.outcome == "delivered"]
    about = {s for a in delivered if (s := _alerted_supplier(a, folded.matches)) is not None}
    return AlertsSection(
        total=len(alerts),
        delivered=len(delivered),
        failed=len(alerts) - len(delivered),
        by_channel=_counts(a.channel for a in delivered),
        by_recipient_kind=_counts(a.recipient.partition(":")[0] for a in delivered),
        by_day=_counts(a.at.date().isoformat() for a in delivered),
        by_hour=_counts(_hour(a.at) for a in delivered),
        alerted_suppliers=_shares(about, folded.suppliers, this_year),
    )


def _dialogues(folded: Folded, since: datetime | None, this_year: int) -> DialoguesSection:
    """The suppliers invited to the dialogues opened in the window, and those of them that
    answered one of the dialogues they were invited to, by whether they are SMEs or young."""
    dialogues = [d for d in folded.dialogues.values() if _in(since, d.opened_at)]
    invited: set[str] = set()
    answered: set[str] = set()
    for d in dialogues:
        for supplier_id in d.invited_supplier_ids:
            invited.add(supplier_id)
            if (d.id, supplier_id) in folded.dialogue_answers:
                answered.add(supplier_id)

    def kinds(supplier_id: str) -> frozenset[SupplierType]:
        state = folded.suppliers.get(supplier_id)
        return _types(state, this_year) if isinstance(state, SupplierState) else frozenset()

    def of(wanted: frozenset[SupplierType] | None) -> DialogueAnswers:
        among = [s for s in invited if wanted is None or kinds(s) & wanted]
        n = sum(s in answered for s in among)
        return DialogueAnswers(invited=len(among), answered=n, share=n / len(among) if among else None)

    return DialoguesSection(
        total=len(dialogues),
        invited=of(None),
        smes=of(frozenset({SupplierType.sme})),
        startups=of(frozenset({SupplierType.startup})),
        smes_or_startups=of(_SMALL_OR_YOUNG),
    )


def build_report(
    folded: Folded,
    *,
    since: datetime | None,
    now: datetime,
    authorities: list[Authority] | None = None,
    skipped: int = 0,
) -> Report:
    """The report over the folded events; `now` fixes the year that makes a start-up."""
    return Report(
        generated_at=now,
        since=since,
        needs=_needs(folded, since),
        buyer_groups=_groups(folded, since, authorities),
        suppliers=_suppliers(folded, since, now.year),
        matches=_matches(folded, since, now.year),
        alerts=_alerts(folded, since, now.year),
        dialogues=_dialogues(folded, since, now.year),
        events_read=folded.events + skipped,
        records_skipped=skipped,
    )
