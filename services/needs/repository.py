"""The needs schema: authorities, buyer groups with their members, and needs. All of the
service's SQL is here; it returns the domain types of `rules`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.contracts.events import AlertSettings, NeedState
from services.contracts.vocab import AuthorityLevel
from services.infra.db import Connection
from services.needs import rules
from services.needs.rules import Authority, BuyerGroup, Need

_AUTHORITY_COLUMNS = "id::text, org_number, name, level, region, created_at"


def _authority(row: Any) -> Authority:
    return Authority(
        id=row["id"],
        org_number=row["org_number"],
        name=row["name"],
        level=AuthorityLevel(row["level"]),
        region=row["region"],
        created_at=row["created_at"],
    )


async def insert_authority(
    conn: Connection, authority_id: str, org_number: str, name: str, level: str, region: str
) -> Authority:
    """Raises asyncpg.UniqueViolationError when the org_number is registered already."""
    row = await conn.fetchrow(
        "INSERT INTO needs.authorities (id, org_number, name, level, region) "
        f"VALUES ($1, $2, $3, $4, $5) RETURNING {_AUTHORITY_COLUMNS}",
        authority_id,
        org_number,
        name,
        level,
        region,
    )
    return _authority(row)


async def list_authorities(conn: Connection) -> list[Authority]:
    rows = await conn.fetch(f"SELECT {_AUTHORITY_COLUMNS} FROM needs.authorities ORDER BY name, id")
    return [_authority(r) for r in rows]


async def missing_authorities(conn: Connection, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    found = await conn.fetch("SELECT id FROM needs.authorities WHERE id = ANY($1::uuid[])", list(ids))
    return set(ids) - {r["id"] for r in found}


# Buyer groups.


async def insert_group(conn: Connection, group: BuyerGroup, member_ids: Sequence[uuid.UUID]) -> None:
    await conn.execute(
        "INSERT INTO needs.buyer_groups (id, name, focus_area, alerts, version, created_at, updated_at) "
        "VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)",
        group.id,
        group.name,
        group.focus_area,
        group.alerts.model_dump_json(),
        group.version,
        group.created_at,
        group.updated_at,
    )
    await _set_members(conn, group.id, member_ids)


async def _set_members(conn: Connection, group_id: str, member_ids: Sequence[uuid.UUID]) -> None:
    await conn.execute(
        "INSERT INTO needs.buyer_group_members (buyer_group_id, authority_id) "
        "SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING",
        group_id,
        list(member_ids),
    )


async def update_group(conn: Connection, group: BuyerGroup, member_ids: Sequence[uuid.UUID]) -> None:
    await conn.execute(
        "UPDATE needs.buyer_groups SET name = $2, focus_area = $3, alerts = $4::jsonb, version = $5, "
        "updated_at = $6 WHERE id = $1",
        group.id,
        group.name,
        group.focus_area,
        group.alerts.model_dump_json(),
        group.version,
        group.updated_at,
    )
    await conn.execute(
        "DELETE FROM needs.buyer_group_members "
        "WHERE buyer_group_id = $1 AND NOT authority_id = ANY($2::uuid[])",
        group.id,
        list(member_ids),
    )
    await _set_members(conn, group.id, member_ids)


async def get_group(conn: Connection, group_id: str, *, for_update: bool = False) -> BuyerGroup | None:
    row = await conn.fetchrow(
        "SELECT id::text, name, focus_area, alerts, version, created_at, updated_at "
        "FROM needs.buyer_groups WHERE id = $1" + (" FOR UPDATE" if for_update else ""),
        group_id,
    )
    if row is None:
        return None
    members = await conn.fetch(
        f"SELECT {', '.join('a.' + c for c in _AUTHORITY_COLUMNS.split(', '))} "
        "FROM needs.buyer_group_members m JOIN needs.authorities a ON a.id = m.authority_id "
        "WHERE m.buyer_group_id = $1 ORDER BY a.name, a.id",
        group_id,
    )
    return BuyerGroup(
        id=row["id"],
        name=row["name"],
        focus_area=row["focus_area"],
        alerts=AlertSettings.model_validate_json(row["alerts"]),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        members=[_authority(m) for m in members],
    )


async def group_exists(conn: Connection, group_id: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM needs.buyer_groups WHERE id = $1", group_id))


async def backing(conn: Connection, group_ids: Sequence[str]) -> rules.Backing:
    """The distinct authorities that are members of any of the groups, by level."""
    rows = await conn.fetch(
        "SELECT a.level, count(DISTINCT a.id) AS n FROM needs.buyer_group_members m "
        "JOIN needs.authorities a ON a.id = m.authority_id "
        "WHERE m.buyer_group_id = ANY($1::uuid[]) GROUP BY a.level",
        list(group_ids),
    )
    by_level = {r["level"]: int(r["n"]) for r in rows}
    return rules.Backing(sum(by_level.values()), by_level)


# Needs.


def _derived(state: NeedState) -> list[Any]:
    return [
        state.status.value,
        state.focus_area.value,
        state.procedure.value,
        rules.cpv_with_ancestors(state.cpv_codes),
        rules.cpv_branches(state.cpv_codes),
        state.regions,
        rules.regions_with_parents(state.regions),
        rules.significant_words(state.title, state.description),
        f"{state.title}\n{state.description}".lower(),
        state.cosigners,
    ]


async def insert_need(conn: Connection, state: NeedState, backing: rules.Backing) -> None:
    await conn.execute(
        "INSERT INTO needs.needs (status, focus_area, procedure, cpv_with_ancestors, cpv_branches, "
        "regions, regions_with_parents, words, search_text, cosigners, id, buyer_group_id, "
        "authority_count, authorities_by_level, state, version, published_at, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::uuid[], $11, $12, $13, $14::jsonb, "
        "$15::jsonb, $16, $17, $18)",
        *_derived(state),
        state.id,
        state.buyer_group_id,
        backing.count,
        json.dumps(dict(backing.by_level)),
        state.model_dump_json(),
        state.version,
        state.published_at,
        state.updated_at,
    )


async def update_need(conn: Connection, state: NeedState, backing: rules.Backing) -> None:
    await conn.execute(
        "UPDATE needs.needs SET status = $1, focus_area = $2, procedure = $3, cpv_with_ancestors = $4, "
        "cpv_branches = $5, regions = $6, regions_with_parents = $7, words = $8, search_text = $9, "
        "cosigners = $10::uuid[], authority_count = $12, authorities_by_level = $13::jsonb, "
        "state = $14::jsonb, version = $15, updated_at = $16 WHERE id = $11",
        *_derived(state),
        state.id,
        backing.count,
        json.dumps(dict(backing.by_level)),
        state.model_dump_json(),
        state.version,
        state.updated_at,
    )


_NEED_COLUMNS = "state, authority_count, authorities_by_level"


def _need(row: Any) -> Need:
    by_level = json.loads(row["authorities_by_level"])
    return Need(NeedState.model_validate_json(row["state"]), rules.Backing(row["authority_count"], by_level))


async def get_need(conn: Connection, need_id: str, *, for_update: bool = False) -> Need | None:
    row = await conn.fetchrow(
        f"SELECT {_NEED_COLUMNS} FROM needs.needs WHERE id = $1" + (" FOR UPDATE" if for_update else ""),
        need_id,
    )
    return _need(row) if row else None


async def open_needs_backed_by(conn: Connection, group_id: str) -> list[Need]:
    """The open needs the group owns or co-signs, locked until the transaction ends."""
    rows = await conn.fetch(
        f"SELECT {_NEED_COLUMNS} FROM needs.needs WHERE status = 'open' "
        "AND (buyer_group_id = $1 OR cosigners @> ARRAY[$1::uuid]) ORDER BY id FOR UPDATE",
        group_id,
    )
    return [_need(r) for r in rows]


async def all_open_needs(conn: Connection) -> list[Need]:
    """Every open need, newest first."""
    rows = await conn.fetch(
        f"SELECT {_NEED_COLUMNS} FROM needs.needs WHERE status = 'open' ORDER BY published_at DESC, id DESC"
    )
    return [_need(r) for r in rows]


async def groups_with_members(conn: Connection, group_ids: Sequence[str]) -> dict[str, BuyerGroup]:
    """The buyer groups by id, each with its member authorities (by name)."""
    rows = await conn.fetch(
        "SELECT id::text, name, focus_area, alerts, version, created_at, updated_at "
        "FROM needs.buyer_groups WHERE id = ANY($1::uuid[])",
        list(group_ids),
    )
    members = await conn.fetch(
        "SELECT m.buyer_group_id::text AS group_id, "
        + ", ".join("a." + c for c in _AUTHORITY_COLUMNS.split(", "))
        + " FROM needs.buyer_group_members m JOIN needs.authorities a ON a.id = m.authority_id "
        "WHERE m.buyer_group_id = ANY($1::uuid[]) ORDER BY a.name, a.id",
        list(group_ids),
    )
    by_group: dict[str, list[Authority]] = {}
    for m in members:
        by_group.setdefault(m["group_id"], []).append(_authority(m))
    return {
        r["id"]: BuyerGroup(
            id=r["id"],
            name=r["name"],
            focus_area=r["focus_area"],
            alerts=AlertSettings.model_validate_json(r["alerts"]),
            version=r["version"],
            created_at=r["created_at"],
            updated_at=r["updated_at"],
            members=by_group.get(r["id"], []),
        )
        for r in rows
    }


@dataclass(frozen=True)
class NeedFilter:
    focus_area: str | None = None
    procedure: str | None = None
    cpv: str | None = None
    region: str | None = None
    terms: Sequence[str] = ()
    after: tuple[datetime, uuid.UUID] | None = None


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_open_needs(conn: Connection, f: NeedFilter, limit: int) -> list[tuple[Need, datetime]]:
    """Open needs matching f, newest first (published_at, then id), at most limit."""
    where = ["status = 'open'"]
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if f.focus_area is not None:
        where.append(f"focus_area = {arg(f.focus_area)}")
    if f.procedure is not None:
        where.append(f"procedure = {arg(f.procedure)}")
    if f.cpv is not None:
        where.append(f"cpv_with_ancestors @> ARRAY[{arg(f.cpv)}::text]")
    if f.region is not None:
        # A need covers the region when one of its regions lies within it or contains it.
        inside = f"regions_with_parents @> ARRAY[{arg(f.region)}::text]"
        around = f"regions && {arg(rules.region_with_parents(f.region))}::text[]"
        where.append(f"({inside} OR {around})")
    for term in f.terms:
        where.append(f"search_text LIKE {arg(_like(term))}")
    if f.after is not None:
        at, ident = f.after
        where.append(f"(published_at, id) < ({arg(at)}, {arg(ident)})")
    rows = await conn.fetch(
        f"SELECT {_NEED_COLUMNS}, published_at FROM needs.needs WHERE {' AND '.join(where)} "
        f"ORDER BY published_at DESC, id DESC LIMIT {arg(limit)}",
        *args,
    )
    return [(_need(r), r["published_at"]) for r in rows]


@dataclass(frozen=True)
class Candidate:
    need: Need
    branches: list[str]
    words: list[str]


async def similar_candidates(
    conn: Connection, need_id: str, owner: str, branches: Sequence[str], words: Sequence[str], limit: int
) -> list[Candidate]:
    """Open needs of other groups that share a CPV branch or a significant word with a need."""
    rows = await conn.fetch(
        f"SELECT {_NEED_COLUMNS}, cpv_branches, words FROM needs.needs "
        "WHERE status = 'open' AND id <> $1 AND buyer_group_id <> $2 "
        "AND (cpv_branches && $3::text[] OR words && $4::text[]) "
        "ORDER BY published_at DESC, id DESC LIMIT $5",
        need_id,
        owner,
        list(branches),
        list(words),
        limit,
    )
    return [Candidate(_need(r), list(r["cpv_branches"]), list(r["words"])) for r in rows]


async def branches_and_words(conn: Connection, need_id: str) -> tuple[list[str], list[str]]:
    row = await conn.fetchrow("SELECT cpv_branches, words FROM needs.needs WHERE id = $1", need_id)
    return (list(row["cpv_branches"]), list(row["words"])) if row else ([], [])


# What the service learns from other services' events: suppliers and shortlists.


async def learn_suppliers(conn: Connection, rows: Sequence[tuple[str, str | None, bool, int]]) -> None:
    """(id, name, removed, version) of suppliers, each kept unless a later version is stored."""
    await conn.executemany(
        "INSERT INTO needs.suppliers (id, name, removed, version) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, removed = EXCLUDED.removed, "
        "version = EXCLUDED.version "
        "WHERE NOT needs.suppliers.removed AND needs.suppliers.version < EXCLUDED.version "
        "OR EXCLUDED.removed AND NOT needs.suppliers.removed",
        rows,
    )


async def learn_matches(
    conn: Connection, rows: Sequence[tuple[str, str, float, bool, str | None, int]]
) -> None:
    """(need id, supplier id, score, active, verdict, version) of matches, newest version wins."""
    await conn.executemany(
        "INSERT INTO needs.shortlist (need_id, supplier_id, score, active, verdict, version) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (need_id, supplier_id) DO UPDATE SET "
        "score = EXCLUDED.score, active = EXCLUDED.active, verdict = EXCLUDED.verdict, "
        "version = EXCLUDED.version WHERE needs.shortlist.version < EXCLUDED.version",
        rows,
    )


async def unknown_suppliers(conn: Connection, ids: Sequence[str]) -> list[str]:
    """The ids among `ids` of no registered supplier (never seen, or removed), in order."""
    rows = await conn.fetch(
        "SELECT id FROM needs.suppliers WHERE id = ANY($1::text[]) AND NOT removed", list(ids)
    )
    known = {r["id"] for r in rows}
    return [i for i in ids if i not in known]


async def shortlist_top(conn: Connection, need_id: str, n: int) -> list[str]:
    """The need's n best active matches of suppliers not removed, ranked as the matcher ranks
    them: judged not relevant last, then by score, then by supplier id."""
    rows = await conn.fetch(
        "SELECT m.supplier_id FROM needs.shortlist m "
        "LEFT JOIN needs.suppliers s ON s.id = m.supplier_id "
        "WHERE m.need_id = $1 AND m.active AND NOT coalesce(s.removed, false) "
        "ORDER BY m.verdict IS NOT DISTINCT FROM 'not_relevant', m.score DESC, m.supplier_id LIMIT $2",
        need_id,
        n,
    )
    return [r["supplier_id"] for r in rows]


# Dialogues.


async def insert_dialogue(conn: Connection, d: rules.Dialogue) -> None:
    await conn.execute(
        "INSERT INTO needs.dialogues (id, need_id, opened_by, title, agenda, open_to_all, closes_at, "
        "status, version, opened_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        d.id,
        d.need_id,
        d.opened_by,
        d.title,
        d.agenda,
        d.open_to_all,
        d.closes_at,
        d.status,
        d.version,
        d.opened_at,
        d.updated_at,
    )


async def update_dialogue(conn: Connection, d: rules.Dialogue) -> None:
    await conn.execute(
        "UPDATE needs.dialogues SET status = $2, version = $3, updated_at = $4 WHERE id = $1",
        d.id,
        d.status,
        d.version,
        d.updated_at,
    )


async def invite(conn: Connection, dialogue_id: str, supplier_ids: Sequence[str], at: datetime) -> None:
    await conn.execute(
        "INSERT INTO needs.dialogue_suppliers (dialogue_id, supplier_id, invited_at) "
        "SELECT $1, unnest($2::text[]), $3 ON CONFLICT DO NOTHING",
        dialogue_id,
        list(supplier_ids),
        at,
    )


async def join(conn: Connection, dialogue_id: str, supplier_id: str, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO needs.dialogue_suppliers (dialogue_id, supplier_id, joined_at) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING",
        dialogue_id,
        supplier_id,
        at,
    )


async def respond(conn: Connection, dialogue_id: str, supplier_id: str, response: str, at: datetime) -> None:
    await conn.execute(
        "UPDATE needs.dialogue_suppliers SET response = $3, responded_at = $4 "
        "WHERE dialogue_id = $1 AND supplier_id = $2",
        dialogue_id,
        supplier_id,
        response,
        at,
    )


_DIALOGUE_COLUMNS = (
    "d.id::text, d.need_id::text, n.state->>'title' AS need_title, d.opened_by::text, "
    "n.buyer_group_id::text AS owner, n.cosigners::text[] AS cosigners, d.title, d.agenda, "
    "d.open_to_all, d.closes_at, d.status, d.version, d.opened_at, d.updated_at"
)


async def get_dialogue(
    conn: Connection, dialogue_id: str, *, for_update: bool = False
) -> rules.Dialogue | None:
    row = await conn.fetchrow(
        f"SELECT {_DIALOGUE_COLUMNS} FROM needs.dialogues d JOIN needs.needs n ON n.id = d.need_id "
        "WHERE d.id = $1" + (" FOR UPDATE OF d" if for_update else ""),
        dialogue_id,
    )
    if row is None:
        return None
    suppliers = await conn.fetch(
        "SELECT p.supplier_id, s.name, p.invited_at, p.joined_at, p.response, p.responded_at "
        "FROM needs.dialogue_suppliers p LEFT JOIN needs.suppliers s ON s.id = p.supplier_id "
        "WHERE p.dialogue_id = $1 ORDER BY coalesce(p.invited_at, p.joined_at), p.supplier_id",
        dialogue_id,
    )
    groups = [row["owner"], *row["cosigners"]]
    return rules.Dialogue(
        id=row["id"],
        need_id=row["need_id"],
        need_title=row["need_title"],
        opened_by=row["opened_by"],
        groups=groups,
        title=row["title"],
        agenda=row["agenda"],
        open_to_all=row["open_to_all"],
        closes_at=row["closes_at"],
        status=row["status"],
        version=row["version"],
        opened_at=row["opened_at"],
        updated_at=row["updated_at"],
        suppliers=[
            rules.DialogueSupplier(
                supplier_id=s["supplier_id"],
                name=s["name"],
                invited_at=s["invited_at"],
                joined_at=s["joined_at"],
                response=s["response"],
                responded_at=s["responded_at"],
            )
            for s in suppliers
        ],
        group_names=await group_names(conn, groups),
    )


async def dialogue_ids_of_need(conn: Connection, need_id: str) -> list[str]:
    """The need's dialogues, newest first."""
    rows = await conn.fetch(
        "SELECT id::text AS id FROM needs.dialogues WHERE need_id = $1 ORDER BY opened_at DESC, id",
        need_id,
    )
    return [r["id"] for r in rows]


async def open_dialogue_ids_of_need(conn: Connection, need_id: str) -> list[str]:
    """The need's open dialogues, locked until commit."""
    rows = await conn.fetch(
        "SELECT id::text AS id FROM needs.dialogues WHERE need_id = $1 AND status = 'open' "
        "ORDER BY id FOR UPDATE",
        need_id,
    )
    return [r["id"] for r in rows]


async def due_dialogues(conn: Connection, now: datetime, limit: int) -> list[str]:
    """Open dialogues whose closes_at has passed, locked (others skip them) until commit."""
    rows = await conn.fetch(
        "SELECT id::text FROM needs.dialogues WHERE status = 'open' AND closes_at <= $1 "
        "ORDER BY closes_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        now,
        limit,
    )
    return [r["id"] for r in rows]


_QUESTION_COLUMNS = (
    "id::text, dialogue_id::text, asked_by, question, asked_at, answer, answered_by::text, answered_at"
)


def _question(row: Any) -> rules.Question:
    return rules.Question(**dict(row))


async def insert_question(conn: Connection, q: rules.Question) -> None:
    await conn.execute(
        "INSERT INTO needs.dialogue_questions (id, dialogue_id, asked_by, question, asked_at) "
        "VALUES ($1, $2, $3, $4, $5)",
        q.id,
        q.dialogue_id,
        q.asked_by,
        q.question,
        q.asked_at,
    )


async def get_question(
    conn: Connection, dialogue_id: str, question_id: str, *, for_update: bool = False
) -> rules.Question | None:
    row = await conn.fetchrow(
        f"SELECT {_QUESTION_COLUMNS} FROM needs.dialogue_questions WHERE id = $1 AND dialogue_id = $2"
        + (" FOR UPDATE" if for_update else ""),
        question_id,
        dialogue_id,
    )
    return _question(row) if row else None


async def answer_question(
    conn: Connection, question_id: str, answer: str, group_id: str, at: datetime
) -> None:
    await conn.execute(
        "UPDATE needs.dialogue_questions SET answer = $2, answered_by = $3, answered_at = $4 WHERE id = $1",
        question_id,
        answer,
        group_id,
        at,
    )


async def questions(conn: Connection, dialogue_id: str) -> list[rules.Question]:
    """Every question of the dialogue, oldest first."""
    rows = await conn.fetch(
        f"SELECT {_QUESTION_COLUMNS} FROM needs.dialogue_questions WHERE dialogue_id = $1 "
        "ORDER BY asked_at, id",
        dialogue_id,
    )
    return [_question(r) for r in rows]


async def insert_input(conn: Connection, written: rules.WrittenInput) -> None:
    await conn.execute(
        "INSERT INTO needs.dialogue_inputs (id, dialogue_id, supplier_id, text, submitted_at) "
        "VALUES ($1, $2, $3, $4, $5)",
        written.id,
        written.dialogue_id,
        written.supplier_id,
        written.text,
        written.submitted_at,
    )


async def inputs(conn: Connection, dialogue_id: str) -> list[rules.WrittenInput]:
    rows = await conn.fetch(
        "SELECT id::text, dialogue_id::text, supplier_id, text, submitted_at FROM needs.dialogue_inputs "
        "WHERE dialogue_id = $1 ORDER BY submitted_at, id",
        dialogue_id,
    )
    return [rules.WrittenInput(**dict(r)) for r in rows]


async def group_names(conn: Connection, group_ids: Sequence[str]) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT id::text, name FROM needs.buyer_groups WHERE id = ANY($1::uuid[])", list(group_ids)
    )
    return {r["id"]: r["name"] for r in rows}


async def answered_questions(conn: Connection, need_ids: Sequence[str]) -> dict[str, list[rules.Question]]:
    """The answered questions of the needs' dialogues by need id, oldest first."""
    rows = await conn.fetch(
        "SELECT d.need_id::text AS need_id, "
        + ", ".join(f"q.{c}" for c in _QUESTION_COLUMNS.split(", "))
        + " FROM needs.dialogue_questions q JOIN needs.dialogues d ON d.id = q.dialogue_id "
        "WHERE d.need_id = ANY($1::uuid[]) AND q.answer IS NOT NULL ORDER BY q.asked_at, q.id",
        list(need_ids),
    )
    out: dict[str, list[rules.Question]] = {}
    for r in rows:
        fields = dict(r)
        out.setdefault(fields.pop("need_id"), []).append(rules.Question(**fields))
    return out


async def has_answered(conn: Connection, dialogue_id: str, supplier_id: str) -> bool:
    """Whether the supplier asked in the dialogue or responded to it (accepted, declined or
    gave written input)."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM needs.dialogue_questions WHERE dialogue_id = $1 AND asked_by = $2) "
            "OR EXISTS (SELECT 1 FROM needs.dialogue_inputs WHERE dialogue_id = $1 AND supplier_id = $2) "
            "OR EXISTS (SELECT 1 FROM needs.dialogue_suppliers "
            "WHERE dialogue_id = $1 AND supplier_id = $2 AND response IS NOT NULL)",
            dialogue_id,
            supplier_id,
        )
    )
