"""Sentence embeddings off every request path: computed by a consumer group, stored by text.

The embedder consumes the suppliers' and needs' topics in a group shared by all matcher
instances (`<prefix>-matcher-embedder`), so each partition is embedded by one instance and
embedding scales out with instances. For each event it embeds the aggregate's current text
unless a vector for that text and model is stored (`matcher.embeddings`, keyed by
`semantic.text_hash`), so a restart, a replay or another instance never embeds a text twice.
The model runs in a worker thread: the event loop keeps serving HTTP and heartbeats.

The matcher's own consumers (`handlers.py`) read the vectors with `Vectors.wait_for`: they
wait until the embedder has stored them and, only if it has not after `wait_s` (a stopped
embedder), embed the text themselves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from services.contracts.events import NeedEvent, NeedState, SupplierEvent, SupplierRemoved, SupplierState
from services.infra import erasure
from services.infra.db import Connection
from services.infra.logs import get_logger
from services.matcher import repository, semantic
from services.matcher.metrics import MatcherMetrics

log = get_logger(__name__)

POLL_S = 0.02
# Texts per model call: a batch shares the model's threads; small enough that a waiting
# consumer sees the first vectors soon.
EMBED_BATCH = 16
State = SupplierState | NeedState


def key_of(state: State) -> str:
    """The key of the vector of the aggregate's current text (see `semantic.text_hash`)."""
    if isinstance(state, NeedState):
        return semantic.text_hash(semantic.need_text(state), "need")
    # A supplier's vector is made of its sentences (its name only when it has none), so two
    # profiles that say the same thing share one vector, whatever their names or codes.
    return semantic.text_hash("\n".join(semantic.sentences(state) or [state.name]), "supplier")


def _states(events: Sequence[SupplierEvent | NeedEvent]) -> list[State]:
    """Every version the events carry: a matcher consumer whose batch ends at an older version
    than the embedder's did waits for that version's vector too."""
    return [e.data for e in events if isinstance(e.data, SupplierState | NeedState)]


class Vectors:
    """Embeds texts (in a worker thread) and stores and finds their vectors."""

    def __init__(self, model: semantic.Model, metrics: MatcherMetrics, wait_s: float = 120.0) -> None:
        self.model = model
        self.wait_s = wait_s
        self.embedded = metrics.embedded
        self.latency = metrics.embedding_latency

    async def _embed(self, states: list[State]) -> list[semantic.Embedded]:
        """Embed a batch (one kind), in a worker thread, a few texts per model call."""
        out: list[semantic.Embedded] = []
        for start in range(0, len(states), EMBED_BATCH):
            chunk = states[start : start + EMBED_BATCH]
            began = time.perf_counter()
            if isinstance(chunk[0], NeedState):
                kind = "need"
                done = await asyncio.to_thread(self.model.needs, chunk)  # type: ignore[arg-type]
            else:
                kind = "supplier"
                done = await asyncio.to_thread(self.model.suppliers, chunk)  # type: ignore[arg-type]
            for _ in chunk:
                self.latency.labels(kind).observe((time.perf_counter() - began) / len(chunk))
            out += done
        return out

    async def ensure(
        self, conn: Connection, states: Sequence[State], by: str
    ) -> dict[str, semantic.Embedded]:
        """Embed and store the texts of `states` that have no stored vector yet."""
        keys = {key_of(s): s for s in states}
        await repository.record_supplier_texts(
            conn, [(s.id, key) for key, s in keys.items() if isinstance(s, SupplierState)]
        )
        stored = await repository.existing_embeddings(conn, list(keys))
        missing = {k: s for k, s in keys.items() if k not in stored}
        fresh: dict[str, semantic.Embedded] = {}
        for kind in (NeedState, SupplierState):
            todo = [(k, s) for k, s in missing.items() if isinstance(s, kind)]
            if not todo:
                continue
            for (key, _), done in zip(todo, await self._embed([s for _, s in todo]), strict=True):
                fresh[key] = done
            self.embedded.labels("need" if kind is NeedState else "supplier", by).inc(len(todo))
        await repository.insert_embeddings(conn, semantic.MODEL, fresh)
        return fresh

    async def wait_for(self, conn: Connection, states: Sequence[State]) -> dict[str, semantic.Vector]:
        """id -> vector of each state's current text, once the embedder has stored it."""
        keys = {s.id: key_of(s) for s in states}
        found: dict[str, semantic.Vector] = {}
        deadline = time.monotonic() + self.wait_s
        while True:
            missing = sorted({k for k in keys.values() if k not in found})
            if missing:
                found.update(await repository.embedding_vectors(conn, missing))
            if all(k in found for k in keys.values()):
                break
            if time.monotonic() >= deadline:
                late = [s for s in states if keys[s.id] not in found]
                log.warning("embedding_not_ready", waited_s=self.wait_s, texts=len(late))
                for key, done in (await self.ensure(conn, late, by="matcher")).items():
                    found[key] = done.vector
                found.update(await repository.embedding_vectors(conn, [keys[s.id] for s in late]))
                break
            await asyncio.sleep(POLL_S)
        return {ident: found[key] for ident, key in keys.items()}


class Embedder:
    """The consumer-group side: embed every new text version seen on the topics."""

    def __init__(self, vectors: Vectors) -> None:
        self.vectors = vectors

    async def on_events(self, conn: Connection, events: list[Any]) -> None:
        states = _states(events)
        # An erased supplier's text is never embedded again, and its removal takes the vectors
        # of all its versions, also those embedded after a matcher consumer had handled it.
        erased = await erasure.erased_among(
            conn, "matcher", [erasure.supplier(s.id) for s in states if isinstance(s, SupplierState)]
        )
        states = [s for s in states if erasure.supplier(s.id) not in erased or isinstance(s, NeedState)]
        await self.vectors.ensure(conn, states, by="embedder")
        await repository.forget_supplier_embeddings(
            conn, [e.subject for e in events if isinstance(e, SupplierRemoved)]
        )
