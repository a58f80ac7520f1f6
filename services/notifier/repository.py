"""The notifier schema: projections of recipients, needs and matches; alert threads (the
inbox); push deliveries and digests; market dialogue notices."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.contracts.events import AlertSettings, MatchExplanation, MatchState, NeedState
from services.contracts.vocab import Verdict
from services.infra.db import Connection
from services.notifier.policy import OPEN_STATES, DeliveryKind, DeliveryState, Recipient
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


@dataclass(frozen=True)
class SupplierCard:
    """What an alert about a supplier shows of it besides its name."""

    size: str
    company_type: str
    contact_email: str


async def upsert_recipient(
    conn: Connection,
    principal: str,
    *,
    kind: str,
    version: int,
    alerts: AlertSettings,
    name: str,
    supplier_types: Sequence[str] = (),
    profile: SupplierCard | None = None,
) -> bool:
    """Store the newer settings (and a supplier's size, type and public contact, shown in
    alerts about it); False when an older or equal version was replayed, or when the
    principal was erased (its late or replayed events never bring its data back)."""
    row = await conn.fetchrow(
        "INSERT INTO notifier.recipients (principal, kind, version, alerts, name, supplier_types, "
        "size, company_type, contact_email) "
        "SELECT $1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9 WHERE NOT EXISTS "
        "(SELECT 1 FROM notifier.erased_principals e WHERE e.principal = $1) "
        "ON CONFLICT (principal) DO UPDATE SET "
        "version = EXCLUDED.version, alerts = EXCLUDED.alerts, name = EXCLUDED.name, "
        "supplier_types = EXCLUDED.supplier_types, size = EXCLUDED.size, "
        "company_type = EXCLUDED.company_type, contact_email = EXCLUDED.contact_email, updated_at = now() "
        "WHERE notifier.recipients.version < EXCLUDED.version RETURNING principal",
        principal,
        kind,
        version,
        # The secret is kept: the worker signs with it. The schema is the notifier's alone.
        alerts.model_dump_json(),
        name,
        list(supplier_types),
        profile.size if profile else None,
        profile.company_type if profile else None,
        profile.contact_email if profile else None,
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
    await conn.execute("DELETE FROM notifier.dialogue_notices WHERE principal = $1", principal)


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
        "INSERT INTO notifier.needs (id, version, buyer_group_id, cosigners, title, status, regions, "
        "authority_levels) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
        "ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, "
        "buyer_group_id = EXCLUDED.buyer_group_id, cosigners = EXCLUDED.cosigners, "
        "title = EXCLUDED.title, status = EXCLUDED.status, regions = EXCLUDED.regions, "
        "authority_levels = EXCLUDED.authority_levels "
        "WHERE notifier.needs.version < EXCLUDED.version RETURNING id",
        need.id,
        need.version,
        need.buyer_group_id,
        need.cosigners,
        need.title,
        need.status.value,
        list(need.regions),
        [level.value for level in need.authority_levels],
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
    verdict: str | None = None

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def judged_not_relevant(self) -> bool:
        return self.verdict == Verdict.not_relevant


def _match_row(r: Any) -> MatchRow:
    return MatchRow(
        r["id"],
        r["need_id"],
        r["supplier_id"],
        r["version"],
        r["score"],
        r["status"],
        r["event_time"],
        r["verdict"],
    )


async def upsert_matches(conn: Connection, matches: Sequence[tuple[MatchState, datetime]]) -> list[MatchRow]:
    """`upsert_match` for many matches (distinct ids) in one statement."""
    if not matches:
        return []
    rows = await conn.fetch(
        "INSERT INTO notifier.matches (id, need_id, supplier_id, version, score, status, explanation, "
        "event_time, verdict) SELECT id, n, s, v, sc, st, e::jsonb, t, vd FROM unnest($1::text[], "
        "$2::text[], $3::text[], $4::int[], $5::float8[], $6::text[], $7::text[], $8::timestamptz[], "
        "$9::text[]) AS x(id, n, s, v, sc, st, e, t, vd) "
        "ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, score = EXCLUDED.score, "
        "status = EXCLUDED.status, explanation = EXCLUDED.explanation, event_time = EXCLUDED.event_time, "
        "verdict = EXCLUDED.verdict WHERE notifier.matches.version < EXCLUDED.version "
        "RETURNING id, need_id, supplier_id, version, score, status, event_time, verdict",
        [m.id for m, _ in matches],
        [m.need_id for m, _ in matches],
        [m.supplier_id for m, _ in matches],
        [m.version for m, _ in matches],
        [m.score for m, _ in matches],
        [m.status for m, _ in matches],
        [m.explanation.model_dump_json() for m, _ in matches],
        [t for _, t in matches],
        [m.verdict for m, _ in matches],
    )
    return [_match_row(r) for r in rows]


async def matches_of_needs(conn: Connection, need_ids: Sequence[str]) -> list[MatchRow]:
    rows = await conn.fetch(
        "SELECT id, need_id, supplier_id, version, score, status, event_time, verdict FROM notifier.matches "
        "WHERE need_id = ANY($1::text[]) AND status = 'active' "
        "AND verdict IS DISTINCT FROM 'not_relevant' ORDER BY id",
        list(set(need_ids)),
    )
    return [_match_row(r) for r in rows]


# What a MatchView is made of (matches m, needs n, the supplier's recipient row s): the need's
# buyer groups by name, owner first.
_VIEW_COLUMNS = (
    "m.version, m.score, m.status, m.need_id, m.supplier_id, m.explanation::text AS e, "
    "n.title, n.regions AS need_regions, n.authority_levels, "
    "ARRAY(SELECT g.name FROM unnest(n.buyer_group_id || n.cosigners) WITH ORDINALITY AS x(id, i) "
    "JOIN notifier.recipients g ON g.principal = 'buyer_group:' || x.id ORDER BY x.i) AS groups, "
    "s.name, s.size, s.company_type, s.contact_email, s.supplier_types"
)


async def views(conn: Connection, match_ids: Sequence[str]) -> dict[str, MatchView]:
    """Matches with the need title and supplier name, for rendering."""
    rows = await conn.fetch(
        f"SELECT m.id, {_VIEW_COLUMNS} FROM notifier.matches m "
        "LEFT JOIN notifier.needs n ON n.id = m.need_id "
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
        need_groups=tuple(r["groups"] or ()),
        need_regions=tuple(r["need_regions"] or ()),
        need_authority_levels=tuple(r["authority_levels"] or ()),
        supplier_size=r["size"],
        supplier_company_type=r["company_type"],
        supplier_types=tuple(r["supplier_types"] or ()),
        supplier_contact=r["contact_email"],
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
        f"m.id, {_VIEW_COLUMNS} FROM notifier.alerts a JOIN notifier.matches m ON m.id = a.match_id "
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
    state: DeliveryState
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
        f"SELECT id, '{DeliveryKind.ALERT}', p, c, m, v, s, st, r, t, "
        f"CASE WHEN st = '{DeliveryState.QUEUED}' THEN now() END "
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


async def withdraw(conn: Connection, match_ids: Sequence[str], reason: str = "withdrawn") -> None:
    """A withdrawn match (or one judged not relevant) is not alerted: drop what was not tried yet."""
    await conn.execute(
        f"UPDATE notifier.deliveries SET state = '{DeliveryState.SKIPPED}', reason = $3, "
        f"next_attempt_at = NULL WHERE match_id = ANY($1::text[]) AND kind = '{DeliveryKind.ALERT}' "
        "AND first_attempt_at IS NULL AND state = ANY($2::text[])",
        list(match_ids),
        [DeliveryState.WAITING, DeliveryState.QUEUED, DeliveryState.DIGEST],
        reason,
    )


async def waiting(conn: Connection, principal: str) -> list[Any]:
    """Deliveries held until the recipient's settings were known, with their match (none for
    a dialogue notice)."""
    return list(
        await conn.fetch(
            "SELECT d.id, d.kind, d.channel, d.score, m.status FROM notifier.deliveries d "
            "LEFT JOIN notifier.matches m ON m.id = d.match_id "
            f"WHERE d.principal = $1 AND d.state = '{DeliveryState.WAITING}' FOR UPDATE OF d",
            principal,
        )
    )


async def set_routes(conn: Connection, routes: Sequence[tuple[str, DeliveryState, str | None]]) -> None:
    await conn.executemany(
        "UPDATE notifier.deliveries SET state = $2, reason = $3, "
        f"next_attempt_at = CASE WHEN $2 = '{DeliveryState.QUEUED}' THEN now() END WHERE id = $1",
        routes,
    )


async def release_digest(conn: Connection, principal: str) -> int:
    """A recipient who switched to instant alerts gets what waited for a digest now: how many."""
    status = await conn.execute(
        f"UPDATE notifier.deliveries SET state = '{DeliveryState.QUEUED}', next_attempt_at = now() "
        f"WHERE principal = $1 AND state = '{DeliveryState.DIGEST}'",
        principal,
    )
    return int(status.rsplit(" ", 1)[-1])


# The delivery worker: claiming with a lease, frozen bodies, batches, outcomes.

# What claiming needs to know of a due row.
_DUE_COLUMNS = (
    "id, principal, channel, match_id, score, event_time, "
    f"(kind = '{DeliveryKind.ALERT}' AND payload IS NULL) AS batchable"
)


@dataclass(frozen=True)
class DueRow:
    """A queued delivery whose time has come, locked for the claiming transaction."""

    id: str
    principal: str
    channel: str
    match_id: str | None
    score: float | None
    event_time: datetime | None
    batchable: bool  # an instant alert not tried yet


def _due_row(r: Any) -> DueRow:
    return DueRow(
        r["id"], r["principal"], r["channel"], r["match_id"], r["score"], r["event_time"], r["batchable"]
    )


async def lock_due(conn: Connection, limit: int) -> list[DueRow]:
    """Up to `limit` due deliveries, oldest first; rows another worker holds are passed over."""
    rows = await conn.fetch(
        f"SELECT {_DUE_COLUMNS} FROM notifier.deliveries WHERE state = '{DeliveryState.QUEUED}' "
        "AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED",
        limit,
    )
    return [_due_row(r) for r in rows]


async def lock_due_alerts_of(
    conn: Connection, keys: Collection[tuple[str, str]], besides: Sequence[str], limit: int
) -> list[DueRow]:
    """The other due, untried alerts of these (principal, channel) pairs, best first."""
    rows = await conn.fetch(
        f"SELECT {_DUE_COLUMNS} FROM notifier.deliveries WHERE state = '{DeliveryState.QUEUED}' "
        f"AND kind = '{DeliveryKind.ALERT}' AND payload IS NULL AND next_attempt_at <= now() "
        "AND (principal, channel) IN (SELECT * FROM unnest($1::text[], $2::text[])) "
        "AND NOT (id = ANY($3::text[])) ORDER BY score DESC, id LIMIT $4 FOR UPDATE SKIP LOCKED",
        [p for p, _ in keys],
        [c for _, c in keys],
        list(besides),
        limit,
    )
    return [_due_row(r) for r in rows]


@dataclass(frozen=True)
class LeasedRow:
    id: str
    kind: DeliveryKind
    principal: str
    channel: str
    match_id: str | None
    # The body and the delivery id it goes under, frozen at the first try; None before it.
    frozen: tuple[dict[str, Any], str] | None
    attempts: int
    first_attempt_at: datetime
    event_time: datetime | None


async def lease(conn: Connection, ids: Sequence[str], token: uuid.UUID, lease_s: float) -> list[LeasedRow]:
    """Lease the rows until `lease_s` from now (they fall due again if no outcome is recorded)."""
    rows = await conn.fetch(
        "UPDATE notifier.deliveries d SET lease_token = $2, "
        "next_attempt_at = now() + make_interval(secs => $3), "
        "first_attempt_at = coalesce(d.first_attempt_at, now()) WHERE d.id = ANY($1::text[]) "
        "RETURNING d.id, d.kind, d.principal, d.channel, d.match_id, d.payload::text AS payload, "
        "d.delivery_key, d.attempts, d.first_attempt_at, d.event_time",
        list(ids),
        token,
        lease_s,
    )
    return [
        LeasedRow(
            id=r["id"],
            kind=DeliveryKind(r["kind"]),
            principal=r["principal"],
            channel=r["channel"],
            match_id=r["match_id"],
            frozen=None if r["payload"] is None else (payload_of(r["payload"]), r["delivery_key"]),
            attempts=r["attempts"],
            first_attempt_at=r["first_attempt_at"],
            event_time=r["event_time"],
        )
        for r in rows
    ]


@dataclass(frozen=True)
class FrozenBody:
    id: str
    payload: dict[str, Any]
    delivery_key: str
    match_version: int


async def freeze_bodies(conn: Connection, bodies: Sequence[FrozenBody]) -> None:
    """Store the body of a first try and the delivery id every retry sends it under."""
    await conn.executemany(
        "UPDATE notifier.deliveries SET payload = $2::jsonb, delivery_key = $3, match_version = $4 "
        "WHERE id = $1",
        [(b.id, json.dumps(b.payload), b.delivery_key, b.match_version) for b in bodies],
    )


@dataclass(frozen=True)
class NewBatch:
    id: str
    principal: str
    channel: str
    payload: dict[str, Any]
    event_time: datetime | None
    members: Sequence[tuple[str, int]]  # (alert delivery id, match version) of each alert carried


async def add_batches(
    conn: Connection, batches: Sequence[NewBatch], token: uuid.UUID, lease_s: float
) -> None:
    """Record batches as deliveries of their own, leased, with their bodies frozen, and mark
    their alerts as carried by them."""
    await conn.executemany(
        "INSERT INTO notifier.deliveries (id, kind, principal, channel, state, payload, delivery_key, "
        "lease_token, next_attempt_at, first_attempt_at, event_time) "
        f"VALUES ($1, '{DeliveryKind.BATCH}', $2, $3, '{DeliveryState.QUEUED}', $4::jsonb, $1, $5, "
        "now() + make_interval(secs => $7), now(), $6)",
        [
            (b.id, b.principal, b.channel, json.dumps(b.payload), token, b.event_time, lease_s)
            for b in batches
        ],
    )
    members = [(alert, b.id, version) for b in batches for alert, version in b.members]
    await conn.execute(
        f"UPDATE notifier.deliveries d SET state = '{DeliveryState.IN_BATCH}', carried_by = x.batch, "
        "match_version = x.v, first_attempt_at = now(), next_attempt_at = NULL "
        "FROM unnest($1::text[], $2::text[], $3::int[]) AS x(id, batch, v) WHERE d.id = x.id",
        [m[0] for m in members],
        [m[1] for m in members],
        [m[2] for m in members],
    )


@dataclass(frozen=True)
class Retry:
    id: str
    token: uuid.UUID
    attempts: int
    reason: str | None
    delay_s: float


async def retry_later(conn: Connection, retries: Sequence[Retry]) -> None:
    """Release the leases of failed tries and make them due again after their delay."""
    await conn.executemany(
        "UPDATE notifier.deliveries SET attempts = $3, reason = $4, lease_token = NULL, "
        "next_attempt_at = now() + make_interval(secs => $5) WHERE id = $1 AND lease_token = $2",
        [(r.id, r.token, r.attempts, r.reason, r.delay_s) for r in retries],
    )


@dataclass(frozen=True)
class Ending:
    id: str
    token: uuid.UUID
    state: DeliveryState
    attempts: int
    reason: str | None


@dataclass(frozen=True)
class Ended:
    """A delivery row that took its final state (an alert, or a batch or digest)."""

    id: str
    match_id: str | None
    match_version: int | None


async def end(conn: Connection, endings: Sequence[Ending]) -> dict[str, Ended]:
    """Record final states of deliveries whose lease is still the one given; by id, those
    that were recorded."""
    rows = await conn.fetch(
        "UPDATE notifier.deliveries d SET state = x.state, attempts = x.attempts, "
        "reason = x.reason, lease_token = NULL, next_attempt_at = NULL, "
        f"delivered_at = CASE WHEN x.state = '{DeliveryState.DELIVERED}' THEN now() END "
        "FROM unnest($1::text[], $2::uuid[], $3::text[], $4::int[], $5::text[]) "
        "AS x(id, token, state, attempts, reason) WHERE d.id = x.id AND d.lease_token = x.token "
        "RETURNING d.id, d.match_id, d.match_version",
        [e.id for e in endings],
        [e.token for e in endings],
        [e.state for e in endings],
        [e.attempts for e in endings],
        [e.reason for e in endings],
    )
    return {r["id"]: Ended(r["id"], r["match_id"], r["match_version"]) for r in rows}


async def end_carried(conn: Connection, carrier: str, state: DeliveryState) -> list[Ended]:
    """The alerts a digest or batch carried take its final state."""
    rows = await conn.fetch(
        "UPDATE notifier.deliveries SET state = $2, "
        f"delivered_at = CASE WHEN $2 = '{DeliveryState.DELIVERED}' THEN now() END "
        "WHERE carried_by = $1 RETURNING id, match_id, match_version",
        carrier,
        state,
    )
    return [Ended(r["id"], r["match_id"], r["match_version"]) for r in rows]


async def retries_pending(conn: Connection) -> dict[str, int]:
    """Deliveries waiting for another try, by channel."""
    rows = await conn.fetch(
        "SELECT channel, count(*) AS n FROM notifier.deliveries "
        f"WHERE state = '{DeliveryState.QUEUED}' AND attempts > 0 GROUP BY channel"
    )
    return {r["channel"]: r["n"] for r in rows}


# Digests.


async def digests_due(conn: Connection, mode: str, at: datetime) -> list[tuple[str, str]]:
    """(principal, channel) of recipients in `mode` with alerts held for a digest made at `at`."""
    rows = await conn.fetch(
        "SELECT DISTINCT d.principal, d.channel FROM notifier.deliveries d "
        "JOIN notifier.recipients r ON r.principal = d.principal "
        f"WHERE d.state = '{DeliveryState.DIGEST}' AND d.created_at <= $1 AND r.alerts->>'mode' = $2",
        at,
        mode,
    )
    return [(r["principal"], r["channel"]) for r in rows]


async def digest_made(conn: Connection, ident: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM notifier.digests WHERE id = $1", ident))


@dataclass(frozen=True)
class HeldAlert:
    id: str
    match_id: str


async def lock_held_for_digest(
    conn: Connection, principal: str, channel: str, at: datetime
) -> list[HeldAlert]:
    """The alerts a digest made at `at` gathers, best first, locked."""
    rows = await conn.fetch(
        "SELECT id, match_id FROM notifier.deliveries WHERE principal = $1 AND channel = $2 "
        f"AND state = '{DeliveryState.DIGEST}' AND created_at <= $3 ORDER BY score DESC, id FOR UPDATE",
        principal,
        channel,
        at,
    )
    return [HeldAlert(r["id"], r["match_id"]) for r in rows]


@dataclass(frozen=True)
class NewDigest:
    id: str
    principal: str
    channel: str
    period: str
    payload: dict[str, Any]
    kept: Sequence[str]  # the alert deliveries it carries
    cut: Sequence[str]  # those the budget suppressed


async def add_digest(conn: Connection, digest: NewDigest) -> bool:
    """Record the period's digest and queue its delivery; False when it was made already."""
    inserted = await conn.fetchval(
        "INSERT INTO notifier.digests (id, principal, channel, period, size, suppressed) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id",
        digest.id,
        digest.principal,
        digest.channel,
        digest.period,
        len(digest.kept),
        len(digest.cut),
    )
    if inserted is None:
        return False
    await conn.execute(
        "INSERT INTO notifier.deliveries (id, kind, principal, channel, state, next_attempt_at, payload, "
        f"delivery_key) VALUES ($1, '{DeliveryKind.DIGEST}', $2, $3, '{DeliveryState.QUEUED}', now(), "
        "$4::jsonb, $1)",
        digest.id,
        digest.principal,
        digest.channel,
        json.dumps(digest.payload),
    )
    await conn.execute(
        f"UPDATE notifier.deliveries SET state = '{DeliveryState.IN_DIGEST}', carried_by = $2 "
        "WHERE id = ANY($1::text[])",
        list(digest.kept),
        digest.id,
    )
    await conn.execute(
        f"UPDATE notifier.deliveries SET state = '{DeliveryState.SUPPRESSED}', reason = 'budget' "
        "WHERE id = ANY($1::text[])",
        list(digest.cut),
    )
    return True


def payload_of(value: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(value)
    return data


# Market dialogue notices (the inbox).


@dataclass(frozen=True)
class DialogueNotice:
    id: str
    principal: str
    dialogue_id: str
    need_id: str
    kind: str  # invitation | answer
    body: dict[str, Any]


async def add_dialogue_notices(conn: Connection, notices: Sequence[DialogueNotice]) -> int:
    """Store the notices not stored yet (ids are deterministic); how many are new."""
    if not notices:
        return 0
    rows = await conn.fetch(
        "INSERT INTO notifier.dialogue_notices (id, principal, dialogue_id, need_id, kind, body) "
        "SELECT i, p, d, n, k, b::jsonb FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
        "$5::text[], $6::text[]) AS t(i, p, d, n, k, b) ON CONFLICT (id) DO NOTHING RETURNING id",
        [n.id for n in notices],
        [n.principal for n in notices],
        [n.dialogue_id for n in notices],
        [n.need_id for n in notices],
        [n.kind for n in notices],
        [json.dumps(n.body) for n in notices],
    )
    return len(rows)


async def dialogue_inbox(conn: Connection, principal: str, limit: int, unread_only: bool) -> list[Any]:
    """The principal's dialogue notices, newest first, with the need's title when known."""
    return list(
        await conn.fetch(
            "SELECT d.id, d.kind, d.body::text AS body, d.read_at IS NOT NULL AS read, d.created_at, "
            "n.title AS need_title FROM notifier.dialogue_notices d "
            "LEFT JOIN notifier.needs n ON n.id = d.need_id "
            "WHERE d.principal = $1 AND ($3::bool IS FALSE OR d.read_at IS NULL) "
            "ORDER BY d.created_at DESC, d.id LIMIT $2",
            principal,
            limit,
            unread_only,
        )
    )


async def mark_notice_read(conn: Connection, principal: str, notice_id: str, read: bool) -> bool:
    status = await conn.execute(
        "UPDATE notifier.dialogue_notices SET read_at = CASE WHEN $3 THEN coalesce(read_at, now()) END "
        "WHERE id = $1 AND principal = $2",
        notice_id,
        principal,
        read,
    )
    return bool(status != "UPDATE 0")


@dataclass(frozen=True)
class NoticeDelivery:
    """A dialogue notice over a push channel. `key` (`dialogue:<id>/<invitation|question id>`)
    takes the place of the match id, and the body is frozen from the start."""

    id: str
    principal: str
    channel: str
    key: str
    payload: dict[str, Any]
    state: DeliveryState
    reason: str | None
    event_time: datetime


async def put_notice_deliveries(conn: Connection, rows: Sequence[NoticeDelivery]) -> list[str]:
    """Record the notice deliveries not recorded yet (ids are deterministic); their states."""
    if not rows:
        return []
    written = await conn.fetch(
        "INSERT INTO notifier.deliveries (id, kind, principal, channel, match_id, match_version, state, "
        "reason, payload, delivery_key, event_time, next_attempt_at) "
        f"SELECT id, '{DeliveryKind.NOTICE}', p, c, k, 1, st, r, b::jsonb, id, t, "
        f"CASE WHEN st = '{DeliveryState.QUEUED}' THEN now() END "
        "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], "
        "$8::timestamptz[]) AS x(id, p, c, k, st, r, b, t) ON CONFLICT (id) DO NOTHING RETURNING state",
        [r.id for r in rows],
        [r.principal for r in rows],
        [r.channel for r in rows],
        [r.key for r in rows],
        [r.state for r in rows],
        [r.reason for r in rows],
        [json.dumps(r.payload) for r in rows],
        [r.event_time for r in rows],
    )
    return [r["state"] for r in written]


async def need_titles(conn: Connection, need_ids: Sequence[str]) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT id, title FROM notifier.needs WHERE id = ANY($1::text[])", list(set(need_ids))
    )
    return {r["id"]: r["title"] for r in rows}
