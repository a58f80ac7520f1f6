"""Cost of one refresh of the supplier gauge (innomatch_suppliers_registered) at scale.

    uv run python -m tests.bench.bench_kpis --suppliers 200000

Starts a throw-away embedded PostgreSQL, migrates the suppliers schema, loads that many
supplier profiles (the same JSON the service stores) with COPY, and times the refresh query
of services/suppliers/kpis.py. Each replica of the suppliers service runs it every
INNOMATCH_LAG_POLL_INTERVAL_S. Prints the numbers and writes them to
tests/bench/results/kpis.json. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from services.contracts.vocab import CompanyType, SupplierSize
from services.infra.db import ensure_database, migrate
from services.infra.devstack import Postgres, free_port
from services.infra.settings import Settings
from services.suppliers import kpis
from tests.factories import supplier_state

RESULTS = Path(__file__).parent / "results" / "kpis.json"
SIZES = tuple(SupplierSize)
TYPES = tuple(CompanyType)
CHUNK = 50_000


async def load(url: str, n: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        now = datetime.now(UTC)
        template = supplier_state()
        for start in range(0, n, CHUNK):
            rows = []
            for i in range(start, min(start + CHUNK, n)):
                state = template.model_copy(
                    update={"id": str(uuid.uuid4()), "size": SIZES[i % 4], "company_type": TYPES[i % 3]}
                )
                rows.append((uuid.UUID(state.id), f"org-{i}", state.model_dump_json(), 1, now, now))
            await conn.copy_records_to_table(
                "suppliers",
                schema_name="suppliers",
                records=rows,
                columns=["id", "org_number", "profile", "version", "created_at", "updated_at"],
            )
        await conn.execute("VACUUM ANALYZE suppliers.suppliers")
    finally:
        await conn.close()


async def time_refresh(url: str, repeats: int) -> list[float]:
    conn = await asyncpg.connect(url)
    try:
        await conn.fetch(kpis._COUNT_LIVE)  # warm the cache, as a running service would
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            rows = await conn.fetch(kpis._COUNT_LIVE)
            times.append(time.perf_counter() - started)
        assert len(rows) == len(SIZES) * len(TYPES)
        return times
    finally:
        await conn.close()


async def main(n: int, repeats: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="innomatch-bench-kpis-") as tmp:
        pg = Postgres(Path(tmp) / "pg", free_port())
        pg.start()
        try:
            url = pg.database_url("bench_kpis")
            await ensure_database(url)
            await migrate(Settings(mode="development", database_url=url), ["suppliers"])
            started = time.perf_counter()
            await load(url, n)
            load_s = time.perf_counter() - started
            times = await time_refresh(url, repeats)
        finally:
            pg.stop()
    return {
        "suppliers": n,
        "load_s": round(load_s, 1),
        "refresh_p50_ms": round(statistics.median(times) * 1000, 1),
        "refresh_max_ms": round(max(times) * 1000, 1),
        "repeats": repeats,
        "machine": f"{platform.machine()} {platform.system()}",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suppliers", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    result = asyncio.run(main(args.suppliers, args.repeats))
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
