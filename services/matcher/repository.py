"""The matcher schema: its projections of suppliers and needs, and the matches it published."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np

from services.contracts.events import (
    AlertSettings,
    MatchExplanation,
    MatchState,
    NeedState,
    SupplierState,
    match_id,
)
from services.contracts.vocab import Verdict
from services.infra.db import Connection

# The projections that hold states with a text hash: their key's type and state column.
_TEXTS = Literal["suppliers", "needs"]
_ID_TYPE = {"suppliers": "uuid", "needs": "text"}
_STATE: dict[str, tuple[str, type[SupplierState] | type[NeedState]]] = {
    "suppliers": ("profile", SupplierState),
    "needs": ("state", NeedState),
}

# Suppliers.


async def upsert_supplier(conn: Connection, state: SupplierState) -> bool:
    """Store `state` unless a newer version is already there; True when stored."""
    stored = await conn.fetchval(
        "INSERT INTO matcher.suppliers (id, version, profile) VALUES ($1, $2, $3::jsonb) "
        "ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, profile = EXCLUDED.profile, "
        "updated_at = now() WHERE matcher.suppliers.version < EXCLUDED.version RETURNING true",
        state.id,
        state.version,
        _without_alerts(state),
    )
    return bool(stored)


async def supplier_chunks(conn: Connection, size: int = 20_000) -> AsyncIterator[list[SupplierState]]:
    """Every stored supplier, `size` at a time in id order (a million never sit in memory as
    rows and models at once)."""
    after = None
    while True:
        rows = await conn.fetch(
            "SELECT id, profile FROM matcher.suppliers WHERE $1::uuid IS NULL OR id > $1 "
            "ORDER BY id LIMIT $2",
            after,
            size,
        )
        if not rows:
            return
        yield [SupplierState.model_validate_json(r["profile"]) for r in rows]
        after = rows[-1]["id"]


# Needs.


async def upsert_need(conn: Connection, state: NeedState) -> bool:
    """Store `state` unless the same or a newer version is already there; True when stored."""
    stored = await conn.fetchval(
        "INSERT INTO matcher.needs (id, version, status, state) VALUES ($1, $2, $3, $4::jsonb) "
        "ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, status = EXCLUDED.status, "
        "state = EXCLUDED.state, updated_at = now() WHERE matcher.needs.version < EXCLUDED.version "
        "RETURNING true",
        state.id,
        state.version,
        state.status.value,
        state.model_dump_json(),
    )
    return bool(stored)


async def get_need(conn: Connection, need_id: str) -> NeedState | None:
    raw = await conn.fetchval("SELECT state FROM matcher.needs WHERE id = $1", need_id)
    return None if raw is None else NeedState.model_validate_json(raw)


async def stored_states(conn: Connection, table: _TEXTS, ids: list[str]) -> list[SupplierState | NeedState]:
    """The projected states of these suppliers or needs (those the projection has)."""
    column, model = _STATE[table]
    rows = await conn.fetch(
        f"SELECT {column} AS state FROM matcher.{table} WHERE id = ANY($1::{_ID_TYPE[table]}[])", ids
    )
    return [model.model_validate_json(r["state"]) for r in rows]


async def load_open_needs(conn: Connection) -> list[NeedState]:
    rows = await conn.fetch("SELECT state FROM matcher.needs WHERE status = 'open'")
    return [NeedState.model_validate_json(r["state"]) for r in rows]


# Matches.


@dataclass
class StoredMatch:
    need_id: str
    supplier_id: str
    score: float
    version: int
    status: str
    explanation: MatchExplanation
    updated_at: datetime
    verdict: Verdict | None = None
    verdict_reason: str | None = None

    def state(self) -> MatchState:
        return MatchState(
            id=match_id(self.need_id, self.supplier_id),
            need_id=self.need_id,
            supplier_id=self.supplier_id,
            score=self.score,
            version=self.version,
            status="active" if self.status == "active" else "withdrawn",
            explanation=self.explanation,
            updated_at=self.updated_at,
            verdict=self.verdict,
            verdict_reason=self.verdict_reason,
        )


# Written by the ranking; the verdict columns only by `judge`.
_MATCH_COLUMNS = "need_id, supplier_id, score, version, status, explanation, updated_at"
_READ_COLUMNS = f"{_MATCH_COLUMNS}, verdict, verdict_reason"


def _match(row: Any) -> StoredMatch:
    return StoredMatch(
        need_id=row["need_id"],
        supplier_id=row["supplier_id"],
        score=row["score"],
        version=row["version"],
        status=row["status"],
        explanation=MatchExplanation.model_validate_json(row["explanation"]),
        updated_at=row["updated_at"],
        verdict=None if row["verdict"] is None else Verdict(row["verdict"]),
        verdict_reason=row["verdict_reason"],
    )


async def get_match(
    conn: Connection, need_id: str, supplier_id: str, *, for_update: bool = False
) -> StoredMatch | None:
    row = await conn.fetchrow(
        f"SELECT {_READ_COLUMNS} FROM matcher.matches WHERE id = $1" + (" FOR UPDATE" if for_update else ""),
        match_id(need_id, supplier_id),
    )
    return None if row is None else _match(row)


async def need_cuts(conn: Connection, top_k: int) -> dict[str, float]:
    """For each need with at least top_k active matches, the score of its k-th best."""
    rows = await conn.fetch(
        "SELECT need_id, score FROM (SELECT need_id, score, row_number() OVER "
        "(PARTITION BY need_id ORDER BY score DESC, supplier_id) AS rank FROM matcher.matches "
        "WHERE status = 'active') ranked WHERE rank = $1",
        top_k,
    )
    return {r["need_id"]: r["score"] for r in rows}


async def need_matches(conn: Connection, need_id: str, limit: int) -> list[dict[str, Any]]:
    """The need's active matches, best first, with what a buyer needs to know of each supplier."""
    rows = await conn.fetch(
        f"SELECT {', '.join('m.' + c for c in _READ_COLUMNS.split(', '))}, "
        "s.profile->>'name' AS supplier_name, s.profile->>'size' AS supplier_size "
        "FROM matcher.matches m LEFT JOIN matcher.suppliers s ON s.id::text = m.supplier_id "
        "WHERE m.need_id = $1 AND m.status = 'active' "
        # A supplier the buyers judged not relevant goes to the end of the shortlist.
        "ORDER BY m.verdict IS NOT DISTINCT FROM 'not_relevant', m.score DESC, m.supplier_id LIMIT $2",
        need_id,
        limit,
    )
    return [
        {"match": _match(r), "supplier_name": r["supplier_name"], "supplier_size": r["supplier_size"]}
        for r in rows
    ]


async def supplier_matches(conn: Connection, supplier_id: str, limit: int) -> list[dict[str, Any]]:
    """The supplier's active matches, best first, with the title and deadline of each need."""
    rows = await conn.fetch(
        f"SELECT {', '.join('m.' + c for c in _READ_COLUMNS.split(', '))}, "
        "n.state->>'title' AS need_title, n.state->>'respond_by' AS respond_by "
        "FROM matcher.matches m LEFT JOIN matcher.needs n ON n.id = m.need_id "
        "WHERE m.supplier_id = $1 AND m.status = 'active' ORDER BY m.score DESC, m.need_id LIMIT $2",
        supplier_id,
        limit,
    )
    return [{"match": _match(r), "need_title": r["need_title"], "respond_by": r["respond_by"]} for r in rows]


async def judge(conn: Connection, match: StoredMatch, by: str, at: datetime) -> None:
    """Store a verdict on a match, with its new version (`match` holds both)."""
    await conn.execute(
        "UPDATE matcher.matches SET verdict = $2, verdict_reason = $3, judged_by = $4, judged_at = $5, "
        "version = $6, updated_at = $5 WHERE id = $1",
        match_id(match.need_id, match.supplier_id),
        match.verdict,
        match.verdict_reason,
        by,
        at,
        match.version,
    )


async def consortium_members(conn: Connection, supplier_ids: Sequence[str]) -> dict[str, str]:
    """id -> name of those of the suppliers that accept being suggested for a consortium."""
    rows = await conn.fetch(
        "SELECT id::text AS id, profile->>'name' AS name FROM matcher.suppliers "
        "WHERE id::text = ANY($1::text[]) "
        "AND (profile->'capabilities'->>'open_to_consortia')::boolean IS NOT FALSE",
        list(supplier_ids),
    )
    return {r["id"]: r["name"] for r in rows}


# Bulk forms, for handling a polled batch in a few statements.


async def upsert_suppliers(conn: Connection, states: list[SupplierState]) -> None:
    """Store each state unless a newer version is there (ids must be distinct)."""
    if not states:
        return
    await conn.execute(
        "INSERT INTO matcher.suppliers (id, version, profile) "
        "SELECT u.id, u.version, u.profile::jsonb FROM unnest($1::uuid[], $2::int[], $3::text[]) "
        "AS u(id, version, profile) "
        "ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, profile = EXCLUDED.profile, "
        "updated_at = now() WHERE matcher.suppliers.version < EXCLUDED.version",
        [s.id for s in states],
        [s.version for s in states],
        [_without_alerts(s) for s in states],
    )


def _without_alerts(state: SupplierState) -> str:
    """The profile as the matcher keeps it: no alert settings (webhook secret, alert e-mail)."""
    return state.model_copy(update={"alerts": AlertSettings()}).model_dump_json()


async def delete_suppliers(conn: Connection, supplier_ids: list[str]) -> None:
    if supplier_ids:
        await conn.execute("DELETE FROM matcher.suppliers WHERE id::text = ANY($1::text[])", supplier_ids)


async def upsert_needs(conn: Connection, states: list[NeedState]) -> None:
    """Store each state unless the same or a newer version is there (ids must be distinct)."""
    if not states:
        return
    await conn.execute(
        "INSERT INTO matcher.needs (id, version, status, state) "
        "SELECT u.id, u.version, u.status, u.state::jsonb "
        "FROM unnest($1::text[], $2::int[], $3::text[], $4::text[]) AS u(id, version, status, state) "
        "ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, status = EXCLUDED.status, "
        "state = EXCLUDED.state, updated_at = now() WHERE matcher.needs.version < EXCLUDED.version",
        [s.id for s in states],
        [s.version for s in states],
        [s.status.value for s in states],
        [s.model_dump_json() for s in states],
    )


async def stored_need_versions(conn: Connection, need_ids: list[str]) -> dict[str, int]:
    rows = await conn.fetch("SELECT id, version FROM matcher.needs WHERE id = ANY($1::text[])", need_ids)
    return {r["id"]: r["version"] for r in rows}


# Advisory lock spaces (the second key is the hash of the id); the notifier uses 0x1A7E_004x.
_NEED_LOCKS = 0x1A7E_0031
_SUPPLIER_LOCKS = 0x1A7E_0032


async def _lock(conn: Connection, space: int, keys: Sequence[str], exclusive: bool = True) -> None:
    """Take transaction-level advisory locks on `keys`, all in one statement in key order, so
    two transactions never wait for each other in a cycle."""
    if not keys:
        return
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await conn.execute(
        f"SELECT {fn}($1, k) FROM (SELECT DISTINCT hashtext(x) AS k FROM unnest($2::text[]) x ORDER BY 1) s",
        space,
        list(keys),
    )


async def lock_suppliers(conn: Connection, supplier_ids: Sequence[str], *, exclusive: bool) -> None:
    """Erasing a supplier takes its lock exclusively; publishing a match for it, shared."""
    await _lock(conn, _SUPPLIER_LOCKS, supplier_ids, exclusive)


async def closed_needs_of(conn: Connection, need_ids: Sequence[str]) -> set[str]:
    """Which of these needs the projection holds as no longer open (as committed, or by this
    transaction). A need not there yet is open: its first version's transaction, in another
    consumer of this or another instance, has not committed."""
    rows = await conn.fetch(
        "SELECT id FROM matcher.needs WHERE id = ANY($1::text[]) AND status <> 'open'", list(need_ids)
    )
    return {r["id"] for r in rows}


async def active_scores(conn: Connection, need_ids: set[str]) -> dict[str, dict[str, float]]:
    """need id -> supplier id -> score of the needs' active matches, locked until commit.

    Every transaction that changes a need's matches calls this first for all the needs it
    changes: the need's advisory lock serialises them, so one that inserts a new pair and one
    that closes or re-ranks the need never decide on different views of its matches."""
    await _lock(conn, _NEED_LOCKS, sorted(need_ids))
    rows = await conn.fetch(
        "SELECT need_id, supplier_id, score FROM matcher.matches "
        "WHERE need_id = ANY($1::text[]) AND status = 'active' ORDER BY id FOR UPDATE",
        sorted(need_ids),
    )
    out: dict[str, dict[str, float]] = {n: {} for n in need_ids}
    for r in rows:
        out[r["need_id"]][r["supplier_id"]] = r["score"]
    return out


async def active_pairs_of(conn: Connection, supplier_ids: list[str]) -> list[tuple[str, str]]:
    """(need id, supplier id) of the suppliers' active matches."""
    rows = await conn.fetch(
        "SELECT need_id, supplier_id FROM matcher.matches WHERE supplier_id = ANY($1::text[]) "
        "AND status = 'active'",
        supplier_ids,
    )
    return [(r["need_id"], r["supplier_id"]) for r in rows]


async def matches_by_pair(
    conn: Connection, pairs: list[tuple[str, str]]
) -> dict[tuple[str, str], StoredMatch]:
    """The stored matches of these pairs, locked until commit."""
    if not pairs:
        return {}
    rows = await conn.fetch(
        f"SELECT {_READ_COLUMNS} FROM matcher.matches WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE",
        sorted(match_id(n, s) for n, s in pairs),
    )
    return {(r["need_id"], r["supplier_id"]): _match(r) for r in rows}


def _columns(matches: list[StoredMatch]) -> list[list[Any]]:
    return [
        [match_id(m.need_id, m.supplier_id) for m in matches],
        [m.need_id for m in matches],
        [m.supplier_id for m in matches],
        [m.score for m in matches],
        [m.version for m in matches],
        [m.status for m in matches],
        [m.explanation.model_dump_json() for m in matches],
        [m.updated_at for m in matches],
    ]


async def insert_matches(conn: Connection, matches: list[StoredMatch]) -> set[str]:
    """Insert first versions; the ids inserted (another writer may have got there first)."""
    if not matches:
        return set()
    rows = await conn.fetch(
        f"INSERT INTO matcher.matches (id, {_MATCH_COLUMNS}) "
        "SELECT u.id, u.need_id, u.supplier_id, u.score, u.version, u.status, u.explanation::jsonb, u.at "
        "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::float8[], $5::int[], $6::text[], $7::text[], "
        "$8::timestamptz[]) AS u(id, need_id, supplier_id, score, version, status, explanation, at) "
        "ON CONFLICT (id) DO NOTHING RETURNING id::text",
        *_columns(matches),
    )
    return {r["id"] for r in rows}


async def update_matches(conn: Connection, matches: list[StoredMatch]) -> None:
    if not matches:
        return
    await conn.execute(
        "UPDATE matcher.matches m SET score = u.score, version = u.version, status = u.status, "
        "explanation = u.explanation::jsonb, updated_at = u.at "
        "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::float8[], $5::int[], $6::text[], $7::text[], "
        "$8::timestamptz[]) AS u(id, need_id, supplier_id, score, version, status, explanation, at) "
        "WHERE m.id = u.id",
        *_columns(matches),
    )


# Embeddings.


@dataclass(frozen=True)
class StoredEmbedding:
    vector: np.ndarray[Any, Any]
    sentences: list[str]
    sentence_vectors: np.ndarray[Any, Any] | None


def _vector(raw: bytes) -> np.ndarray[Any, Any]:
    return np.frombuffer(raw, dtype=np.float32).copy()


async def existing_embeddings(conn: Connection, hashes: list[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT text_hash FROM matcher.embeddings WHERE text_hash = ANY($1::text[])", hashes
    )
    return {r["text_hash"] for r in rows}


async def embedding_vectors(conn: Connection, hashes: list[str]) -> dict[str, np.ndarray[Any, Any]]:
    rows = await conn.fetch(
        "SELECT text_hash, vector FROM matcher.embeddings WHERE text_hash = ANY($1::text[])", hashes
    )
    return {r["text_hash"]: _vector(r["vector"]) for r in rows}


async def insert_embeddings(conn: Connection, model: str, rows: dict[str, Any]) -> None:
    """Store vectors by text hash; a hash stored meanwhile by another instance is kept."""
    if not rows:
        return
    await conn.executemany(
        "INSERT INTO matcher.embeddings (text_hash, model, vector, sentences, sentence_vectors) "
        "VALUES ($1, $2, $3, $4::jsonb, $5) ON CONFLICT (text_hash) DO NOTHING",
        [
            (
                h,
                model,
                e.vector.astype(np.float32).tobytes(),
                json.dumps(list(e.sentences), ensure_ascii=False),
                None if e.sentence_vectors is None else e.sentence_vectors.astype(np.float16).tobytes(),
            )
            for h, e in rows.items()
        ],
    )


async def set_text_hashes(conn: Connection, table: _TEXTS, hashes: dict[str, str]) -> None:
    """Record the hash of each projected supplier's or need's current text (its vector's key)."""
    if hashes:
        await conn.execute(
            f"UPDATE matcher.{table} t SET text_hash = u.h "
            f"FROM unnest($1::{_ID_TYPE[table]}[], $2::text[]) AS u(id, h) WHERE t.id = u.id",
            list(hashes),
            list(hashes.values()),
        )


async def text_vectors(conn: Connection, table: _TEXTS, ids: list[str]) -> dict[str, np.ndarray[Any, Any]]:
    """The stored vectors of these suppliers' or needs' current texts, by id."""
    rows = await conn.fetch(
        f"SELECT t.id::text AS id, e.vector FROM matcher.{table} t "
        f"JOIN matcher.embeddings e ON e.text_hash = t.text_hash WHERE t.id = ANY($1::{_ID_TYPE[table]}[])",
        ids,
    )
    return {r["id"]: _vector(r["vector"]) for r in rows}


async def supplier_sentences(
    conn: Connection, supplier_ids: list[str]
) -> dict[str, tuple[list[str], np.ndarray[Any, Any]]]:
    """The sentences of these suppliers' profiles and their vectors, for explanations."""
    rows = await conn.fetch(
        "SELECT s.id::text AS id, e.sentences, e.sentence_vectors FROM matcher.suppliers s "
        "JOIN matcher.embeddings e ON e.text_hash = s.text_hash "
        "WHERE s.id::text = ANY($1::text[]) AND e.sentence_vectors IS NOT NULL",
        supplier_ids,
    )
    out = {}
    for r in rows:
        texts = json.loads(r["sentences"])
        vectors = np.frombuffer(r["sentence_vectors"], dtype=np.float16).reshape(len(texts), -1)
        out[r["id"]] = (texts, vectors)
    return out


async def forget_supplier_passages(conn: Connection, supplier_ids: list[str]) -> None:
    """Erasure: the sentences quoted from removed suppliers' profiles leave their matches."""
    if supplier_ids:
        await conn.execute(
            "UPDATE matcher.matches SET explanation = explanation - 'closest_passage' "
            "WHERE supplier_id = ANY($1::text[]) AND explanation ? 'closest_passage'",
            supplier_ids,
        )


async def record_supplier_texts(conn: Connection, texts: list[tuple[str, str]]) -> None:
    """Remember which text versions (supplier id, text hash) each supplier has had."""
    if texts:
        await conn.execute(
            "INSERT INTO matcher.supplier_texts (supplier_id, text_hash) "
            "SELECT * FROM unnest($1::uuid[], $2::text[]) ON CONFLICT DO NOTHING",
            [i for i, _ in texts],
            [h for _, h in texts],
        )


async def forget_supplier_embeddings(conn: Connection, supplier_ids: list[str]) -> None:
    """Erasure: the embedded texts (sentences included) of every version of removed suppliers
    go too, except a text another supplier has as well (its vector is that supplier's too)."""
    if supplier_ids:
        await conn.execute(
            "DELETE FROM matcher.embeddings e USING matcher.supplier_texts t "
            "WHERE t.text_hash = e.text_hash AND t.supplier_id = ANY($1::uuid[]) "
            "AND NOT EXISTS (SELECT 1 FROM matcher.supplier_texts o "
            "WHERE o.text_hash = e.text_hash AND o.supplier_id <> ALL($1::uuid[]))",
            supplier_ids,
        )
        await conn.execute(
            "DELETE FROM matcher.supplier_texts WHERE supplier_id = ANY($1::uuid[])", supplier_ids
        )
