"""The matcher reads its supplier projection back in chunks at start-up: every stored
supplier once, the newest version of each, whatever the chunk size."""

from __future__ import annotations

import asyncpg

from services.matcher import repository
from tests import factories


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
