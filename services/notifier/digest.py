"""Daily and weekly digests: made once per (recipient, channel, period) and then delivered
like any alert. The digests table is the record that a period's digest exists, so a restart
neither skips nor doubles one; the alerts it gathers change state in the same transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from services.contracts.events import alert_id
from services.contracts.vocab import AlertMode, Language
from services.infra.settings import Settings
from services.notifier import policy, render, repository

_DIGEST_NAMESPACE = uuid.UUID("5f0d3f0e-7d43-4a8e-9a3f-6c1f0b8f2d17")


@dataclass(frozen=True)
class Made:
    id: str
    principal: str
    channel: str
    period: str
    size: int
    suppressed: int


def digest_id(principal: str, channel: str, period: str) -> str:
    return str(uuid.uuid5(_DIGEST_NAMESPACE, f"{principal}/{channel}/{period}"))


async def run_due(
    pool: asyncpg.Pool, schedule: policy.Schedule, settings: Settings, now: datetime
) -> list[Made]:
    """Make every digest whose scheduled time has come and that does not exist yet."""
    made: list[Made] = []
    for mode in (AlertMode.daily, AlertMode.weekly):
        period, at = schedule.last_run(mode, now)
        async with pool.acquire() as conn:
            due = await repository.digests_due(conn, mode.value, at)
        for principal, channel in due:
            digest = await _make(pool, principal, channel, period, at, settings)
            if digest is not None:
                made.append(digest)
    return made


async def _make(
    pool: asyncpg.Pool, principal: str, channel: str, period: str, at: datetime, settings: Settings
) -> Made | None:
    ident = digest_id(principal, channel, period)
    async with pool.acquire() as conn, conn.transaction():
        await repository.lock_rendering(conn, exclusive=False)
        if await repository.digest_made(conn, ident):
            return None
        rows = await repository.lock_held_for_digest(conn, principal, channel, at)
        if not rows:
            return None
        recipient = (await repository.recipients(conn, [principal])).get(principal)
        alerts = recipient.alerts if recipient else None
        budget = (alerts.digest_budget if alerts else None) or settings.notifier_digest_budget
        kept, cut = policy.within_budget(rows, budget)
        views = await repository.views(conn, [r.match_id for r in kept])
        language = alerts.language if alerts else Language.sv
        created = datetime.now(UTC).isoformat()
        items = [
            render.alert_body(
                alert_id=r.id,
                thread_id=alert_id(principal, r.match_id, "inbox"),
                recipient=principal,
                view=views[r.match_id],
                language=language,
                created_at=created,
                forum_url=settings.forum_url,
            )
            for r in kept
        ]
        payload = render.digest_body(
            digest_id=ident,
            recipient=principal,
            period=period,
            alerts=items,
            suppressed=len(cut),
            created_at=created,
        )
        digest = repository.NewDigest(
            id=ident,
            principal=principal,
            channel=channel,
            period=period,
            payload=payload,
            kept=[r.id for r in kept],
            cut=[r.id for r in cut],
        )
        if not await repository.add_digest(conn, digest):  # another instance made it meanwhile
            return None
        await repository.wake_worker(conn)
    return Made(ident, principal, channel, period, len(kept), len(cut))
