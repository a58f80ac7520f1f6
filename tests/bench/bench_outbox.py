"""Outbox relay throughput: rows published per second by one relay and by two at once.

    uv run python -m tests.bench.bench_outbox --rows 20000

Starts its own embedded PostgreSQL and tansu broker (or uses INNOMATCH_DATABASE_URL and
INNOMATCH_KAFKA_BOOTSTRAP), fills an outbox schema of its own with supplier events (many
aggregates, several versions each), then times relays draining it. Prints the numbers and
writes tests/bench/results/outbox.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from services.contracts.topics import SUPPLIERS
from services.infra import outbox
from services.infra.broker import ensure_topics, make_producer
from services.infra.db import apply_migrations, ensure_database, migrations_for
from services.infra.devstack import Postgres, Tansu, free_port
from services.infra.metrics import Metrics
from services.infra.settings import Settings
from tests.factories import supplier_registered, supplier_state

RESULTS = Path(__file__).parent / "results"


async def fill(pool: asyncpg.Pool, schema: str, rows: int, aggregates: int) -> None:
    states = [supplier_state() for _ in range(aggregates)]
    events = [
        supplier_registered(states[i % aggregates].model_copy(update={"version": 1 + i // aggregates}))
        for i in range(rows)
    ]
    async with pool.acquire() as conn, conn.transaction():
        await outbox.append_many(conn, schema, SUPPLIERS, events)


async def drain(pool: asyncpg.Pool, settings: Settings, schema: str, relays: int, batch: int) -> float:
    producers = [make_producer(settings, f"bench-{i}") for i in range(relays)]
    for p in producers:
        await p.start()
    runners = [
        outbox.OutboxRelay(pool=pool, producer=p, schema=schema, metrics=Metrics("bench"), batch_size=batch)
        for p in producers
    ]
    started = time.perf_counter()
    tasks = [asyncio.create_task(r.run()) for r in runners]
    try:
        while await pool.fetchval(f"SELECT count(*) FROM {schema}.outbox"):
            await asyncio.sleep(0.02)
        return time.perf_counter() - started
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for p in producers:
            await p.stop()


async def run(database_url: str, bootstrap: str, rows: int, batch: int) -> dict[str, Any]:
    settings = Settings(mode="development", kafka_bootstrap=bootstrap, database_url=database_url)
    await ensure_topics(bootstrap, [SUPPLIERS], settings.kafka_partitions)
    schema = f"outbox_bench_{secrets.token_hex(4)}"
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=8)
    assert pool is not None
    async with pool.acquire() as conn:
        await apply_migrations(
            conn, schema, [m for m in migrations_for("needs") if m.name.startswith("infra/")]
        )
    results: dict[str, Any] = {"rows": rows, "batch_size": batch}
    try:
        for relays in (1, 2, 1, 2):
            await fill(pool, schema, rows, aggregates=max(rows // 20, 1))
            seconds = await drain(pool, settings, schema, relays, batch)
            results.setdefault(f"relays_{relays}_rows_per_s", []).append(round(rows / seconds))
            print(f"{relays} relay(s): {rows} rows in {seconds:.2f} s, {rows / seconds:,.0f} rows/s")
    finally:
        await pool.execute(f"DROP SCHEMA {schema} CASCADE")
        await pool.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    started: list[Postgres | Tansu] = []
    workdir = Path(tempfile.mkdtemp(prefix="innomatch-bench-"))
    try:
        database = os.environ.get("INNOMATCH_DATABASE_URL")
        bootstrap = os.environ.get("INNOMATCH_KAFKA_BOOTSTRAP")
        if not database:
            pg = Postgres(workdir / "postgres", free_port())
            pg.start()
            started.append(pg)
            database = pg.database_url("bench")
            asyncio.run(ensure_database(database))
        if not bootstrap:
            tansu = Tansu(free_port(), workdir / "tansu.log")
            tansu.start()
            started.append(tansu)
            bootstrap = tansu.bootstrap
        results = asyncio.run(run(database, bootstrap, args.rows, args.batch))
    finally:
        for server in reversed(started):
            server.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "outbox.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
