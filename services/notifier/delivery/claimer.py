"""Claiming: lease the due deliveries, freeze the body of each first try, and make the
instant alerts due together for one recipient and channel into one batch delivery."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.contracts.events import alert_id
from services.contracts.vocab import Language
from services.infra.db import Connection
from services.infra.settings import Settings
from services.notifier import policy, render, repository
from services.notifier.policy import DeliveryKind
from services.notifier.repository import DueRow, LeasedRow

_BATCH_NAMESPACE = uuid.UUID("9a4f6c1e-2b7d-4e59-8c3a-5d1e7f0b2a64")


@dataclass(frozen=True)
class Claim:
    """One leased send: its body is frozen and goes under `delivery_key` on every try."""

    id: str
    kind: DeliveryKind
    principal: str
    channel: str
    delivery_key: str
    payload: dict[str, Any]
    attempts: int
    first_attempt_at: datetime
    event_time: datetime | None
    token: uuid.UUID  # the lease: an outcome is recorded only while the row still holds it
    recipient: policy.Recipient | None


class Claimer:
    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings

    async def claim(self, limit: int) -> list[Claim]:
        """Lease up to `limit` sends that are due. Instant alerts due together for one
        recipient and channel become one batch send (see `policy.plan_sends`)."""
        token = uuid.uuid4()
        async with self.pool.acquire() as conn, conn.transaction():
            await repository.lock_rendering(conn, exclusive=False)
            due = await repository.lock_due(conn, limit)
            if not due:
                return []
            batch_max = self.settings.notifier_batch_max
            keys = {(r.principal, r.channel) for r in due if r.batchable}
            if keys and batch_max > 1:
                # The rest of those recipients' due alerts, so that a shortlist goes whole.
                due += await repository.lock_due_alerts_of(
                    conn, keys, [r.id for r in due], batch_max * len(keys)
                )
            rows = {r.id: r for r in due}
            plan = policy.plan_sends(
                [policy.Due(r.id, r.principal, r.channel, r.score or 0.0, r.batchable) for r in due],
                batch_max=batch_max,
                limit=limit,
            )
            recipients = await repository.recipients(conn, list({r.principal for r in due}))
            singles = [send[0].id for send in plan if len(send) == 1]
            batches = [[rows[d.id] for d in send] for send in plan if len(send) > 1]
            leased = await repository.lease(conn, singles, token, self.settings.notifier_lease_s)
            fresh = [r for r in leased if r.frozen is None]
            # The matches of every body rendered in this claim, in one query.
            wanted = [_match_of(r) for r in fresh] + [_match_of(r) for batch in batches for r in batch]
            views = await repository.views(conn, wanted) if wanted else {}
            forum = self.settings.forum_url
            frozen = await _freeze(conn, fresh, views, recipients, forum) if fresh else {}
            made = await self._make_batches(conn, batches, views, recipients, token) if batches else []
        by_id = {r.id: r for r in leased}
        claims = []
        for send in plan:
            if len(send) > 1:
                continue
            r = by_id[send[0].id]
            body = frozen.get(r.id) or r.frozen
            assert body is not None  # frozen by this claim, or by an earlier try
            payload, key = body
            claims.append(
                Claim(
                    id=r.id,
                    kind=r.kind,
                    principal=r.principal,
                    channel=r.channel,
                    delivery_key=key,
                    payload=payload,
                    attempts=r.attempts,
                    first_attempt_at=r.first_attempt_at,
                    event_time=r.event_time,
                    token=token,
                    recipient=recipients.get(r.principal),
                )
            )
        return claims + made

    async def _make_batches(
        self,
        conn: Connection,
        batches: list[list[DueRow]],
        views: dict[str, render.MatchView],
        recipients: dict[str, policy.Recipient],
        token: uuid.UUID,
    ) -> list[Claim]:
        """Record each batch as a delivery of its own, leased and with its body frozen, and
        mark its alerts as carried by it: from here on it is retried like any delivery."""
        created = datetime.now(UTC).isoformat()
        claims: list[Claim] = []
        made: list[repository.NewBatch] = []
        for batch in batches:
            principal, channel = batch[0].principal, batch[0].channel
            ident = str(uuid.uuid5(_BATCH_NAMESPACE, "/".join(sorted(r.id for r in batch))))
            items = [
                _body(r.id, r.principal, views[_match_of(r)], recipients, created, self.settings.forum_url)
                for r in batch
            ]
            payload = render.batch_body(batch_id=ident, recipient=principal, alerts=items, created_at=created)
            event_time = min((r.event_time for r in batch if r.event_time), default=None)
            members = [(r.id, views[_match_of(r)].version) for r in batch]
            made.append(repository.NewBatch(ident, principal, channel, payload, event_time, members))
            claims.append(
                Claim(
                    id=ident,
                    kind=DeliveryKind.BATCH,
                    principal=principal,
                    channel=channel,
                    delivery_key=ident,
                    payload=payload,
                    attempts=0,
                    first_attempt_at=datetime.now(UTC),
                    event_time=event_time,
                    token=token,
                    recipient=recipients.get(principal),
                )
            )
        await repository.add_batches(conn, made, token, self.settings.notifier_lease_s)
        return claims


def _match_of(row: DueRow | LeasedRow) -> str:
    """The match an alert delivery renders (every alert row has one)."""
    assert row.match_id is not None, row.id
    return row.match_id


def _body(
    ident: str,
    principal: str,
    view: render.MatchView,
    recipients: dict[str, policy.Recipient],
    created: str,
    forum_url: str,
) -> dict[str, Any]:
    recipient = recipients.get(principal)
    return render.alert_body(
        alert_id=ident,
        thread_id=alert_id(principal, view.match_id, "inbox"),
        recipient=principal,
        view=view,
        language=recipient.alerts.language if recipient else Language.sv,
        created_at=created,
        forum_url=forum_url,
    )


async def _freeze(
    conn: Connection,
    rows: list[LeasedRow],
    views: dict[str, render.MatchView],
    recipients: dict[str, policy.Recipient],
    forum_url: str,
) -> dict[str, tuple[dict[str, Any], str]]:
    """Render the body of each first try and store it with the delivery id it goes under."""
    created = datetime.now(UTC).isoformat()
    out: dict[str, tuple[dict[str, Any], str]] = {}
    for r in rows:
        view = views[_match_of(r)]
        body = _body(r.id, r.principal, view, recipients, created, forum_url)
        out[r.id] = (body, f"{r.id}.{view.version}")
    await repository.freeze_bodies(
        conn, [repository.FrozenBody(i, b, k, b["match"]["version"]) for i, (b, k) in out.items()]
    )
    return out
