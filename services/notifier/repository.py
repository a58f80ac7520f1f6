"""The notifier schema: projections of recipients, needs and matches; alert threads (the
inbox); push deliveries and digests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.contracts.events import AlertSettings, MatchExplanation, MatchState, NeedState
from services.infra.db import Connection
from services.notifier.policy import OPEN_STATES, Recipient
from services.notifier.render import MatchView

WAKE_CHANNEL = "notifier_deliveries"


async def wake_worker(conn: Connection) -> None:
    """Wake the delivery worker when the transaction commits."""
    await conn.execute("SELECT pg_notify($1, '')", WAKE_CHANNEL)


# Events of different topics are applied by concurrent consumers. A match applied while its
# need (or a recipient's settings) is being stored could miss it, and the need's handler could
# miss the match: neither transaction sees the other's uncommitted rows. So a transaction that
# changes a need or a recipient locks that key exclusively, and a match fan-out shares the
# locks of the needs and recipients it reads. Keys of other needs and recipients do not wait
# for each other. Every transaction takes its need locks first and its recipient locks after,
# each set in one statement in key order: one total order, so no deadlock cycle.
_NEED_LOCKS = 0x1A7E_0041
_RECIPIENT_LOCKS = 0x1A7E_0042
# Rendering names into bodies versus erasing them: a transaction that renders bodies (a claim
# of the delivery worker, a digest) holds this lock shared from its start, and a supplier
# erasure takes it exclusively before any other lock. So a body rendered with a supplier's
# name is committed before the erasure scrubs stored bodies, or rendered after it without
# the name; never in between.
_RENDERING_LOCK = 0x1A7E_0043


async def lock_rendering(conn: Connection, *, exclusive: bool) -> None:
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await conn.execute(f"SELECT {fn}($1)", _RENDERING_LOCK)


async def lock_needs(conn: Connection, need_ids: Sequence[str], *, exclusive: bool) -> None:
    await _lock(conn, _NEED_LOCKS, need_ids, exclusive)


async def lock_recipients(conn: Connection, principals: Sequence[str], *, exclusive: bool) -> None:
    await _lock(conn, _RECIPIENT_LOCKS, principals, exclusive)


async def _lock(conn: Connection, space: int, keys: Sequence[str], exclusive: bool) -> None:
    if not keys:
        return
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await conn.execute(
        f"SELECT {fn}($1, k) FROM (SELECT DISTINCT hashtext(x) AS k FROM unnest($2::text[]) x ORDER BY 1) s",
        space,
        list(keys),
    )


# Recipients.


async def upsert_recipient(
    conn: Connection,
    principal: str,
    *,
    kind: str,
    version: int,
    alerts: AlertSettings,
    name: str,
    supplier_types: Sequence[str] = (),
) -> bool:
    """Store the newer settings; False when an older or equal version was replayed, or when
    the principal was erased (its late or replayed events never bring its data back)."""
    row = await conn.fetchrow(
        "INSERT INTO notifier.recipients (principal, kind, version, alerts, name, supplier_types) "
        "SELECT $1, $2, $3, $4::jsonb, $5, $6 WHERE NOT EXISTS "
        "(SELECT 1 FROM notifier.erased_principals e WHERE e.principal = $1) "
        "ON CONFLICT (principal) DO UPDATE SET "
        "version = EXCLUDED.version, alerts = EXCLUDED.alerts, name = EXCLUDED.name, "
        "supplier_types = EXCLUDED.supplier_types, updated_at = now() "
        "WHERE notifier.recipients.version < EXCLUDED.version RETURNING principal",
        principal,
        kind,
        version,
        # The secret is kept: the worker signs with it. The schema is the notifier's alone.
        alerts.model_dump_json(),
        name,
        list(supplier_types),
    )
    return row is not None


def _recipient(row: Any) -> Recipient:
    return Recipient(
        principal=row["principal"],
        alerts=AlertSettings.model_validate_json(row["alerts"]),
        name=row["name"],
        webhook_disabled_url=row["webhook_disabled_url"],
        email_unsubscribed=row["email_unsubscribed"],
        supplier_types=tuple(row["supplier_types"]),
    )


async def recipients(conn: Connection, principals: Sequence[str]) -> dict[str, Recipient]:
    rows = await conn.fetch(
        "SELECT principal, alerts::text AS alerts, name, webhook_disabled_url, email_unsubscribed, "
        "supplier_types FROM notifier.recipients WHERE principal = ANY($1::text[])",
        list(set(principals)),
    )
    return {r["principal"]: _recipient(r) for r in rows}


async def erase_recipient(conn: Connection, principal: str) -> None:
    """Forget a removed recipient: settings (with the webhook secret), inbox and whatever was
    still to be sent. The marker in `erased_principals` (written by the consumer) stays."""
    await conn.execute("DELETE FROM notifier.recipients WHERE principal = $1", principal)
    await conn.execute("DELETE FROM notifier.alerts WHERE principal = $1", principal)
    await conn.execute("DELETE FROM notifier.deliveries WHERE principal = $1", principal)


async def forget_passages(conn: Connection, supplier_id: str) -> None:
    """Erasure: the explanations of the supplier's matches lose the sentence quoted from its
    profile."""
    await conn.execute(
        "UPDATE notifier.matches SET explanation = explanation - 'closest_passage' "
        "WHERE supplier_id = $1 AND explanation ? 'closest_passage'",
        supplier_id,
    )


async def bodies_about_supplier(conn: Connection, supplier_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The stored bodies (alerts, batches, digests) that render a match of the supplier, locked."""
    rows = await conn.fetch(
        "WITH about AS (SELECT id, carried_by FROM notifier.deliveries WHERE match_id IN "
        "(SELECT id FROM notifier.matches WHERE supplier_id = $1)) "
        "SELECT id, payload::text AS payload FROM notifier.deliveries WHERE payload IS NOT NULL "
        "AND (id IN (SELECT id FROM about) OR id IN (SELECT carried_by FROM about)) "
        "ORDER BY id FOR UPDATE",
        supplier_id,
    )
    return [(r["id"], payload_of(r["payload"])) for r in rows]


async def replace_bodies(conn: Connection, bodies: Sequence[tuple[str, dict[str, Any]]]) -> None:
    await conn.executemany(
        "UPDATE notifier.deliveries SET payload = $2::jsonb WHERE id = $1",
        [(ident, json.dumps(body)) for ident, body in bodies],
    )


async def disable_webhook(conn: Connection, principal: str, url: str) -> None:
    await conn.execute(
        "UPDATE notifier.recipients SET webhook_disabled_url = $2 WHERE principal = $1", principal, url
    )


async def unsubscribe_email(conn: Connection, principal: str, email: str) -> bool:
    status = await conn.execute(
        "UPDATE notifier.recipients SET email_unsubscribed = $2 WHERE principal = $1", principal, email
    )
    return bool(status != "UPDATE 0")


# Needs and matches.


async def upsert_need(conn: Connection, need: NeedState) -> bool:
    row = await conn.fetchrow(
        "INSERT INTO notifier.needs (id, version, buyer_group_id, cosigners, title, status) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, "
        "buyer_group_id = EXCLUDED.buyer_group_id, cosigners = EXCLUDED.cosigners, "
        "title = EXCLUDED.title, status = EXCLUDED.status "
        "WHERE notifier.needs.version < EXCLUDED.version RETURNING id",
        need.id,
        need.version,
        need.buyer_group_id,
        need.cosigners,
        need.title,
        need.status.value,
    )
    return row is not None


@dataclass(frozen=True)
class NeedRow:
    id: str
    buyer_group_id: str
    cosigners: list[str]
    status: str

    def groups(self) -> list[str]:
        """The buyer groups told about the need's matches: the owner and the co-signers."""
        return list(dict.fromkeys([self.buyer_group_id, *self.cosigners]))


async def needs(conn: Connection, need_ids: Sequence[str]) -> dict[str, NeedRow]:
    rows = await conn.fetch(
        "SELECT id, buyer_group_id, cosigners, status FROM notifier.needs WHERE id = ANY($1::text[])",
        list(set(need_ids)),
    )
    return {r["id"]: NeedRow(r["id"], r["buyer_group_id"], list(r["cosigners"]), r["status"]) for r in rows}


@dataclass(frozen=True)
class MatchRow:
    id: str
    need_id: str
    supplier_id: str
    version: int
    score: float
    status: str
    event_time: datetime

    @property
    def active(self) -> bool:
        return self.status == "active"


def _match_row(r: Any) -> MatchRow:
    return MatchRow(
        r["id"], r["need_id"], r["supplier_id"], r["version"], r["score"], r["status"], r["event_time"]
    )


async def upsert_matches(conn: Connection, matches: Sequence[tuple[MatchState, datetime]]) -> list[MatchRow]:
    """`upsert_match` for many matches (distinct ids) in one statement."""
    if not matches:
        return []
    rows = await conn.fetch(
        "INSERT INTO notifier.matches (id, need_id, supplier_id, version, score, status, explanation, "
        "event_time) SELECT id, n, s, v, sc, st, e::jsonb, t FROM unnest($1::text[], $2::text[], $3::text[], "
        "$4::int[], $5::float8[], $6::text[], $7::text[], $8::timestamptz[]) AS x(id, n, s, v, sc, st, e, t) "
        "ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, score = EXCLUDED.score, "
        "status = EXCLUDED.status, explanation = EXCLUDED.explanation, event_time = EXCLUDED.event_time "
        "WHERE notifier.matches.version < EXCLUDED.version "
        "RETURNING id, need_id, supplier_id, version, score, status, event_time",
        [m.id for m, _ in matches],
        [m.need_id for m, _ in matches],
        [m.supplier_id for m, _ in matches],
        [m.version for m, _ in matches],
        [m.score for m, _ in matches],
        [m.status for m, _ in matches],
        [m.explanation.model_dump_json() for m, _ in matches],
        [t for _, t in matches],
    )
    return [_match_row(r) for r in rows]


async def matches_of_needs(conn: Connection, need_ids: Sequence[str]) -> list[MatchRow]:
    rows = await conn.fetch(
        "SELECT id, need_id, supplier_id, version, score, status, event_time FROM notifier.matches "
        "WHERE need_id = ANY($1::text[]) AND status = 'active' ORDER BY id",
        list(set(need_ids)),
    )
    return [_match_row(r) for r in rows]


async def views(conn: Connection, match_ids: Sequence[str]) -> dict[str, MatchView]:
    """Matches with the need title and supplier name, for rendering."""
    rows = await conn.fetch(
        "SELECT m.id, m.version, m.score, m.status, m.need_id, m.supplier_id, m.explanation::text AS e, "
        "n.title, s.name FROM notifier.matches m LEFT JOIN notifier.needs n ON n.id = m.need_id "
        "LEFT JOIN notifier.recipients s ON s.principal = 'supplier:' || m.supplier_id "
        "WHERE m.id = ANY($1::text[])",
        list(set(match_ids)),
    )
    return {r["id"]: _view(r) for r in rows}


def _view(r: Any) -> MatchView:
    return MatchView(
        match_id=r["id"],
        version=r["version"],
        score=r["score"],
        status=r["status"],
        need_id=r["need_id"],
        need_title=r["title"],
        supplier_id=r["supplier_id"],
        supplier_name=r["name"] or None,
        explanation=MatchExplanation.model_validate_json(r["e"]),
    )


# Alert threads (the inbox).


async def add_threads(conn: Connection, rows: Sequence[tuple[str, str, str]]) -> list[tuple[str, str]]:
    """Open (id, principal, match_id) threads, or fold an update into an open one.

    Returns (principal, match_id) of the threads opened now.
    """
    if not rows:
        return []
    ids, principals, matches = (list(col) for col in zip(*rows, strict=True))
    opened = await conn.fetch(
        "INSERT INTO notifier.alerts (id, principal, match_id) "
        "SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) "
        "ON CONFLICT (id) DO UPDATE SET updated_at = now() "
        "RETURNING principal, match_id, (xmax = 0) AS opened",
        ids,
        principals,
        matches,
    )
    return [(r["principal"], r["match_id"]) for r in opened if r["opened"]]


async def inbox(
    conn: Connection, principal: str, limit: int, unread_only: bool
) -> list[tuple[Any, MatchView]]:
    rows = await conn.fetch(
        "SELECT a.id AS alert_id, a.read_at IS NOT NULL AS read, a.created_at, a.updated_at, "
        "m.id, m.version, m.score, m.status, m.need_id, m.supplier_id, m.explanation::text AS e, "
        "n.title, s.name FROM notifier.alerts a JOIN notifier.matches m ON m.id = a.match_id "
        "LEFT JOIN notifier.needs n ON n.id = m.need_id "
        "LEFT JOIN notifier.recipients s ON s.principal = 'supplier:' || m.supplier_id "
        "LEFT JOIN notifier.recipients r ON r.principal = a.principal "
        "WHERE a.principal = $1 AND m.score >= coalesce((r.alerts->>'min_score')::float8, 0.5) "
        "AND ($3::bool IS FALSE OR a.read_at IS NULL) "
        "ORDER BY a.created_at DESC, a.id LIMIT $2",
        principal,
        limit,
        unread_only,
    )
    return [(r, _view(r)) for r in rows]


async def mark_read(conn: Connection, principal: str, alert_id: str, read: bool) -> bool:
    status = await conn.execute(
        "UPDATE notifier.alerts SET read_at = CASE WHEN $3 THEN coalesce(read_at, now()) END "
        "WHERE id = $1 AND principal = $2",
        alert_id,
        principal,
        read,
    )
    return bool(status != "UPDATE 0")


# Push deliveries.


@dataclass(frozen=True)
class NewDelivery:
    id: str
    principal: str
    channel: str
    match_id: str
    match_version: int
    score: float
    state: str
    reason: str | None
    event_time: datetime


async def put_deliveries(conn: Connection, rows: Sequence[NewDelivery]) -> list[tuple[str, str | None]]:
    """Record deliveries, or fold a newer match version into one not yet tried.

    Returns (state, reason) of each row written.
    """
    if not rows:
        return []
    written = await conn.fetch(
        "INSERT INTO notifier.deliveries (id, kind, principal, channel, match_id, match_version, score, "
        "state, reason, event_time, next_attempt_at) "
        "SELECT id, 'alert', p, c, m, v, s, st, r, t, CASE WHEN st = 'queued' THEN now() END "
        "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::float8[], "
        "$7::text[], $8::text[], $9::timestamptz[]) AS x(id, p, c, m, v, s, st, r, t) "
        "ON CONFLICT (id) DO UPDATE SET match_version = EXCLUDED.match_version, score = EXCLUDED.score, "
        "state = EXCLUDED.state, reason = EXCLUDED.reason, event_time = EXCLUDED.event_time, "
        "next_attempt_at = EXCLUDED.next_attempt_at "
        "WHERE notifier.deliveries.first_attempt_at IS NULL "
        "AND notifier.deliveries.state = ANY($10::text[]) "
        "AND notifier.deliveries.match_version < EXCLUDED.match_version "
        "RETURNING state, reason",
        [r.id for r in rows],
        [r.principal for r in rows],
        [r.channel for r in rows],
        [r.match_id for r in rows],
        [r.match_version for r in rows],
        [r.score for r in rows],
        [r.state for r in rows],
        [r.reason for r in rows],
        [r.event_time for r in rows],
        list(OPEN_STATES),
    )
    return [(r["state"], r["reason"]) for r in written]


async def withdraw(conn: Connection, match_ids: Sequence[str]) -> None:
    """A withdrawn match is not alerted: drop what was not tried yet."""
    await conn.execute(
        "UPDATE notifier.deliveries SET state = 'skipped', reason = 'withdrawn', next_attempt_at = NULL "
        "WHERE match_id = ANY($1::text[]) AND kind = 'alert' AND first_attempt_at IS NULL "
        "AND state = ANY($2::text[])",
        list(match_ids),
        ["waiting", "queued", "digest"],
    )


async def waiting(conn: Connection, principal: str) -> list[Any]:
    """Deliveries held until the recipient's settings were known, with their match."""
    return list(
        await conn.fetch(
            "SELECT d.id, d.channel, d.score, m.status FROM notifier.deliveries d "
            "JOIN notifier.matches m ON m.id = d.match_id "
            "WHERE d.principal = $1 AND d.state = 'waiting' FOR UPDATE OF d",
            principal,
        )
    )


async def set_routes(conn: Connection, routes: Sequence[tuple[str, str, str | None]]) -> None:
    await conn.executemany(
        "UPDATE notifier.deliveries SET state = $2, reason = $3, "
        "next_attempt_at = CASE WHEN $2 = 'queued' THEN now() END WHERE id = $1",
        routes,
    )


async def release_digest(conn: Connection, principal: str) -> int:
    """A recipient who switched to instant alerts gets what waited for a digest now: how many."""
    status = await conn.execute(
        "UPDATE notifier.deliveries SET state = 'queued', next_attempt_at = now() "
        "WHERE principal = $1 AND state = 'digest'",
        principal,
    )
    return int(status.rsplit(" ", 1)[-1])


def payload_of(value: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(value)
    return data
