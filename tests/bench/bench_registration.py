"""Registration throughput and latency through the API of a running dev stack.

    INNOMATCH_REGISTRATION_RATE_PER_MINUTE=0 uv run innomatch dev     # in one terminal
    uv run python -m tests.bench.bench_registration --count 3000      # in another

The stack must run without the registration rate limit: every request here comes from one
address. Reads the suppliers URL from .innomatch/dev.json, registers --count suppliers with
--concurrency requests in flight (stopping after --max-seconds), prints registrations per
second and p50/p99 latency, and writes them to tests/bench/results/registration.json.
Not collected by pytest (the file name does not start with test_).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from services.contracts.orgnr import luhn_check_digit
from tests.factories import registration

RESULTS = Path(__file__).parent / "results" / "registration.json"
DEV_JSON = Path(".innomatch") / "dev.json"


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--count", type=int, default=3000, help="registrations to make (at most 50000)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=60.0, help="stop sending after this long")
    parser.add_argument("--warmup", type=int, default=100, help="registrations made before measuring")
    parser.add_argument("--dev-json", type=Path, default=DEV_JSON)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.count = max(1, min(args.count, 50_000))
    return args


class OrgNumbers:
    """Fresh organisationsnummer from a random start, so runs against one stack rarely collide."""

    def __init__(self) -> None:
        self._next = 2_000_000 + secrets.randbelow(7_000_000)

    def __call__(self) -> str:
        self._next = 2_000_000 + (self._next + 1 - 2_000_000) % 8_000_000
        first9 = f"55{self._next:07d}"
        return f"{first9[:6]}-{first9[6:]}{luhn_check_digit(first9)}"


_org_numbers = OrgNumbers()


def _percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


async def _worker(
    http: httpx.AsyncClient, todo: list[int], deadline: float, latencies: list[float], statuses: Counter[int]
) -> None:
    while todo and time.monotonic() < deadline:
        todo.pop()
        started = time.perf_counter()
        try:
            status = (
                await http.post("/v1/suppliers", json=registration(org_number=_org_numbers()))
            ).status_code
        except httpx.HTTPError:
            status = 0
        latencies.append(time.perf_counter() - started)
        statuses[status] += 1


async def _run(url: str, count: int, concurrency: int, max_seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    todo = list(range(count))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        started = time.perf_counter()
        deadline = time.monotonic() + max_seconds
        await asyncio.gather(
            *(_worker(http, todo, deadline, latencies, statuses) for _ in range(concurrency))
        )
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    created = statuses.get(201, 0)
    return {
        "requests": len(latencies),
        "registered": created,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "elapsed_s": round(elapsed, 3),
        "registrations_per_s": round(created / elapsed, 1) if elapsed else 0.0,
        "latency_ms": {
            "p50": round(_percentile(ordered, 50) * 1000, 2),
            "p99": round(_percentile(ordered, 99) * 1000, 2),
            "max": round(ordered[-1] * 1000, 2) if ordered else 0.0,
            "mean": round(statistics.fmean(ordered) * 1000, 2) if ordered else 0.0,
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    url = json.loads(args.dev_json.read_text())["services"]["suppliers"]
    if args.warmup:
        asyncio.run(_run(url, args.warmup, args.concurrency, args.max_seconds))
    result = asyncio.run(_run(url, args.count, args.concurrency, args.max_seconds))
    report = {
        "benchmark": "registration",
        "at": datetime.now(UTC).isoformat(),
        "url": url,
        "concurrency": args.concurrency,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    latency = result["latency_ms"]
    print(
        f"{result['registered']} registrations in {result['elapsed_s']} s: "
        f"{result['registrations_per_s']}/s, p50 {latency['p50']} ms, p99 {latency['p99']} ms "
        f"(statuses {result['statuses']}); written to {args.out}"
    )
    if result["statuses"].get("429"):
        print("429s: start the stack with INNOMATCH_REGISTRATION_RATE_PER_MINUTE=0", file=sys.stderr)
    return 0 if result["registered"] == result["requests"] else 1


if __name__ == "__main__":
    sys.exit(main())
