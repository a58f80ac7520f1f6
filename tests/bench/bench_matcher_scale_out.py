"""Supplier events per second with one and with two matcher instances.

    uv run python -m tests.bench.bench_matcher_scale_out --needs 2000 --suppliers 10000

For each number of instances it starts a fresh stack of its own (tansu and PostgreSQL on free
ports) and that many matcher processes in one consumer group, publishes the same open needs,
waits until every instance holds them, then publishes the same supplier.registered events
straight onto innomatch.suppliers.v1 and times how long the instances take to apply them
all, each in its own replica: store them, index them, score each against the open needs of the
partitions it owns and write the matches with their events.

Sentence vectors are what embedding produces, but embedding is measured on its own
(`bench_embedding`): here the vectors of every text are stored before the events are
published, as the embedder group would have stored them, so the matchers find them and embed
nothing. The active matches at the end must be the same whatever the number of instances:
each pair decided once, none missed.

Prints the numbers and writes tests/bench/results/matcher_scale_out.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
from aiokafka import AIOKafkaProducer

from services.contracts.events import NeedPublished, SupplierRegistered, new_event
from services.contracts.topics import ALL_TOPICS, NEEDS, SUPPLIERS, dlq
from services.infra.broker import ensure_topics
from services.infra.db import ensure_database, migrate
from services.infra.devstack import Postgres, Tansu, free_port, stop_process
from services.infra.settings import Settings
from services.matcher import repository, semantic
from services.matcher.embeddings import key_of
from tests.bench.bench_matcher_engine import embedding
from tests.bench.bench_matcher_events import metric, publish
from tests.bench.profiles import Generator

RESULTS = Path(__file__).parent / "results"
CONSUMED = "innomatch_events_consumed_total"


async def _store_vectors(database_url: str, states: list[Any], seed: int) -> None:
    """The vectors the embedder group would have stored for these texts."""
    rows = {}
    for state in states:
        codes = state.cpv_codes if hasattr(state, "cpv_codes") else state.capabilities.cpv_codes
        rows[key_of(state)] = semantic.Embedded(vector=embedding(state.id, codes, seed).astype(np.float32))
    conn = await asyncpg.connect(database_url)
    try:
        await repository.insert_embeddings(conn, semantic.MODEL, rows)
    finally:
        await conn.close()


async def _scrape(http: httpx.AsyncClient, urls: list[str]) -> list[str]:
    return [(await http.get(f"{url}/metrics")).text for url in urls]


async def _active_matches(database_url: str) -> set[tuple[str, str]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT need_id, supplier_id FROM matcher.matches WHERE status = 'active'")
    finally:
        await conn.close()
    return {(r["need_id"], r["supplier_id"]) for r in rows}


async def _measure(
    urls: list[str], bootstrap: str, database_url: str, needs: list[Any], suppliers: list[Any], seed: int
) -> dict[str, Any]:
    await _store_vectors(database_url, [*needs, *suppliers], seed)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            await publish(producer, NEEDS, [new_event(NeedPublished, source="/bench", data=n) for n in needs])
            while any(
                metric(text, "innomatch_matcher_open_needs") < len(needs)
                for text in await _scrape(http, urls)
            ):
                await asyncio.sleep(0.2)
            events = [new_event(SupplierRegistered, source="/bench", data=s) for s in suppliers]
            started = time.perf_counter()
            await publish(producer, SUPPLIERS, events)
            published_s = time.perf_counter() - started
            # The embedder group (shared by the instances) consumes each event once, and every
            # instance's replica consumes all of them.
            wanted = len(suppliers) * (len(urls) + 1)
            while True:
                texts = await _scrape(http, urls)
                if sum(metric(t, CONSUMED, topic=SUPPLIERS, outcome="processed") for t in texts) >= wanted:
                    break
                await asyncio.sleep(0.5)  # scraping costs the matchers CPU too
            elapsed = time.perf_counter() - started
            emitted = sum(metric(text, "innomatch_matcher_matches_emitted_total") for text in texts)
    finally:
        await producer.stop()
    return {
        "publish_seconds": round(published_s, 2),
        "seconds": round(elapsed, 2),
        "supplier_events_per_s": round(len(suppliers) / elapsed),
        "match_events_emitted": int(emitted),
        "active_matches": await _active_matches(database_url),
    }


def _start_matchers(count: int, env: dict[str, str]) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    procs, urls = [], []
    for i in range(count):
        port = free_port()
        child = {**env, "INNOMATCH_MATCHER_PORT": str(port), "INNOMATCH_MATCHER_INSTANCE": f"bench-{i}"}
        procs.append(subprocess.Popen([sys.executable, "-m", "services.cli", "serve", "matcher"], env=child))
        urls.append(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 180
    for proc, url in zip(procs, urls, strict=True):
        while True:
            assert proc.poll() is None, f"a matcher exited with {proc.returncode}"
            assert time.monotonic() < deadline, "the matchers were not ready within 180 s"
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    return procs, urls


def round_of(instances: int, needs: list[Any], suppliers: list[Any], seed: int) -> dict[str, Any]:
    """One measurement on a fresh stack with `instances` matchers."""
    with tempfile.TemporaryDirectory(prefix="innomatch-scale-") as tmp:
        postgres = Postgres(Path(tmp) / "postgres", free_port())
        tansu = Tansu(free_port(), Path(tmp) / "tansu.log")
        procs: list[subprocess.Popen[bytes]] = []
        try:
            postgres.start()
            tansu.start()
            database_url = postgres.database_url("innomatch")
            env = {
                **os.environ,
                "INNOMATCH_MODE": "development",
                "INNOMATCH_KAFKA_BOOTSTRAP": tansu.bootstrap,
                "INNOMATCH_DATABASE_URL": database_url,
                "INNOMATCH_OPERATOR_TOKEN": secrets.token_urlsafe(32),
            }
            settings = Settings(
                mode="development", kafka_bootstrap=tansu.bootstrap, database_url=database_url
            )
            asyncio.run(ensure_database(database_url))
            asyncio.run(migrate(settings, ["matcher"]))
            topics = [*ALL_TOPICS, *(dlq(t) for t in ALL_TOPICS)]
            asyncio.run(ensure_topics(tansu.bootstrap, topics, settings.kafka_partitions))
            procs, urls = _start_matchers(instances, env)
            result = asyncio.run(_measure(urls, tansu.bootstrap, database_url, needs, suppliers, seed))
        finally:
            for proc in procs:
                stop_process(proc, signal.SIGTERM, timeout=20)
            tansu.stop()
            postgres.stop()
    return {"instances": instances, **result}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--needs", type=int, default=2000)
    parser.add_argument("--suppliers", type=int, default=10_000)
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    generator = Generator(seed=args.seed)
    needs = [
        n.model_copy(update={"id": str(uuid.UUID(int=i + 1))})
        for i, n in enumerate(generator.needs(args.needs))
    ]
    suppliers = [
        s.model_copy(update={"id": str(uuid.UUID(int=(1 << 64) + i))})
        for i, s in enumerate(generator.suppliers(args.suppliers))
    ]
    rounds = []
    for count in args.instances:
        found = round_of(count, needs, suppliers, args.seed)
        print(f"{count} instance(s): {found['supplier_events_per_s']} supplier events/s", flush=True)
        rounds.append(found)
    reference = rounds[0].pop("active_matches")
    for other in rounds[1:]:
        mine = other.pop("active_matches")
        other["same_active_matches_as_first"] = mine == reference
        other["missing"], other["extra"] = len(reference - mine), len(mine - reference)
    rounds[0]["active_matches"] = len(reference)
    result = {
        "needs": args.needs,
        "suppliers": args.suppliers,
        "cpu_cores": os.cpu_count(),
        "note": "stack of its own: tansu, PostgreSQL and the matchers on the same cores",
        "rounds": rounds,
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "matcher_scale_out.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
