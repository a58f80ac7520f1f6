"""The engine: the vectorised index computes exactly the reference formula; rankings are
deterministic and respect the hard constraints."""

from __future__ import annotations

import random
import zlib

import numpy as np
import numpy.typing as npt
import pytest

from services.matcher import index as index_module
from services.matcher.engine import MatchEngine
from services.matcher.handlers import change_for
from services.matcher.index import exact as index_exact
from services.matcher.repository import StoredMatch
from services.matcher.scoring import score_pair
from services.matcher.slate import outranks
from tests.bench.profiles import Generator


@pytest.fixture(scope="module")
def population() -> tuple[list, list]:  # type: ignore[type-arg]
    generator = Generator(seed=7)
    return list(generator.suppliers(400)), list(generator.needs(25))


def embedding(ident: str) -> npt.NDArray[np.float32]:
    """A unit vector for an id, from a few shared directions, so some pairs are close."""
    rng = np.random.default_rng(zlib.crc32(ident.encode()))
    vector = BASES[zlib.crc32(ident.encode()) % len(BASES)] + 0.6 * rng.standard_normal(384)
    unit: npt.NDArray[np.float32] = (vector / np.linalg.norm(vector)).astype(np.float32)
    return unit


BASES = np.random.default_rng(3).standard_normal((5, 384))


def engine_of(suppliers: list, needs: list, **options: object) -> MatchEngine:  # type: ignore[type-arg]
    engine = MatchEngine(this_year=2026, **options)  # type: ignore[arg-type]
    for i, s in enumerate(suppliers):
        # Some suppliers have no vector yet (embedding pending): they score without meaning.
        engine.upsert_supplier(s, None if i % 7 == 0 else embedding(s.id))
    for n in needs:
        engine.upsert_need(n, embedding(n.id))
    return engine


def test_the_index_computes_the_reference_score_in_both_directions(population: tuple) -> None:  # type: ignore[type-arg]
    suppliers, needs = population
    engine = engine_of(suppliers, needs)
    for need in needs:
        profile = engine.need(need.id)
        assert profile is not None
        scores, eligible = engine.suppliers.scores(profile)
        for row, _ in enumerate(engine.suppliers.ids):
            exact = score_pair(profile, engine.suppliers.profile(row), engine.threshold)
            assert index_exact(scores[row]) == exact.score
            assert exact.eligible == (bool(eligible[row]) and exact.score >= engine.threshold)
    for supplier in suppliers[:60]:
        sp = engine.supplier(supplier.id)
        assert sp is not None
        scores, eligible = engine.needs.scores(sp)
        for row, need_id in enumerate(engine.needs.ids):
            exact = score_pair(engine.needs.profiles[need_id], sp, engine.threshold)
            assert index_exact(scores[row]) == exact.score
            assert exact.eligible == (bool(eligible[row]) and exact.score >= engine.threshold)


@pytest.mark.parametrize("top_k", [1, 3, 10, 50])
def test_ranking_a_need_skips_only_suppliers_that_cannot_make_its_top_k(
    population: tuple,  # type: ignore[type-arg]
    top_k: int,
) -> None:
    suppliers, needs = population
    engine = engine_of(suppliers, needs, top_k=top_k)
    index = engine.suppliers
    for need in needs:
        profile = engine.need(need.id)
        assert profile is not None
        scores, eligible = index.scores(profile)
        everyone = sorted(
            (-index_exact(scores[row]), index.ids[row])
            for row in range(index.size)
            if eligible[row] and index_exact(scores[row]) >= engine.threshold
        )[:top_k]
        ranked = engine.rank_suppliers(profile)
        assert [(-m.score, m.supplier_id) for m in ranked] == everyone
        rows, partial, _ = index.best(profile, top_k, engine.threshold)
        assert partial.tolist() == scores[rows].tolist()  # the same numbers, bit for bit


@pytest.mark.parametrize("top_k", [1, 10, 50])
def test_scoring_in_batches_best_bound_first_ranks_as_scoring_all_at_once(
    population: tuple,  # type: ignore[type-arg]
    top_k: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    suppliers, needs = population
    engine = engine_of(suppliers, needs, top_k=top_k)
    at_once = {need.id: engine.rank_suppliers(need.id) for need in needs}
    monkeypatch.setattr(index_module, "SCORED_AT_ONCE", 8)  # every need takes the batched path
    batches = 0
    score_of = index_module.SupplierIndex._score_of

    def counted(*args: object) -> object:
        nonlocal batches
        batches += 1
        return score_of(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(index_module.SupplierIndex, "_score_of", counted)
    for need in needs:
        batched = engine.rank_suppliers(need.id)
        assert [(m.supplier_id, m.score) for m in batched] == [
            (m.supplier_id, m.score) for m in at_once[need.id]
        ]
    assert batches > 2 * len(needs)


def test_ranking_a_supplier_skips_only_needs_it_cannot_reach(population: tuple) -> None:  # type: ignore[type-arg]
    suppliers, needs = population
    engine = engine_of(suppliers, needs)
    for row, need_id in enumerate(engine.needs.ids):  # some needs have room, some a cut
        engine.set_cut(need_id, [0.0, 0.5, 0.7][row % 3])
    index = engine.needs
    for supplier in suppliers[:80]:
        profile = engine.supplier(supplier.id)
        assert profile is not None
        scores, eligible = index.scores(profile)
        for within_top_k in (False, True):
            everyone = sorted(
                (-index_exact(scores[row]), index.ids[row])
                for row in range(index.size)
                if eligible[row]
                and index_exact(scores[row]) >= engine.threshold
                and (not within_top_k or scores[row] >= index.cut.data[row] - 1e-3)
            )
            ranked = engine.rank_needs(profile, within_top_k=within_top_k)
            assert [(-m.score, m.need_id) for m in ranked] == everyone
            rows, partial, _ = index.best(profile, engine.threshold, within_top_k)
            assert partial.tolist() == scores[rows].tolist()


def test_a_bulk_load_indexes_as_adding_one_by_one_does(population: tuple) -> None:  # type: ignore[type-arg]
    suppliers, needs = population
    one_by_one = engine_of(suppliers, needs)
    changed = suppliers[5].model_copy(update={"version": 2, "capabilities": suppliers[9].capabilities})
    one_by_one.upsert_supplier(changed, embedding(suppliers[9].id))
    vectors = {s.id: embedding(s.id) for i, s in enumerate(suppliers) if i % 7}
    bulk = MatchEngine(this_year=2026)
    bulk.load_suppliers(suppliers[:200], vectors)
    bulk.load_suppliers([*suppliers[200:], changed], {**vectors, changed.id: embedding(suppliers[9].id)})
    for n in needs:
        bulk.upsert_need(n, embedding(n.id))
    assert len(bulk.suppliers) == len(one_by_one.suppliers) == len(suppliers)
    for need in needs:
        assert bulk.rank_suppliers(need.id) == one_by_one.rank_suppliers(need.id)
    for supplier in suppliers[:40]:
        assert bulk.rank_needs(supplier.id) == one_by_one.rank_needs(supplier.id)
        mine, theirs = bulk.supplier(supplier.id), one_by_one.supplier(supplier.id)
        assert mine == theirs
        assert mine is not None and theirs is not None
        assert (mine.semantic is None) == (theirs.semantic is None)
        assert mine.semantic is None or (mine.semantic == theirs.semantic).all()


def test_compacting_the_supplier_index_changes_no_ranking(population: tuple) -> None:  # type: ignore[type-arg]
    suppliers, needs = population
    engine = engine_of(suppliers, needs)
    for supplier in suppliers[::3]:  # changed suppliers leave dead rows behind
        engine.upsert_supplier(supplier.model_copy(update={"version": 2}))
    before = {n.id: engine.rank_suppliers(n.id) for n in needs}
    dead = engine.suppliers.size - len(engine.suppliers)
    engine.suppliers = engine.suppliers.rebuilt()
    assert dead > 0 and engine.suppliers.size == len(engine.suppliers) == len(suppliers)
    assert {n.id: engine.rank_suppliers(n.id) for n in needs} == before


def test_both_directions_find_the_same_matches(population: tuple) -> None:  # type: ignore[type-arg]
    suppliers, needs = population
    engine = engine_of(suppliers, needs, top_k=1000)
    by_need = {(m.need_id, m.supplier_id) for n in needs for m in engine.rank_suppliers(n.id)}
    by_supplier = {(m.need_id, m.supplier_id) for s in suppliers for m in engine.rank_needs(s.id)}
    assert by_need == by_supplier and by_need


def test_rankings_are_deterministic_and_within_the_constraints(population: tuple) -> None:  # type: ignore[type-arg]
    suppliers, needs = population
    shuffled = suppliers[:]
    random.Random(3).shuffle(shuffled)
    first, second = engine_of(suppliers, needs, top_k=10), engine_of(shuffled, needs, top_k=10)
    by_id = {s.id: s for s in suppliers}
    for need in needs:
        ranking = first.rank_suppliers(need.id)
        assert [(m.supplier_id, m.score) for m in ranking] == [
            (m.supplier_id, m.score) for m in second.rank_suppliers(need.id)
        ]
        assert len(ranking) <= 10
        assert [m.score for m in ranking] == sorted((m.score for m in ranking), reverse=True)
        for match in ranking:
            caps = by_id[match.supplier_id].capabilities
            assert caps.trl >= need.min_trl
            assert any(s.startswith(n) or n.startswith(s) for s in caps.regions for n in need.regions)
            assert match.score >= first.threshold


def test_removed_suppliers_and_closed_needs_leave_the_index(population: tuple) -> None:  # type: ignore[type-arg]
    suppliers, needs = population
    engine = engine_of(suppliers, needs)
    need = next(n for n in needs if engine.rank_suppliers(n.id))
    top = engine.rank_suppliers(need.id)[0].supplier_id
    engine.remove_supplier(top)
    assert top not in {m.supplier_id for m in engine.rank_suppliers(need.id)}
    assert engine.supplier(top) is None
    engine.upsert_need(need.model_copy(update={"status": "closed", "version": 2}))
    assert engine.need(need.id) is None and engine.rank_suppliers(need.id) == []


def test_a_cut_keeps_a_supplier_out_of_needs_whose_top_k_it_cannot_enter(population: tuple) -> None:  # type: ignore[type-arg]
    suppliers, needs = population
    engine = engine_of(suppliers, needs)
    supplier = next(s for s in suppliers if engine.rank_needs(s.id))
    hits = engine.rank_needs(supplier.id)
    best = hits[0]
    engine.set_cut(best.need_id, best.score + 0.01)
    assert best.need_id not in {h.need_id for h in engine.rank_needs(supplier.id, within_top_k=True)}
    assert best.need_id in {h.need_id for h in engine.rank_needs(supplier.id)}


def stored(score: float, terms: list[str], status: str = "active") -> StoredMatch:
    from datetime import UTC, datetime

    from services.contracts.events import MatchExplanation

    return StoredMatch(
        "n1",
        "s1",
        score,
        3,
        status,
        MatchExplanation(matched_terms=terms, region_verdict="r", trl_verdict="t"),
        datetime.now(UTC),
    )


def test_what_counts_as_news(population: tuple) -> None:  # type: ignore[type-arg]
    suppliers, needs = population
    engine = engine_of(suppliers, needs)
    scored = next(m for n in needs for m in engine.rank_suppliers(n.id))
    terms = scored.explanation.matched_terms
    same = stored(scored.score, terms)
    same.explanation = scored.explanation
    assert change_for(None, scored) == "found"
    assert change_for(stored(scored.score, terms, "withdrawn"), scored) == "found"
    assert change_for(same, scored) is None
    moved = stored(scored.score - 0.06, terms)
    moved.explanation = scored.explanation
    assert change_for(moved, scored) == "updated"
    nudged = stored(scored.score - 0.01, terms)
    nudged.explanation = scored.explanation
    assert change_for(nudged, scored) is None
    other_words = stored(scored.score, [*terms, "annat"])
    other_words.explanation = scored.explanation.model_copy(update={"matched_terms": [*terms, "annat"]})
    assert change_for(other_words, scored) == "updated"


def test_ranking_order_is_score_then_id() -> None:
    assert outranks((0.8, "b"), (0.7, "a"))
    assert outranks((0.7, "a"), (0.7, "b"))
    assert not outranks((0.7, "b"), (0.7, "a"))


def test_a_large_population_ranks_by_meaning_near_the_need_as_the_exact_ranking_does(
    population: tuple,  # type: ignore[type-arg]
) -> None:
    """Above `approximate_from` suppliers, meaning is computed only near the need: the top K
    stays (almost) that of the exact computation."""
    suppliers, needs = population
    exact_engine = engine_of(suppliers, needs, top_k=10)
    approximate = engine_of(suppliers, needs, top_k=10, approximate_from=100)
    assert approximate.suppliers.clusters is not None and exact_engine.suppliers.clusters is None
    found = kept = 0
    for need in needs:
        want = {m.supplier_id for m in exact_engine.rank_suppliers(need.id)}
        got = approximate.rank_suppliers(need.id)
        found += len(want & {m.supplier_id for m in got})
        kept += len(want)
        exact_scores = {m.supplier_id: m.score for m in exact_engine.rank_suppliers(need.id, limit=400)}
        assert all(m.score == exact_scores[m.supplier_id] for m in got)  # the scores are exact
    assert found >= 0.95 * kept


def test_a_supplier_is_scored_against_the_needs_of_the_owned_partitions_only(
    population: tuple,  # type: ignore[type-arg]
) -> None:
    from aiokafka.partitioner import DefaultPartitioner

    from services.matcher.partitions import partition_of

    suppliers, needs = population
    engine = engine_of(suppliers, needs, partitions=3)
    every = list(range(3))
    for need in needs:  # the producer's partition of the need's key
        assert partition_of(need.id, 3) == DefaultPartitioner()(need.id.encode(), every, every)
    for supplier in suppliers[:40]:
        everything = engine.rank_needs(supplier.id)
        shares = [engine.rank_needs(supplier.id, partitions=frozenset({p})) for p in every]
        assert sorted(m.need_id for share in shares for m in share) == sorted(m.need_id for m in everything)
        for p, share in enumerate(shares):
            assert all(engine.need_partition(m.need_id) == p for m in share)


def test_the_int8_products_are_the_exact_dot_products_of_any_rows() -> None:
    rng = np.random.default_rng(5)
    vectors = [np.round(rng.uniform(-127, 127, 384)).astype(np.float32) for _ in range(1000)]
    matrix = index_module._Matrix()
    matrix.extend([*vectors, None])  # a row without a vector is zeros
    query = np.round(rng.uniform(-127, 127, 384)).astype(np.float32)
    expected = np.array([float(np.dot(v.astype(np.float64), query)) for v in vectors] + [0.0])
    assert np.array_equal(matrix.products(query), expected)
    few = np.array([3, 17, 999, 1000])  # copied out
    many = np.arange(0, 1001, 2)  # read in place
    assert np.array_equal(matrix.products(query, few), expected[few])
    assert np.array_equal(matrix.products(query, many), expected[many])
    assert len(matrix.products(query, np.array([], dtype=np.int64))) == 0
