"""The matching engine at national scale, in one process on one core.

    uv run python -m tests.bench.bench_matcher_engine --suppliers 1000000 --open-needs 100000

Measures, with realistic generated profiles (tests/bench/profiles.py) and synthetic sentence
embeddings (a million real ones would take days to compute here: each profile gets a unit
vector near a topic of its first CPV group, so texts about one subject are close in meaning):
- index build time (generating and vectorising the profiles included) and resident memory
  for the suppliers;
- ranking one need against every supplier, explanations included: p50 / p99;
- ranking one supplier against every open need whose top K it could enter: p50 / p99;
- consortium suggestions for one need (candidates, coverage, the pairs and trios): p50 / p99.
Prints the numbers and writes them to tests/bench/results/matcher_engine_<n>.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from services.matcher import consortia, text
from services.matcher.engine import MatchEngine, supplier_profile
from tests.bench.profiles import Generator

RESULTS = Path(__file__).parent / "results"
CHUNK = 20_000  # suppliers per chunk, as services/matcher/repository.supplier_chunks reads them


def _rss_mb() -> float:
    gc.collect()
    return float(psutil.Process().memory_info().rss) / 2**20


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(1000 * statistics.median(ordered), 2),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "max_ms": round(1000 * ordered[-1], 2),
    }


TOPICS = np.random.default_rng(11).standard_normal((4096, 384)).astype(np.float32)


def embedding(ident: str, cpv: list[str], seed: int) -> np.ndarray[Any, Any]:
    """A unit vector near the topic of the profile's first CPV group, with its own noise."""
    topic = TOPICS[zlib.crc32((cpv[0][:3] if cpv else "").encode()) % len(TOPICS)]
    noise = np.random.default_rng(zlib.crc32(f"{seed}{ident}".encode())).standard_normal(384)
    vector = topic + 0.9 * noise.astype(np.float32)
    return vector / np.linalg.norm(vector)


def run(suppliers: int, open_needs: int, queries: int, seed: int) -> dict[str, Any]:
    started = time.perf_counter()
    text.lexicon()
    text.idf("warm")  # the reference statistics are built once per process
    warm_s = time.perf_counter() - started
    generator = Generator(seed)
    engine = MatchEngine()
    base = _rss_mb()
    build = time.perf_counter()
    # As the matcher loads its projection at start-up: in chunks, then trimmed and frozen.
    chunk: list[Any] = []
    for i, supplier in enumerate(generator.suppliers(suppliers), start=1):
        chunk.append(supplier)
        if len(chunk) == CHUNK or i == suppliers:
            engine.load_suppliers(
                chunk, {s.id: embedding(s.id, s.capabilities.cpv_codes, seed) for s in chunk}
            )
            chunk = []
        if i % 100_000 == 0:
            print(f"  {i} suppliers indexed, {time.perf_counter() - build:.0f} s, {_rss_mb() - base:.0f} MB")
    engine.trim()
    gc.collect()
    gc.freeze()
    build_s = time.perf_counter() - build
    supplier_mb = _rss_mb() - base

    need_latency, hits, consortium_latency, suggested = [], [], [], []
    for need in generator.needs(queries):
        profile = engine.upsert_need(need, embedding(need.id, need.cpv_codes, seed))
        assert profile is not None
        t = time.perf_counter()
        ranked = engine.rank_suppliers(profile)
        need_latency.append(time.perf_counter() - t)
        hits.append(len(ranked))
        t = time.perf_counter()
        members = [
            consortia.member(profile, s, scored) for s, scored in engine.consortium_candidates(profile)
        ]
        suggested.append(len(consortia.suggest(profile, members)))
        consortium_latency.append(time.perf_counter() - t)

    needs_started = time.perf_counter()
    for need in generator.needs(max(0, open_needs - queries)):
        engine.upsert_need(need, embedding(need.id, need.cpv_codes, seed))
    needs_build_s = time.perf_counter() - needs_started

    # In service every need was ranked when published, so it carries the score of its K-th
    # best supplier as a cut. Ranking 100k needs against the whole population takes too long
    # here; the best of a 1/K sample of fresh suppliers estimates that K-th best score.
    cut_started = time.perf_counter()
    sample = max(1, suppliers // engine.top_k)
    best = np.zeros(engine.needs.size)
    for supplier in generator.suppliers(sample):
        vector = embedding(supplier.id, supplier.capabilities.cpv_codes, seed)
        profile = supplier_profile(supplier, engine.this_year, vector)
        score, eligible = engine.needs.scores(profile)
        np.maximum(best, np.where(eligible, score, 0.0), out=best)
    engine.needs.cut.data[: engine.needs.size] = np.where(best >= engine.threshold, best, 0.0)
    cut_s = time.perf_counter() - cut_started
    supplier_latency, supplier_hits = [], []
    for supplier in generator.suppliers(queries):
        profile = engine.upsert_supplier(
            supplier, embedding(supplier.id, supplier.capabilities.cpv_codes, seed)
        )
        t = time.perf_counter()
        found = engine.rank_needs(profile, within_top_k=True)
        supplier_latency.append(time.perf_counter() - t)
        supplier_hits.append(len(found))

    return {
        "suppliers": suppliers,
        "open_needs": len(engine.needs),
        "queries": queries,
        "reference_statistics_s": round(warm_s, 2),
        "supplier_index_build_s": round(build_s, 1),
        "supplier_index_build_per_s": round(suppliers / build_s),
        "supplier_index_memory_mb": round(supplier_mb),
        "process_memory_mb": round(_rss_mb()),
        "need_index_build_s": round(needs_build_s, 1),
        "need_cut_estimate": {"sample_suppliers": sample, "seconds": round(cut_s, 1)},
        "need_against_all_suppliers": {**_percentiles(need_latency), "mean_matches": statistics.mean(hits)},
        "consortia_for_a_need": {
            **_percentiles(consortium_latency),
            "mean_suggestions": round(statistics.mean(suggested), 1),
        },
        "supplier_against_open_needs": {
            **_percentiles(supplier_latency),
            "mean_matches": round(statistics.mean(supplier_hits), 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--suppliers", type=int, default=100_000)
    parser.add_argument("--open-needs", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    result = run(args.suppliers, args.open_needs, args.queries, args.seed)
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"matcher_engine_{args.suppliers}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
