"""The matcher reads its supplier projection back in chunks at start-up: every stored
supplier once, the newest version of each, whatever the chunk size."""

from __future__ import annotations

import json
import uuid

import asyncpg
import numpy as np
import pytest

from services.contracts.events import match_id
from services.contracts.vocab import Verdict
from services.infra import erasure
from services.infra.auth import Principal
from services.infra.errors import Forbidden, NotFound
from services.infra.runtime import Runtime
from services.matcher import repository, semantic
from services.matcher.embeddings import Vectors
from services.matcher.engine import MatchEngine
from services.matcher.handlers import Matcher, judge
from services.matcher.metrics import MatcherMetrics
from tests import factories
from tests.conftest import Stack


async def test_supplier_chunks_read_every_stored_supplier_once(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        states = [factories.supplier_state() for _ in range(5)]
        await repository.upsert_suppliers(conn, states)
        newer = states[2].model_copy(update={"version": states[2].version + 1, "name": "Nytt namn AB"})
        await repository.upsert_suppliers(conn, [newer])

        chunks = [chunk async for chunk in repository.supplier_chunks(conn, size=2)]

    assert all(len(c) == 2 for c in chunks[:-1]) and 1 <= len(chunks[-1]) <= 2
    read = [s for chunk in chunks for s in chunk]
    assert [s.id for s in read] == sorted({s.id for s in read})  # in id order, each once
    mine = {s.id: s for s in read if s.id in {t.id for t in states}}
    assert len(mine) == len(states)
    assert mine[newer.id].name == "Nytt namn AB"


async def test_erasure_takes_every_version_of_a_suppliers_text_but_not_a_shared_one(
    db: asyncpg.Pool,
) -> None:
    def embedded() -> semantic.Embedded:
        return semantic.Embedded(np.ones(semantic.DIM, dtype=np.float32))

    erased, other = str(uuid.uuid4()), str(uuid.uuid4())
    first, second, shared = (f"{uuid.uuid4()}" for _ in range(3))
    async with db.acquire() as conn:
        await repository.insert_embeddings(conn, "m", {h: embedded() for h in (first, second, shared)})
        await repository.record_supplier_texts(conn, [(erased, first), (erased, second), (erased, shared)])
        await repository.record_supplier_texts(conn, [(other, shared)])

        await repository.forget_supplier_embeddings(conn, [erased])

        left = await repository.existing_embeddings(conn, [first, second, shared])
    assert left == {shared}, "both versions of the erased text go; the text another supplier has stays"


async def test_the_matcher_takes_back_the_stored_suppliers_after_a_dead_lettered_event(
    stack: Stack, db: asyncpg.Pool
) -> None:
    runtime = Runtime("matcher", stack.settings())  # for its metrics registry; never started
    metrics = MatcherMetrics(runtime.metrics)
    matcher = Matcher(MatchEngine(), metrics, Vectors(semantic.Model(), metrics))
    stored = factories.supplier_state()
    never_stored = factories.supplier_state()
    async with db.acquire() as conn:
        await repository.upsert_suppliers(conn, [stored])
    # A failed transaction left memory ahead of the database.
    for state in (stored.model_copy(update={"version": 2}), never_stored):
        matcher.engine.upsert_supplier(state)
        matcher.supplier_versions[state.id] = state.version

    async with db.acquire() as conn:
        await matcher.restore(
            conn, [factories.supplier_registered(stored), factories.supplier_registered(never_stored)]
        )

    assert matcher.supplier_versions == {stored.id: 1}
    assert matcher.engine.supplier(stored.id) is not None
    assert matcher.engine.supplier(never_stored.id) is None


async def test_a_pair_is_matched_when_its_need_is_held_in_memory_before_its_row_commits(
    stack: Stack, db: asyncpg.Pool
) -> None:
    """The needs replica consumer holds a new need in memory while its transaction is still
    open; a supplier ranked meanwhile finds the need in memory but not in the projection. The
    pair must be matched all the same: the need's own ranking may have run before the
    supplier was in memory, so nobody else would match it."""
    runtime = Runtime("matcher", stack.settings())  # for its metrics registry; never started
    metrics = MatcherMetrics(runtime.metrics)
    matcher = Matcher(MatchEngine(top_k=10), metrics, Vectors(semantic.Model(), metrics, wait_s=0))
    need = factories.need_state()
    supplier = factories.supplier_state()

    async with db.acquire() as need_conn, db.acquire() as supplier_conn:
        need_tx = need_conn.transaction()
        await need_tx.start()
        await matcher.on_need_replica(need_conn, [factories.need_published(need)])
        async with supplier_conn.transaction():
            await matcher.on_supplier_events(supplier_conn, [factories.supplier_registered(supplier)])
        await need_tx.commit()

    async with db.acquire() as conn:
        status = await conn.fetchval(
            "SELECT status FROM matcher.matches WHERE need_id = $1 AND supplier_id = $2",
            need.id,
            supplier.id,
        )
    assert status == "active"


async def test_a_pair_of_an_erased_supplier_is_not_matched(stack: Stack, db: asyncpg.Pool) -> None:
    """The supplier's erasure committed in another instance after this one held it in memory."""
    runtime = Runtime("matcher", stack.settings())
    metrics = MatcherMetrics(runtime.metrics)
    matcher = Matcher(MatchEngine(top_k=10), metrics, Vectors(semantic.Model(), metrics, wait_s=0))
    need = factories.need_state()
    supplier = factories.supplier_state()
    async with db.acquire() as conn:
        async with conn.transaction():
            await matcher.on_supplier_events(conn, [factories.supplier_registered(supplier)])
        async with conn.transaction():  # what the other instance's removal commits
            await erasure.record(conn, "matcher", [erasure.supplier(supplier.id)])
            await repository.delete_suppliers(conn, [supplier.id])
        async with conn.transaction():
            await matcher.on_need_events(conn, [factories.need_published(need)])
        count = await conn.fetchval(
            "SELECT count(*) FROM matcher.matches WHERE need_id = $1 AND status = 'active'", need.id
        )
    assert count == 0


async def test_a_verdict_is_stored_published_and_kept_and_not_relevant_goes_last(
    stack: Stack, db: asyncpg.Pool
) -> None:
    runtime = Runtime("matcher", stack.settings())
    metrics = MatcherMetrics(runtime.metrics)
    matcher = Matcher(MatchEngine(top_k=10), metrics, Vectors(semantic.Model(), metrics, wait_s=0))
    need = factories.need_state()
    first, second = factories.supplier_state(), factories.supplier_state()
    async with db.acquire() as conn:
        async with conn.transaction():
            await matcher.on_supplier_events(
                conn, [factories.supplier_registered(first), factories.supplier_registered(second)]
            )
        async with conn.transaction():
            await matcher.on_need_events(conn, [factories.need_published(need)])
    group = Principal("buyer_group", need.buyer_group_id)

    with pytest.raises(Forbidden):
        await judge(lambda: db, Principal("supplier", first.id), need.id, first.id, Verdict.relevant, None)
    with pytest.raises(NotFound):
        await judge(lambda: db, group, need.id, str(uuid.uuid4()), Verdict.relevant, None)
    judged = await judge(lambda: db, group, need.id, first.id, Verdict.not_relevant, "fel region")
    again = await judge(lambda: db, group, need.id, first.id, Verdict.not_relevant, "fel region")

    assert judged.version == again.version == 2  # the same verdict again changes nothing
    async with db.acquire() as conn:
        shortlist = await repository.need_matches(conn, need.id, 10)
        events = await conn.fetch(
            "SELECT event_type, payload FROM matcher.outbox WHERE event_id LIKE $1 ORDER BY id",
            f"{match_id(need.id, first.id)}.%",
        )
    assert [row["match"].supplier_id for row in shortlist] == [second.id, first.id]
    assert [e["event_type"] for e in events] == ["match.found", "match.judged"]
    assert json.loads(events[-1]["payload"])["data"]["verdict"] == "not_relevant"

    # A later change of the supplier ranks the pair again and carries the verdict on.
    changed = first.model_copy(update={"version": 2, "name": "Nytt Namn AB"})
    async with db.acquire() as conn, conn.transaction():
        await matcher.on_supplier_events(conn, [factories.supplier_registered(changed)])
    async with db.acquire() as conn:
        stored = await repository.get_match(conn, need.id, first.id)
    assert stored is not None and stored.verdict == Verdict.not_relevant
