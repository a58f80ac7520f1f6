"""From a supplier's registration to its first match event, at a steady rate, on a dev stack.

    INNOMATCH_REGISTRATION_RATE_PER_MINUTE=0 uv run innomatch dev      # in one terminal
    uv run python -m tests.bench.bench_registration_matches --rates 1 2 3 --seconds 45

A buyer group publishes the development set's needs (`tests/eval`, written as buyers write;
the held-out needs are left out), then that set's supplier profiles, written as suppliers
write them (100-200 words, Swedish and English), register through the API at each rate in
turn, each profile once (a profile registered again would find its vector stored). For every
registration the latency is from the start of its POST to the first match event naming the
supplier on innomatch.matches.v1: the suppliers service and its outbox, the broker, the
embedder group (the profile's sentences through the model), the matcher's replica and its
ranking against the open needs, and the matcher's outbox. A supplier that enters no
need's top K has no latency; the share that matched is reported.

Embedding is the costly step (`bench_embedding`): above what the embedding cores do per
second, the latency grows with the queue. Prints the numbers and writes
tests/bench/results/registration_matches.json. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from services.contracts.events import NeedState, SupplierState
from tests.bench.bench_alerts import org_number, percentile, watch_matches
from tests.bench.bench_matcher_events import metric
from tests.bench.bench_registration import DEV_JSON
from tests.eval.evaluate import load_parts

RESULTS = Path(__file__).parent / "results" / "registration_matches.json"
TARGET = {"p99_s": 2.0}


async def publish_needs(dev: dict[str, Any], needs: list[NeedState]) -> None:
    """The needs, published by one buyer group; returns once the matcher holds them all
    (their texts embedded)."""
    operator = {"Authorization": f"Bearer {dev['operator_token']}"}
    matcher = dev["services"]["matcher"]
    async with httpx.AsyncClient(base_url=dev["services"]["needs"], headers=operator, timeout=30) as http:
        held = metric((await http.get(f"{matcher}/metrics")).text, "innomatch_matcher_open_needs")
        authority = await http.post(
            "/v1/authorities",
            json={
                "org_number": org_number("212"),
                "name": "Bench kommun",
                "level": "local",
                "region": "SE110",
            },
        )
        authority.raise_for_status()
        group = await http.post(
            "/v1/buyer-groups",
            json={
                "name": "Bench group",
                "focus_area": "transport",
                "member_authority_ids": [authority.json()["id"]],
            },
        )
        group.raise_for_status()
        group_id, token = group.json()["id"], group.json()["token"]
        fields = {
            "title",
            "description",
            "cpv_codes",
            "focus_area",
            "regions",
            "min_trl",
            "preferred_supplier_types",
        }
        for need in needs:
            body = need.model_dump(mode="json", include=fields) | {
                "procedure": "innovation_partnership",
                "respond_by": "2099-06-30",
            }
            response = await http.post(
                f"/v1/buyer-groups/{group_id}/needs", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            response.raise_for_status()
        while metric(
            (await http.get(f"{matcher}/metrics")).text, "innomatch_matcher_open_needs"
        ) < held + len(needs):
            await asyncio.sleep(1)


def registration(supplier: SupplierState) -> dict[str, Any]:
    body = supplier.model_dump(
        mode="json", include={"name", "size", "company_type", "founded_year", "contact_email", "capabilities"}
    )
    return body | {"org_number": org_number("556")}


async def at_rate(
    suppliers_url: str,
    profiles: list[SupplierState],
    rate: float,
    seconds: float,
    drain_s: float,
    first: dict[str, float],
) -> dict[str, Any]:
    posted: dict[str, float] = {}
    errors = 0
    count = int(rate * seconds)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=suppliers_url, timeout=30) as http:

        async def register(i: int) -> None:
            nonlocal errors
            await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
            sent = time.monotonic()
            response = await http.post("/v1/suppliers", json=registration(profiles[i]))
            if response.status_code == 201:
                posted[response.json()["id"]] = sent
            else:
                errors += 1

        await asyncio.gather(*(register(i) for i in range(count)))
    # Until every registration has matched or the stack has been idle for drain_s.
    last = time.monotonic()
    while time.monotonic() - last < drain_s:
        matched_now = sum(1 for s in posted if s in first)
        await asyncio.sleep(1)
        if sum(1 for s in posted if s in first) > matched_now:
            last = time.monotonic()
    latencies = [first[s] - posted[s] for s in posted if s in first]
    return {
        "rate_per_s": rate,
        "registered": len(posted),
        "errors": errors,
        "matched": len(latencies),
        "matched_share": round(len(latencies) / max(1, len(posted)), 3),
        "latency_s": {
            "p50": round(percentile(latencies, 0.5), 2) if latencies else None,
            "p90": round(percentile(latencies, 0.9), 2) if latencies else None,
            "p99": round(percentile(latencies, 0.99), 2) if latencies else None,
            "max": round(max(latencies), 2) if latencies else None,
        },
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    dev = json.loads(args.dev_json.read_text())
    first: dict[str, float] = {}
    ready = asyncio.Event()
    watcher = asyncio.create_task(watch_matches(dev["kafka_bootstrap"], first, "supplier_id", ready))
    try:
        await ready.wait()
        suppliers, needs, _ = load_parts("dev")
        await publish_needs(dev, needs)
        random.Random(3).shuffle(suppliers)
        rounds = []
        for rate in args.rates:
            count = int(rate * args.seconds)
            if count > len(suppliers):
                raise SystemExit(f"only {len(suppliers)} profiles are left for {rate}/s")
            profiles, suppliers = suppliers[:count], suppliers[count:]
            found = await at_rate(
                dev["services"]["suppliers"], profiles, rate, args.seconds, args.drain_seconds, first
            )
            print(json.dumps(found), flush=True)
            rounds.append(found)
    finally:
        watcher.cancel()
    return {
        "measured_at": datetime.now(UTC).isoformat(),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "params": {"needs": len(needs), "seconds": args.seconds},
        "target": TARGET,
        "rounds": rounds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", type=float, nargs="+", default=[1.0, 2.0, 3.0], help="registrations/s")
    parser.add_argument("--seconds", type=float, default=45.0, help="how long each rate is held")
    parser.add_argument("--drain-seconds", type=float, default=30.0, help="idle time that ends a round")
    parser.add_argument("--dev-json", type=Path, default=DEV_JSON)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
