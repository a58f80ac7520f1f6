"""Daily and weekly digests: made once per (recipient, channel, period) and then delivered
like any alert. The digests table is the record that a period's digest exists, so a restart
neither skips nor doubles one; the alerts it gathers change state in the same transaction."""

from __future__ import annotations

import json
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
            due = await conn.fetch(
                "SELECT DISTINCT d.principal, d.channel FROM notifier.deliveries d "
                "JOIN notifier.recipients r ON r.principal = d.principal "
                "WHERE d.state = 'digest' AND d.created_at <= $1 AND r.alerts->>'mode' = $2",
                at,
                mode.value,
            )
        for row in due:
            digest = await _make(pool, row["principal"], row["channel"], period, at, settings)
            if digest is not None:
                made.append(digest)
    return made


async def _make(
    pool: asyncpg.Pool, principal: str, channel: str, period: str, at: datetime, settings: Settings
) -> Made | None:
    ident = digest_id(principal, channel, period)
    async with pool.acquire() as conn, conn.transaction():
        await repository.lock_rendering(conn, exclusive=False)
        if await conn.fetchval("SELECT 1 FROM notifier.digests WHERE id = $1", ident):
            return None
        rows = await conn.fetch(
            "SELECT id, match_id FROM notifier.deliveries WHERE principal = $1 AND channel = $2 "
            "AND state = 'digest' AND created_at <= $3 ORDER BY score DESC, id FOR UPDATE",
            principal,
            channel,
            at,
        )
        if not rows:
            return None
        recipient = (await repository.recipients(conn, [principal])).get(principal)
        alerts = recipient.alerts if recipient else None
        budget = (alerts.digest_budget if alerts else None) or settings.notifier_digest_budget
        kept, cut = policy.within_budget(rows, budget)
        views = await repository.views(conn, [r["match_id"] for r in kept])
        language = alerts.language if alerts else Language.sv
        created = datetime.now(UTC).isoformat()
        items = [
            render.alert_body(
                alert_id=r["id"],
                thread_id=alert_id(principal, r["match_id"], "inbox"),
                recipient=principal,
                view=views[r["match_id"]],
                language=language,
                created_at=created,
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
        inserted = await conn.fetchval(
            "INSERT INTO notifier.digests (id, principal, channel, period, size, suppressed) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id",
            ident,
            principal,
            channel,
            period,
            len(kept),
            len(cut),
        )
        if inserted is None:  # another instance made it meanwhile
            return None
        await conn.execute(
            "INSERT INTO notifier.deliveries (id, kind, principal, channel, state, next_attempt_at, payload, "
            "delivery_key) VALUES ($1, 'digest', $2, $3, 'queued', now(), $4::jsonb, $1)",
            ident,
            principal,
            channel,
            json.dumps(payload),
        )
        await conn.execute(
            "UPDATE notifier.deliveries SET state = 'in_digest', carried_by = $2 WHERE id = ANY($1::text[])",
            [r["id"] for r in kept],
            ident,
        )
        await conn.execute(
            "UPDATE notifier.deliveries SET state = 'suppressed', reason = 'budget' "
            "WHERE id = ANY($1::text[])",
            [r["id"] for r in cut],
        )
        await repository.wake_worker(conn)
    return Made(ident, principal, channel, period, len(kept), len(cut))
