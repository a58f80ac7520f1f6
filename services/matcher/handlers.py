"""Event handlers of the matcher: keep the replicas current and turn rankings into match events.

Every matcher instance keeps all suppliers and all open needs in memory (its replicas, fed by
consumer groups of its own), so it can score in both directions without a remote call. The
expensive direction, a need against every supplier, is sharded: need events also reach the
instances through the shared group `innomatch-matcher`, and only the instance that owns the
need's partition ranks it. A supplier change reaches every instance, and each scores it
against the open needs of the partitions it owns whose top K the supplier could enter (see
`ownership`), so each pair is decided by one instance and instances add supplier
throughput. The matches table, locked per need while a batch decides, keeps a pair decided
twice around a rebalance from being published twice.

Each handler takes a whole polled batch: it scores in memory, decides the changes on a
`Slate` of the affected needs' top K, and writes them in a few statements. A pair's match is
published as found, updated (the score moved by at least `SCORE_STEP`, or its shared codes,
words or verdicts changed) or withdrawn (it left the need's top K, failed a hard constraint,
or the need closed or the supplier left; the next best then takes its place). Event ids are
derived from the match id and version, so reprocessing publishes nothing new.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg

from services.contracts.events import (
    MatchFound,
    MatchJudged,
    MatchUpdated,
    MatchWithdrawn,
    NeedEvent,
    NeedState,
    SupplierEvent,
    SupplierRemoved,
    SupplierState,
    match_id,
    new_event,
)
from services.contracts.topics import MATCHES
from services.contracts.vocab import NeedStatus, Verdict
from services.infra import erasure, outbox
from services.infra.auth import Principal
from services.infra.db import Connection
from services.infra.errors import Forbidden, NotFound
from services.infra.unit_of_work import unit_of_work
from services.matcher import consortia, repository, semantic
from services.matcher.consortia import Consortium
from services.matcher.embeddings import Vectors, key_of
from services.matcher.engine import MatchEngine, need_profile
from services.matcher.metrics import MatcherMetrics
from services.matcher.repository import StoredMatch
from services.matcher.scoring import NeedProfile, Scored, SupplierProfile, score_pair
from services.matcher.slate import Slate

SOURCE = "/innomatch/matcher"
SCORE_STEP = 0.05
# How long a supplier change is kept to be settled after a rebalance of the needs' partitions:
# longer than any matcher instance lags behind another on the suppliers' topic.
UNSETTLED_S = 600.0
Change = Literal["found", "updated", "withdrawn"]
_EVENT = {"found": MatchFound, "updated": MatchUpdated, "withdrawn": MatchWithdrawn}


def change_for(existing: StoredMatch | None, scored: Scored) -> Change | None:
    """What publishing `scored` would be news of, given what was published before."""
    if existing is None or existing.status == "withdrawn":
        return "found"
    before, after = existing.explanation, scored.explanation
    material = (
        abs(existing.score - scored.score) >= SCORE_STEP - 1e-9
        or [c.code for c in before.shared_cpv] != [c.code for c in after.shared_cpv]
        or before.matched_terms != after.matched_terms
        or before.region_verdict != after.region_verdict
        or before.trl_verdict != after.trl_verdict
    )
    return "updated" if material else None


def _latest(events: list[SupplierEvent] | list[NeedEvent]) -> list[SupplierEvent | NeedEvent]:
    """The newest event of each aggregate in a batch."""
    newest: dict[str, SupplierEvent | NeedEvent] = {}
    for event in events:
        held = newest.get(event.subject)
        if held is None or held.data.version <= event.data.version:
            newest[event.subject] = event
    return list(newest.values())


async def _yield() -> None:
    """Let the event loop run between scorings: a batch can take seconds of CPU, and HTTP
    requests and the Kafka heartbeat share the loop."""
    await asyncio.sleep(0)


async def explain_passages(
    conn: Connection, engine: MatchEngine, scored: list[Scored], need: NeedProfile | None = None
) -> dict[tuple[str, str], Scored]:
    """The scored pairs with the supplier's sentence closest to the need named in their
    explanation (from the stored sentence vectors)."""
    if not scored:
        return {}
    sentences = await repository.supplier_sentences(conn, sorted({s.supplier_id for s in scored}))
    out = {}
    for pair in scored:
        profile = need if need is not None and need.id == pair.need_id else engine.need(pair.need_id)
        found = sentences.get(pair.supplier_id)
        if profile is None or profile.semantic is None or found is None:
            continue
        closest = semantic.closest_sentence(profile.semantic, *found)
        explanation = pair.explanation.model_copy(update={"closest_passage": closest})
        out[(pair.need_id, pair.supplier_id)] = dataclasses.replace(pair, explanation=explanation)
    return out


class Matcher:
    def __init__(
        self,
        engine: MatchEngine,
        metrics: MatcherMetrics,
        vectors: Vectors,
        schema: str = "matcher",
        owned: frozenset[int] | None = None,
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.vectors = vectors
        self.schema = schema
        # The needs topic's partitions this instance owns (None: every need is its own),
        # and the suppliers changed or removed since they were last assigned.
        self.owned: frozenset[int] | None = owned
        self.unsettled: dict[str, float] = {}  # supplier id -> when it changed (monotonic)
        # Versions held in memory, so a replayed or late event never replaces a newer one.
        self.supplier_versions: dict[str, int] = {}
        self.need_versions: dict[str, int] = {}

    # --- replicas ------------------------------------------------------------------------------

    def load_suppliers(
        self, suppliers: list[SupplierState], embeddings: dict[str, semantic.Vector] | None = None
    ) -> None:
        """Hold stored suppliers (at start-up, a chunk at a time)."""
        self.engine.load_suppliers(suppliers, embeddings)
        for supplier in suppliers:
            self.supplier_versions[supplier.id] = supplier.version

    def load(
        self,
        needs: list[NeedState],
        cuts: dict[str, float] | None = None,
        embeddings: dict[str, semantic.Vector] | None = None,
    ) -> None:
        """Hold the stored open needs and their cuts, after the suppliers."""
        for need in needs:
            self.engine.upsert_need(need, (embeddings or {}).get(need.id))
            self.need_versions[need.id] = need.version
        for need_id, cut in (cuts or {}).items():
            self.engine.set_cut(need_id, cut)
        self.engine.trim()
        # The profiles just loaded live as long as the process: the collector need not scan
        # them again (at a million suppliers a full collection would take seconds).
        gc.collect()
        gc.freeze()
        self._gauges()

    def _gauges(self) -> None:
        self.metrics.suppliers.set(len(self.engine.suppliers))
        self.metrics.needs.set(len(self.engine.needs))

    def _hold_needs(self, states: list[NeedState], embeddings: dict[str, semantic.Vector]) -> None:
        for state in states:
            # The same version again is a batch replayed after its transaction failed: memory
            # may have taken it already, so take it again rather than skip it.
            if self.need_versions.get(state.id, 0) <= state.version:
                self.need_versions[state.id] = state.version
                self.engine.upsert_need(state, embeddings.get(state.id))
        self._gauges()

    async def _store_needs(self, conn: Connection, states: list[NeedState]) -> dict[str, semantic.Vector]:
        """Project the needs, with their text versions, and return the vectors of the open ones."""
        # Wait before writing: no row of the projection is locked while the embedder works.
        vectors = await self.vectors.wait_for(conn, [s for s in states if s.status.value == "open"])
        await repository.upsert_needs(conn, states)
        await repository.set_text_hashes(conn, "needs", {s.id: key_of(s) for s in states})
        return vectors

    async def on_need_replica(self, conn: Connection, events: list[NeedEvent]) -> None:
        """Every instance: keep the projection and the in-memory open needs current."""
        states = [e.data for e in _latest(events) if isinstance(e.data, NeedState)]
        self._hold_needs(states, await self._store_needs(conn, states))

    async def on_supplier_events(self, conn: Connection, events: list[SupplierEvent]) -> None:
        """Every instance: keep the supplier replica current and match the changed suppliers."""
        latest = _latest(events)
        removed = [e.subject for e in latest if isinstance(e, SupplierRemoved)]
        states = [e.data for e in latest if isinstance(e.data, SupplierState)]
        # A late or replayed event of an erased supplier restores nothing, not even for a
        # moment: its text is never embedded or indexed again.
        erased = await erasure.erased_among(conn, self.schema, [erasure.supplier(s.id) for s in states])
        states = [s for s in states if erasure.supplier(s.id) not in erased]
        # Wait before locking or writing, so that another instance's consumer is never held up
        # behind this one's wait for the embedder.
        embeddings = await self.vectors.wait_for(conn, states)
        # Erasure first takes the suppliers' locks: a ranking that is publishing a match for
        # one of them has committed before, or sees it gone after (see `_write`).
        await repository.lock_suppliers(conn, removed, exclusive=True)
        await repository.forget_supplier_embeddings(conn, removed)
        await repository.forget_supplier_passages(conn, removed)
        await repository.delete_suppliers(conn, removed)

        async def store() -> None:
            # Every instance stores the same rows, so this waits for another instance's
            # transaction that stored them first: it comes last, after the scoring, to keep
            # that wait short (the sentences of the explanations read these rows).
            await repository.upsert_suppliers(conn, states)
            await repository.set_text_hashes(conn, "suppliers", {s.id: key_of(s) for s in states})

        for event in latest:
            if isinstance(event, SupplierRemoved):
                self.engine.remove_supplier(event.subject)
                self.supplier_versions[event.subject] = event.data.version
        changed = {}
        for state in states:
            # The same version again: a batch replayed after its transaction failed (see
            # `_hold_needs`); it is ranked again, and the matches table keeps that idempotent.
            if self.supplier_versions.get(state.id, 0) <= state.version:
                self.supplier_versions[state.id] = state.version
                changed[state.id] = self.engine.upsert_supplier(state, embeddings.get(state.id))
                await _yield()
        self._gauges()
        if not changed and not removed:
            await store()
            return
        if self.owned is not None:
            self._unsettle([*changed, *removed])
        await self._score_suppliers(conn, changed, removed, self.owned, before_write=store)

    async def restore(self, conn: Connection, events: list[SupplierEvent | NeedEvent]) -> None:
        """After an event went to the DLQ: memory takes back what the database holds of the
        suppliers and needs it is about (its failed transaction may have changed memory)."""
        held: tuple[
            tuple[
                Literal["suppliers", "needs"], dict[str, int], Callable[..., object], Callable[[str], None]
            ],
            ...,
        ] = (
            ("suppliers", self.supplier_versions, self.engine.upsert_supplier, self.engine.remove_supplier),
            ("needs", self.need_versions, self.engine.upsert_need, self.engine.remove_need),
        )
        for table, versions, upsert, remove in held:
            ids = sorted({e.subject for e in events if e.type.startswith(table[:-1] + ".")})
            stored = {s.id: s for s in await repository.stored_states(conn, table, ids)}
            vectors = await repository.text_vectors(conn, table, ids)
            for ident in ids:
                if (state := stored.get(ident)) is not None:
                    versions[ident] = state.version
                    upsert(state, vectors.get(ident))
                else:
                    versions.pop(ident, None)
                    remove(ident)
        self._gauges()

    def _unsettle(self, supplier_ids: list[str]) -> None:
        """Remember recent changes for the next assignment; those older than UNSETTLED_S are
        settled already (every instance has handled them by then)."""
        now = time.monotonic()
        for supplier_id in supplier_ids:
            self.unsettled.pop(supplier_id, None)
            self.unsettled[supplier_id] = now
        while self.unsettled:
            oldest, since = next(iter(self.unsettled.items()))
            if now - since <= UNSETTLED_S:
                break
            del self.unsettled[oldest]

    def own(self, owned: frozenset[int]) -> None:
        """The needs topic's partitions this instance owns from now on (see `ownership`)."""
        self.owned = owned

    async def settle(self, conn: Connection, owned: frozenset[int]) -> None:
        """After an assignment of the needs' partitions: score the suppliers changed or
        removed lately against every need now owned (see `ownership`)."""
        self.owned = owned
        ids, self.unsettled = sorted(self.unsettled), {}
        changed = {i: p for i in ids if (p := self.engine.supplier(i)) is not None}
        removed = [i for i in ids if i not in changed]
        try:
            await self._score_suppliers(conn, changed, removed, owned)
        except BaseException:
            self._unsettle(ids)  # settled again after the next assignment
            raise

    async def _score_suppliers(
        self,
        conn: Connection,
        changed: dict[str, SupplierProfile],
        removed: list[str],
        owned: frozenset[int] | None,
        before_write: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Match changed suppliers and withdraw removed ones, against the needs of the owned
        partitions (all needs when `owned` is None); `before_write` runs once they are decided."""
        started = time.perf_counter()
        offers = []
        for profile in changed.values():
            offers += self.engine.rank_needs(profile, within_top_k=True, partitions=owned)
            await _yield()
        self._observe("supplier", started, self.engine.needs_owned(owned) * len(changed))
        offered = {(s.need_id, s.supplier_id) for s in offers}
        gone = []
        for need_id, supplier_id in await repository.active_pairs_of(conn, [*changed, *removed]):
            need = self.engine.need(need_id)
            if need is None:
                continue  # a need this instance has not heard of is judged when it has
            if owned is not None and self.engine.need_partition(need_id) not in owned:
                continue  # another instance's need
            if supplier_id in changed and (need_id, supplier_id) not in offered:
                # It matched before: judge it again, whether or not it is still a hit.
                offers.append(score_pair(need, changed[supplier_id], self.engine.threshold))
            elif supplier_id not in changed:
                gone.append((need_id, supplier_id))

        affected = {s.need_id for s in offers} | {need_id for need_id, _ in gone}
        slate = Slate(self.engine.top_k, await repository.active_scores(conn, affected))
        for need_id, supplier_id in gone:
            slate.drop(need_id, supplier_id, "the supplier left", refill=True)
        for scored in sorted(offers, key=lambda s: (s.need_id, -s.score, s.supplier_id)):
            slate.offer(scored)
        await self._refill(slate)
        if before_write is not None:
            await before_write()
        await self._write(conn, slate)

    # --- ranking needs (the owner of their partition) ------------------------------------------

    async def on_need_events(self, conn: Connection, events: list[NeedEvent]) -> None:
        latest = [e.data for e in _latest(events) if isinstance(e.data, NeedState)]
        self._hold_needs(latest, await self._store_needs(conn, latest))
        stored = await repository.stored_need_versions(conn, [n.id for n in latest])
        # A newer version is stored: its own event ranks it.
        current = [n for n in latest if stored.get(n.id, 0) <= n.version]
        slate = Slate(self.engine.top_k, await repository.active_scores(conn, {n.id for n in current}))
        for need in current:
            profile = self.engine.need(need.id)
            if profile is None:
                slate.close(need.id)
                continue
            started = time.perf_counter()
            ranking = self.engine.rank_suppliers(profile)
            self._observe("need", started, len(self.engine.suppliers))
            slate.rerank(need.id, ranking, judged=self.supplier_versions.__contains__)
            await _yield()
        await self._write(conn, slate)

    async def _refill(self, slate: Slate) -> None:
        """Rank the needs that lost a match again, so the next best takes the place."""
        for need_id in sorted(slate.refill):
            need = self.engine.need(need_id)
            if need is not None:
                ranking = self.engine.rank_suppliers(need)
                slate.rerank(need_id, ranking, judged=self.supplier_versions.__contains__)
                await _yield()

    def _observe(self, direction: str, started: float, pairs: int) -> None:
        self.metrics.scoring.labels("matcher", direction).observe(time.perf_counter() - started)
        self.metrics.scored.labels("matcher", direction).inc(pairs)

    # --- writing matches -----------------------------------------------------------------------

    async def _reasons_hold(self, conn: Connection, slate: Slate) -> None:
        """Withdraw what lost its reasons while this instance was deciding: another instance
        may have closed a need or erased a supplier that this one still holds in memory. Read
        under the needs' locks (taken by `active_scores`) and the suppliers' shared locks.

        Only a stored close or an erasure marker withdraws: a need or supplier whose row is
        not there yet is one whose first event another consumer holds in memory and has not
        committed, and dropping its pairs here would lose them, since that consumer may have
        ranked before this pair's other side was in memory."""
        for need_id in sorted(await repository.closed_needs_of(conn, sorted(slate.active))):
            slate.close(need_id)
            for pair in [p for p in slate.publish if p[0] == need_id]:
                del slate.publish[pair]
        suppliers = sorted({supplier_id for _, supplier_id in slate.publish})
        await repository.lock_suppliers(conn, suppliers, exclusive=False)
        erased = await erasure.erased_among(conn, self.schema, [erasure.supplier(s) for s in suppliers])
        for need_id, supplier_id in [p for p in slate.publish if erasure.supplier(p[1]) in erased]:
            del slate.publish[(need_id, supplier_id)]
            slate.drop(need_id, supplier_id, "the supplier left")

    async def _write(self, conn: Connection, slate: Slate) -> None:
        """Store what the slate decided and publish it, in the caller's transaction."""
        await self._reasons_hold(conn, slate)
        stored = await repository.matches_by_pair(conn, [*slate.publish, *slate.withdraw])
        now = datetime.now(UTC)
        new: list[StoredMatch] = []
        changed: list[StoredMatch] = []
        changes: list[tuple[StoredMatch, Change]] = []
        passages = await explain_passages(conn, self.engine, list(slate.publish.values()))
        for pair, scored in sorted(slate.publish.items()):
            existing = stored.get(pair)
            scored = passages.get(pair, scored)
            change = change_for(existing, scored)
            if change is None:
                continue
            match = StoredMatch(
                need_id=scored.need_id,
                supplier_id=scored.supplier_id,
                score=scored.score,
                version=1 if existing is None else existing.version + 1,
                status="active",
                explanation=scored.explanation,
                updated_at=now,
                verdict=None if existing is None else existing.verdict,
                verdict_reason=None if existing is None else existing.verdict_reason,
            )
            (new if existing is None else changed).append(match)
            changes.append((match, change))
        for pair in sorted(slate.withdraw):
            existing = stored.get(pair)
            if existing is None or existing.status == "withdrawn":
                continue
            existing.version += 1
            existing.status = "withdrawn"
            existing.updated_at = now
            changed.append(existing)
            changes.append((existing, "withdrawn"))
        # A pair another instance inserted meanwhile is its news, not ours.
        inserted = await repository.insert_matches(conn, new)
        lost = {match_id(m.need_id, m.supplier_id) for m in new} - inserted
        await repository.update_matches(conn, changed)
        events = []
        for match, change in changes:
            state = match.state()
            if change == "found" and match.version == 1 and state.id in lost:
                continue
            events.append(
                new_event(_EVENT[change], source=SOURCE, data=state, id=f"{state.id}.{state.version}")
            )
            self.metrics.emitted.labels("matcher", change).inc()
            if change != "withdrawn":
                self.metrics.scores.labels("matcher").observe(match.score)
        await outbox.append_many(conn, self.schema, MATCHES, events)
        for need_id in slate.active:
            self.engine.set_cut(need_id, slate.cut(need_id))


# --- reading matches (the HTTP API's queries) ----------------------------------------------------


def may_read_need(principal: Principal, need: NeedState) -> bool:
    return principal.is_operator or (
        principal.kind == "buyer_group" and principal.id in (need.buyer_group_id, *need.cosigners)
    )


@dataclasses.dataclass(frozen=True)
class PairReading:
    need: NeedState
    verdict: Scored
    published: StoredMatch | None

    @property
    def why_not(self) -> str | None:
        if self.need.status != NeedStatus.open:
            return f"the need is {self.need.status.value}"
        return self.verdict.why_not


class Readings:
    """What buyers and suppliers read of the matches, and why a pair does or does not match."""

    def __init__(self, pool: Callable[[], asyncpg.Pool], engine: MatchEngine) -> None:
        self._pool = pool
        self.engine = engine

    async def _need(self, conn: Connection, need_id: str) -> NeedState:
        need = await repository.get_need(conn, need_id)
        if need is None:
            raise NotFound(f"no need {need_id}")
        return need

    async def need_matches(
        self, principal: Principal, need_id: str, limit: int
    ) -> tuple[NeedState, list[dict[str, Any]]]:
        """The need and its active matches, best first, with the suppliers' names and sizes."""
        async with self._pool().acquire() as conn:
            need = await self._need(conn, need_id)
            if not may_read_need(principal, need):
                raise Forbidden("only the need's buyer groups or an operator may read its matches")
            return need, await repository.need_matches(conn, need.id, limit)

    async def supplier_matches(
        self, principal: Principal, supplier_id: str, limit: int
    ) -> list[dict[str, Any]]:
        """The supplier's active matches, best first, with the needs' titles and deadlines."""
        if not (principal.is_operator or principal.is_supplier(supplier_id)):
            raise Forbidden("a supplier may only read its own matches")
        async with self._pool().acquire() as conn:
            return await repository.supplier_matches(conn, supplier_id, limit)

    async def pair(self, principal: Principal, need_id: str, supplier_id: str) -> PairReading:
        """The pair scored now, also when it is no match, and what was last published of it."""
        async with self._pool().acquire() as conn:
            need = await self._need(conn, need_id)
            supplier_may = principal.is_supplier(supplier_id) and need.status == NeedStatus.open
            if not (may_read_need(principal, need) or supplier_may):
                raise Forbidden("only the need's buyer groups, the supplier or an operator may read this")
            profile = self.engine.need(need.id)
            if profile is None:
                vectors = await repository.text_vectors(conn, "needs", [need.id])
                profile = need_profile(need, vectors.get(need.id))
            verdict = self.engine.explain(profile, supplier_id)
            if verdict is None:
                raise NotFound(f"no supplier {supplier_id}")
            passages = await explain_passages(conn, self.engine, [verdict], profile)
            verdict = passages.get((need.id, supplier_id), verdict)
            return PairReading(need, verdict, await repository.get_match(conn, need.id, supplier_id))

    async def consortia(
        self, principal: Principal, need_id: str
    ) -> tuple[NeedState, list[Consortium], dict[str, str]]:
        """Suggested consortia for the need, and the names of their members."""
        async with self._pool().acquire() as conn:
            need = await self._need(conn, need_id)
            if not may_read_need(principal, need):
                raise Forbidden("only the need's buyer groups or an operator may read its consortia")
            profile = self.engine.need(need.id)
            if profile is None:
                vectors = await repository.text_vectors(conn, "needs", [need.id])
                profile = need_profile(need, vectors.get(need.id))
            candidates = self.engine.consortium_candidates(profile)
            names = await repository.consortium_members(conn, [s.id for s, _ in candidates])
        members = [consortia.member(profile, s, scored) for s, scored in candidates if s.id in names]
        return need, consortia.suggest(profile, members), names


async def judge(
    pool: Callable[[], asyncpg.Pool],
    principal: Principal,
    need_id: str,
    supplier_id: str,
    verdict: Verdict,
    reason: str | None,
) -> StoredMatch:
    """A buyer group's verdict on a published match: stored, and published as match.judged
    with the match's next version. The match keeps its place in the top K; a `not_relevant`
    one goes to the end of the shortlist and is alerted no more."""
    async with unit_of_work(pool, "matcher") as work:
        need = await repository.get_need(work.conn, need_id)
        if need is None:
            raise NotFound(f"no need {need_id}")
        if not may_read_need(principal, need):
            raise Forbidden("only the need's buyer groups or an operator may judge its matches")
        # The need's lock, as every writer of its matches takes it (see `active_scores`).
        await repository.active_scores(work.conn, {need_id})
        match = await repository.get_match(work.conn, need_id, supplier_id, for_update=True)
        if match is None:
            raise NotFound(f"no match of supplier {supplier_id} for need {need_id}")
        if (match.verdict, match.verdict_reason) == (verdict, reason):
            return match  # the same verdict again changes nothing
        now = datetime.now(UTC)
        match.verdict, match.verdict_reason = verdict, reason
        match.version, match.updated_at = match.version + 1, now
        await repository.judge(work.conn, match, principal.name, now)
        state = match.state()
        work.emit(new_event(MatchJudged, source=SOURCE, data=state, id=f"{state.id}.{state.version}"))
        return match
