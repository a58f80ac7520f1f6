"""Supplier events per second through a running matcher: consume, score, emit.

    uv run innomatch dev                                   # one terminal
    uv run python -m tests.bench.bench_matcher_events --needs 200 --suppliers 20000

Publishes open needs, waits until the matcher holds them, then publishes supplier.registered
events straight onto innomatch.suppliers.v1 (the suppliers service is not what is measured)
and times how long the matcher takes to apply them all: each is stored in its projection,
indexed, scored against the open needs, and its matches written with their events. Reads the
matcher's own metrics. Prints the numbers and writes tests/bench/results/matcher_events.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from services.contracts.events import NeedPublished, SupplierRegistered, new_event
from services.contracts.topics import NEEDS, SUPPLIERS
from tests.bench.profiles import Generator

RESULTS = Path(__file__).parent / "results"
DEV_JSON = Path(".innomatch/dev.json")


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] == name and all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


async def read(http: httpx.AsyncClient, url: str) -> str:
    return (await http.get(f"{url}/metrics")).text


async def publish(producer: AIOKafkaProducer, topic: str, events: list[Any]) -> None:
    sends = [
        await producer.send(
            topic,
            event.model_dump_json().encode(),
            key=event.subject.encode(),
            headers=[("ce_id", event.id.encode()), ("ce_type", event.type.encode())],
        )
        for event in events
    ]
    await asyncio.gather(*sends)


async def run(matcher: str, bootstrap: str, needs: int, suppliers: int) -> dict[str, Any]:
    generator = Generator(seed=int(time.time()))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    async with httpx.AsyncClient(timeout=10) as http:
        try:
            consumed = "innomatch_events_consumed_total"
            held = metric(await read(http, matcher), "innomatch_matcher_open_needs")
            need_events = [
                new_event(NeedPublished, source="/bench", data=n.model_copy(update={"id": str(uuid.uuid4())}))
                for n in generator.needs(needs)
            ]
            await publish(producer, NEEDS, need_events)
            while metric(await read(http, matcher), "innomatch_matcher_open_needs") < held + needs:
                await asyncio.sleep(0.2)

            supplier_events = [
                new_event(
                    SupplierRegistered, source="/bench", data=s.model_copy(update={"id": str(uuid.uuid4())})
                )
                for s in generator.suppliers(suppliers)
            ]
            before = await read(http, matcher)
            done_before = metric(before, consumed, topic=SUPPLIERS, outcome="processed")
            emitted_before = metric(before, "innomatch_matcher_matches_emitted_total")
            started = time.perf_counter()
            await publish(producer, SUPPLIERS, supplier_events)
            published_s = time.perf_counter() - started
            while True:
                now = await read(http, matcher)
                done = metric(now, consumed, topic=SUPPLIERS, outcome="processed") - done_before
                if done >= suppliers:
                    break
                await asyncio.sleep(0.5)  # scraping costs the matcher CPU too
            elapsed = time.perf_counter() - started
            emitted = metric(now, "innomatch_matcher_matches_emitted_total") - emitted_before
        finally:
            await producer.stop()
    return {
        "open_needs_held": int(held + needs),
        "supplier_events": suppliers,
        "publish_seconds": round(published_s, 2),
        "seconds": round(elapsed, 2),
        "supplier_events_per_s": round(suppliers / elapsed),
        "match_events_emitted": int(emitted),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--needs", type=int, default=200)
    parser.add_argument("--suppliers", type=int, default=20_000)
    parser.add_argument("--matcher", help="matcher URL (default: from .innomatch/dev.json)")
    parser.add_argument("--bootstrap", help="Kafka bootstrap (default: from .innomatch/dev.json)")
    args = parser.parse_args()
    dev = json.loads(DEV_JSON.read_text()) if DEV_JSON.exists() else {}
    matcher = args.matcher or dev["services"]["matcher"]
    bootstrap = args.bootstrap or dev["kafka_bootstrap"]
    result = asyncio.run(run(matcher, bootstrap, args.needs, args.suppliers))
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "matcher_events.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
