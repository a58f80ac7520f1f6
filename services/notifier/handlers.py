"""Event handlers of the notifier: learn recipients, needs and matches, and turn each match
into alert threads (the inbox) and push deliveries, in the consumer's transaction. Market
dialogues' invitations and answers become notices in the in-app inbox.

Events of different topics arrive in any order. A match whose need is not known yet is
kept, and its buyer-group alerts are made when the need arrives; a delivery to a recipient
whose settings are not known yet waits (`DeliveryState.WAITING`) and is routed when they arrive.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.contracts.events import (
    BuyerGroupEvent,
    DialogueEvent,
    DialogueQuestionAnswered,
    DialogueSupplierInvited,
    MatchEvent,
    NeedEvent,
    SupplierEvent,
    SupplierRemoved,
    alert_id,
)
from services.contracts.vocab import AlertMode, Language, supplier_types
from services.infra import erasure
from services.infra.db import Connection
from services.infra.errors import NotFound
from services.notifier import mail, policy, render, repository
from services.notifier.metrics import NotifierMetrics
from services.notifier.policy import DeliveryKind, DeliveryState
from services.notifier.render import MatchView
from services.notifier.repository import MatchRow, NeedRow, NewDelivery

SCHEMA = "notifier"


@dataclass
class Handlers:
    metrics: NotifierMetrics
    smtp: bool  # e-mail is a channel only when an SMTP server is configured
    forum_url: str  # notices link to the need's page in the web forum

    async def on_supplier_events(self, conn: Connection, events: list[SupplierEvent]) -> None:
        # The consumer has marked removed suppliers erased (erased_principals) in this
        # transaction: from here on their replayed or late events are refused.
        if any(isinstance(e, SupplierRemoved) for e in events):
            await repository.lock_rendering(conn, exclusive=True)
        await repository.lock_recipients(conn, [f"supplier:{e.subject}" for e in events], exclusive=True)
        for event in events:
            await self._apply_supplier(conn, event)

    async def _apply_supplier(self, conn: Connection, event: SupplierEvent) -> None:
        principal = f"supplier:{event.subject}"
        if isinstance(event, SupplierRemoved):
            await repository.erase_recipient(conn, principal)
            # The copies of its matches and the bodies already rendered for buyer groups lose
            # the supplier's name and the sentence quoted from its profile.
            await repository.forget_passages(conn, event.subject)
            bodies = await repository.bodies_about_supplier(conn, event.subject)
            scrubbed = [(i, b) for i, body in bodies if (b := render.without_supplier(body, event.subject))]
            await repository.replace_bodies(conn, scrubbed)
            return
        s = event.data
        types = sorted(supplier_types(s.size, s.company_type, s.founded_year, datetime.now(UTC).year))
        if await repository.upsert_recipient(
            conn,
            principal,
            kind="supplier",
            version=s.version,
            alerts=s.alerts,
            name=s.name,
            supplier_types=types,
            profile=repository.SupplierCard(s.size.value, s.company_type.value, s.contact_email),
        ):
            await self._settings_changed(conn, principal, s.alerts.mode)

    async def on_buyer_group_events(self, conn: Connection, events: list[BuyerGroupEvent]) -> None:
        await repository.lock_recipients(conn, [f"buyer_group:{e.data.id}" for e in events], exclusive=True)
        for event in events:
            g = event.data
            principal = f"buyer_group:{g.id}"
            if await repository.upsert_recipient(
                conn, principal, kind="buyer_group", version=g.version, alerts=g.alerts, name=g.name
            ):
                await self._settings_changed(conn, principal, g.alerts.mode)

    async def on_need_events(self, conn: Connection, events: list[NeedEvent]) -> None:
        await repository.lock_needs(conn, [e.data.id for e in events], exclusive=True)
        changed = [e.data.id for e in events if await repository.upsert_need(conn, e.data)]
        # Matches that arrived before the need (or new co-signers) get their group alerts now.
        matches = await repository.matches_of_needs(conn, changed) if changed else []
        if matches:
            await self._fan_out(conn, matches)

    async def on_match_events(self, conn: Connection, events: list[MatchEvent]) -> None:
        """A polled batch at once: a need's matches arrive together, and set-based statements
        apply them for a fraction of the per-event cost."""
        await repository.lock_needs(conn, [e.data.need_id for e in events], exclusive=False)
        latest: dict[str, MatchEvent] = {}
        for event in events:
            seen = latest.get(event.data.id)
            if seen is None or event.data.version > seen.data.version:
                latest[event.data.id] = event
        rows = await repository.upsert_matches(conn, [(e.data, e.time) for e in latest.values()])
        withdrawn = [r.id for r in rows if not r.active]
        if withdrawn:
            await repository.withdraw(conn, withdrawn)
        # A supplier the need's buyers judged not relevant hears no more about the need.
        judged = [r.id for r in rows if r.active and r.judged_not_relevant]
        if judged:
            await repository.withdraw(conn, judged, reason="not_relevant")
        active = [r for r in rows if r.active and not r.judged_not_relevant]
        if active:
            await self._fan_out(conn, active)

    async def _settings_changed(self, conn: Connection, principal: str, mode: AlertMode) -> None:
        held = await repository.waiting(conn, principal)
        if held:
            await self._route_held(conn, principal, held)
        released = await repository.release_digest(conn, principal) if mode == AlertMode.instant else 0
        if held or released:
            await repository.wake_worker(conn)

    async def _route_held(self, conn: Connection, principal: str, held: list[Any]) -> None:
        """Route the deliveries that waited for the recipient's settings."""
        recipient = (await repository.recipients(conn, [principal]))[principal]
        routes: list[tuple[str, DeliveryState, str | None]] = []
        for row in held:
            if row["kind"] == DeliveryKind.NOTICE:
                chosen = policy.route_notice(recipient, row["channel"], smtp=self.smtp)
            else:
                chosen = policy.route(
                    recipient, row["channel"], row["score"], active=row["status"] == "active", smtp=self.smtp
                )
            chosen = chosen or policy.Route(DeliveryState.SKIPPED, "not_configured")
            if chosen.state == DeliveryState.SUPPRESSED and chosen.reason:
                self.metrics.suppress(chosen.reason)
            routes.append((row["id"], chosen.state, chosen.reason))
        await repository.set_routes(conn, routes)

    async def _fan_out(self, conn: Connection, matches: list[MatchRow]) -> None:
        """Threads and deliveries for the matches' recipients; once per transaction, since it
        takes the recipients' locks (after the caller's need locks)."""
        # A late match of an erased supplier alerts no one: the supplier is gone.
        erased = await erasure.erased_among(conn, SCHEMA, [f"supplier:{m.supplier_id}" for m in matches])
        matches = [m for m in matches if f"supplier:{m.supplier_id}" not in erased]
        if not matches:
            return
        known_needs = await repository.needs(conn, [m.need_id for m in matches])
        plan = [(m, _principals(m, known_needs.get(m.need_id))) for m in matches]
        everyone = sorted({p for _, ps in plan for p in ps})
        await repository.lock_recipients(conn, everyone, exclusive=False)
        recipients = await repository.recipients(conn, everyone)
        threads: list[tuple[str, str, str]] = []
        deliveries: list[NewDelivery] = []
        for m, principals in plan:
            for principal in principals:
                threads.append((alert_id(principal, m.id, "inbox"), principal, m.id))
                for channel in policy.CHANNELS:
                    chosen = policy.route(
                        recipients.get(principal), channel, m.score, active=m.active, smtp=self.smtp
                    )
                    if chosen is not None:
                        deliveries.append(
                            NewDelivery(
                                id=alert_id(principal, m.id, channel),
                                principal=principal,
                                channel=channel,
                                match_id=m.id,
                                match_version=m.version,
                                score=m.score,
                                state=chosen.state,
                                reason=chosen.reason,
                                event_time=m.event_time,
                            )
                        )
        opened = await repository.add_threads(conn, threads)
        written = await repository.put_deliveries(conn, deliveries)
        if any(state == DeliveryState.QUEUED for state, _ in written):
            await repository.wake_worker(conn)
        # Counted in the transaction: a rollback that replays the batch may count twice, which
        # a counter tolerates better than missing a suppression.
        for state, reason in written:
            if state == DeliveryState.SUPPRESSED and reason:
                self.metrics.suppress(reason)
        by_id = {m.id: m for m in matches}
        self._count_inbox(opened, by_id, recipients)
        self._count_suppliers(opened, by_id, recipients)

    async def on_dialogue_events(self, conn: Connection, events: list[DialogueEvent]) -> None:
        """An invitation to the invited supplier; an answered question to every participant
        (the need's groups, the invited and the joined suppliers): in the in-app inbox, and
        over the recipient's webhook and e-mail at once, whatever its mode. Ids derive from the
        recipient and the invitation or question, so a redelivered event adds nothing."""
        notices: list[tuple[repository.DialogueNotice, str, datetime]] = []  # (notice, key, event time)
        for event in events:
            if isinstance(event, DialogueSupplierInvited):
                d = event.data.dialogue
                to = [f"supplier:{event.data.supplier_id}"]
                kind, item, question = "invitation", "invitation", None
            elif isinstance(event, DialogueQuestionAnswered):
                d, question = event.data.dialogue, event.data.question
                suppliers = [*d.invited_supplier_ids, *d.joined_supplier_ids]
                to = [*(f"buyer_group:{g}" for g in d.buyer_group_ids), *(f"supplier:{s}" for s in suppliers)]
                kind, item = "answer", question.id
            else:  # opened and closed tell no one anything new
                continue
            body = render.dialogue_notice_body(kind, d, question)
            key = f"dialogue:{d.id}/{item}"
            for principal in to:
                notice = repository.DialogueNotice(
                    alert_id(principal, key, "inbox"), principal, d.id, d.need_id, kind, body
                )
                notices.append((notice, key, event.time))
        # A late event about an erased supplier tells it nothing: it is gone.
        erased = await erasure.erased_among(conn, SCHEMA, [n.principal for n, _, _ in notices])
        notices = [t for t in notices if t[0].principal not in erased]
        if not notices:
            return
        added = await repository.add_dialogue_notices(conn, [n for n, _, _ in notices])
        if added:
            self.metrics.delivered("inbox", added)
        await self._push_notices(conn, notices)

    async def _push_notices(
        self, conn: Connection, notices: list[tuple[repository.DialogueNotice, str, datetime]]
    ) -> None:
        principals = sorted({n.principal for n, _, _ in notices})
        await repository.lock_recipients(conn, principals, exclusive=False)
        recipients = await repository.recipients(conn, principals)
        titles = await repository.need_titles(conn, [n.need_id for n, _, _ in notices])
        created = datetime.now(UTC).isoformat()
        deliveries: list[repository.NoticeDelivery] = []
        for notice, key, event_time in notices:
            for channel in policy.CHANNELS:
                chosen = policy.route_notice(recipients.get(notice.principal), channel, smtp=self.smtp)
                if chosen is None:
                    continue
                ident = alert_id(notice.principal, key, channel)
                payload = render.notice_payload(
                    alert_id=ident,
                    thread_id=notice.id,
                    recipient=notice.principal,
                    body=notice.body,
                    need_title=titles.get(notice.need_id),
                    created_at=created,
                    forum_url=self.forum_url,
                )
                deliveries.append(
                    repository.NoticeDelivery(
                        ident,
                        notice.principal,
                        channel,
                        key,
                        payload,
                        chosen.state,
                        chosen.reason,
                        event_time,
                    )
                )
        written = await repository.put_notice_deliveries(conn, deliveries)
        if DeliveryState.QUEUED in written:
            await repository.wake_worker(conn)

    def _count_inbox(
        self, opened: list[tuple[str, str]], by_id: dict[str, MatchRow], known: dict[str, policy.Recipient]
    ) -> None:
        shown = 0
        for principal, match in opened:
            recipient = known.get(principal)
            threshold = recipient.alerts.min_score if recipient else 0.5
            if by_id[match].score >= threshold:
                shown += 1
        if shown:
            self.metrics.delivered("inbox", shown)

    def _count_suppliers(
        self, opened: list[tuple[str, str]], by_id: dict[str, MatchRow], known: dict[str, policy.Recipient]
    ) -> None:
        for principal, match in opened:
            if not principal.startswith("buyer_group:"):
                continue
            supplier = known.get(f"supplier:{by_id[match].supplier_id}")
            for kind in supplier.supplier_types if supplier else ():
                self.metrics.alerted_suppliers.labels(self.metrics.service, kind).inc()


def _principals(match: MatchRow, need: NeedRow | None) -> list[str]:
    """Who hears of a match: the need's buyer groups (once the need is known) and the supplier."""
    groups = [f"buyer_group:{g}" for g in need.groups()] if need is not None else []
    return [*groups, f"supplier:{match.supplier_id}"]


class Inbox:
    """The in-app inbox and the e-mail unsubscribe links: what recipients read and switch off."""

    def __init__(self, pool: Callable[[], asyncpg.Pool], token_secret: str) -> None:
        self._pool = pool
        self._secret = token_secret

    async def _language(self, conn: Connection, principal: str) -> Language:
        recipient = (await repository.recipients(conn, [principal])).get(principal)
        return recipient.alerts.language if recipient else Language.sv

    async def alerts(
        self, principal: str, limit: int, unread: bool
    ) -> tuple[list[tuple[Any, MatchView]], Language]:
        """The principal's alerts, newest first, and the language it reads them in."""
        async with self._pool().acquire() as conn:
            rows = await repository.inbox(conn, principal, limit, unread)
            return rows, await self._language(conn, principal)

    async def mark(self, principal: str, alert_id: str, read: bool) -> None:
        """Mark a match alert or a dialogue notice (read) or unread."""
        async with self._pool().acquire() as conn:
            if not (
                await repository.mark_read(conn, principal, alert_id, read)
                or await repository.mark_notice_read(conn, principal, alert_id, read)
            ):
                raise NotFound(f"no alert {alert_id} in your inbox")

    async def dialogue_notices(self, principal: str, limit: int, unread: bool) -> tuple[list[Any], Language]:
        """The principal's market dialogue notices, newest first, and its language."""
        async with self._pool().acquire() as conn:
            rows = await repository.dialogue_inbox(conn, principal, limit, unread)
            return rows, await self._language(conn, principal)

    async def unsubscribe(self, token: str) -> tuple[str, Language] | None:
        """Turn e-mail off for the link's principal and address; (address, language), or None
        for a link that is not valid."""
        found = mail.read_unsubscribe_token(self._secret, token)
        if found is None:
            return None
        principal, email = found
        async with self._pool().acquire() as conn:
            await repository.unsubscribe_email(conn, principal, email)
            return email, await self._language(conn, principal)
