"""Alert latency and delivery rate on a running dev stack, to a local webhook receiver.

    INNOMATCH_DEV_KAFKA_PORT=... uv run innomatch dev         # in one terminal
    uv run python -m tests.bench.bench_alerts                 # in another

Phase 2 (pipeline): registers --suppliers suppliers (unless the matcher already holds that
many), forms a buyer group whose webhook is a signature-checking receiver in this process,
then POSTs needs at --rate per second for --seconds. For each need, the latency is from the
start of its POST to the first signed webhook about it arriving at the receiver (needs
service -> outbox -> broker -> matcher -> broker -> notifier -> webhook).

Phase 1 (delivery): publishes --alerts match events straight to innomatch.matches.v1 for
a group with a webhook and measures alerts delivered per second by the notifier.

Prints the numbers and writes tests/bench/results/alerts.json. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import secrets
import statistics
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx

from services.contracts.events import (
    BuyerGroupCreated,
    BuyerGroupState,
    MatchExplanation,
    MatchFound,
    MatchState,
    NeedPublished,
    NeedState,
    match_id,
    new_event,
)
from services.contracts.orgnr import luhn_check_digit
from services.contracts.topics import BUYER_GROUPS, MATCHES, NEEDS
from tests.bench.bench_registration import DEV_JSON
from tests.kafka_helpers import produce
from tests.receivers import WebhookReceiver

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "alerts.json"
TARGET = {"p50_ms": 200, "p99_ms": 1000}
SECRET = "bench-receiver-secret-0123456789"

THEMES: list[dict[str, Any]] = [
    {
        "focus": "transport",
        "cpv": ["31158100", "34144910", "34900000"],
        "words": ["laddinfrastruktur", "elbussar", "snabbladdning", "depå", "batterier", "elektrifiering"],
        "title": "Laddinfrastruktur för elbussar",
    },
    {
        "focus": "health_care",
        "cpv": ["85100000", "48180000", "33100000"],
        "words": ["vårdplanering", "distansvård", "sensorer", "journalsystem", "äldreomsorg", "larm"],
        "title": "Digital distansvård för äldre",
    },
    {
        "focus": "community_building",
        "cpv": ["45000000", "45210000", "71300000"],
        "words": ["trähus", "byggande", "energieffektivitet", "klimatneutral", "skolor", "renovering"],
        "title": "Klimatneutrala skolbyggnader i trä",
    },
    {
        "focus": "sustainable_production",
        "cpv": ["90400000", "42990000", "38000000"],
        "words": ["avloppsrening", "vatten", "mikroplaster", "filter", "mätning", "återvinning"],
        "title": "Rening av mikroplaster i avloppsvatten",
    },
    {
        "focus": "industry_4_0",
        "cpv": ["72000000", "48000000", "38000000"],
        "words": ["digitala tvillingar", "sensorer", "prediktivt underhåll", "maskininlärning", "robotar"],
        "title": "Prediktivt underhåll med digitala tvillingar",
    },
]
REGIONS = ["SE11", "SE12", "SE21", "SE22", "SE23", "SE31", "SE32", "SE33"]


def org_number(prefix: str) -> str:
    first9 = f"{prefix}{secrets.randbelow(1_000_000):06d}"
    return f"{first9[:6]}-{first9[6:]}{luhn_check_digit(first9)}"


def supplier_body(rng: random.Random) -> dict[str, Any]:
    # Themes mixed at random, so that a need matches some suppliers well and many in part.
    theme = rng.choice(THEMES)
    words = rng.sample((theme if rng.random() < 0.4 else rng.choice(THEMES))["words"], 3)
    focus = (theme if rng.random() < 0.5 else rng.choice(THEMES))["focus"]
    return {
        "org_number": org_number(f"55{rng.randint(6, 9)}"),
        "name": f"Bench {words[0].capitalize()} {rng.randint(1, 10**6)} AB",
        "size": rng.choice(["micro", "small", "medium", "large"]),
        "company_type": rng.choice(["industrial", "industry_service", "other"]),
        "founded_year": rng.randint(1990, 2025),
        "contact_email": "bench@example.se",
        "capabilities": {
            "cpv_codes": rng.sample(theme["cpv"], 2),
            "focus_areas": [focus],
            "keywords": words,
            "description": f"Vi levererar {', '.join(words)} till offentlig sektor.",
            "regions": rng.sample(REGIONS, 2),
            "trl": rng.randint(4, 9),
        },
    }


def need_body(rng: random.Random) -> dict[str, Any]:
    theme = rng.choice(THEMES)
    words = rng.sample(theme["words"], 3)
    return {
        "title": f"{theme['title']} {rng.randint(1, 10**6)}",
        "description": f"Vi söker lösningar för {', '.join(words)}.",
        "cpv_codes": theme["cpv"][:2],
        "focus_area": theme["focus"],
        "regions": ["SE"],
        "min_trl": 4,
        "procedure": "innovation_partnership",
        "respond_by": "2099-06-30",
    }


async def register_suppliers(url: str, n: int, concurrency: int = 32) -> float:
    rng = random.Random(7)
    bodies = [supplier_body(rng) for _ in range(n)]
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    started = time.perf_counter()

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            for _ in range(5):
                r = await client.post("/v1/suppliers", json=body)
                if r.status_code == 201:
                    break
                body["org_number"] = org_number("556")  # taken: try another
            else:
                raise RuntimeError(f"registration failed: {r.status_code} {r.text[:200]}")

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return time.perf_counter() - started


def metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=60).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


async def create_group(
    needs_url: str, token: str, receiver: WebhookReceiver, min_score: float
) -> tuple[str, str]:
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=needs_url, headers=auth, timeout=30) as http:
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
        alerts = {"webhook_url": receiver.url, "webhook_secret": SECRET, "min_score": min_score}
        group = await http.post(
            "/v1/buyer-groups",
            json={
                "name": "Bench group",
                "focus_area": "transport",
                "member_authority_ids": [authority.json()["id"]],
                "alerts": alerts,
            },
        )
        group.raise_for_status()
        return group.json()["id"], group.json()["token"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def pipeline(dev: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    urls = dev["services"]
    have = metric(urls["matcher"], "innomatch_matcher_supplier_profiles")
    registration_s = None
    if have < args.suppliers:
        registration_s = await register_suppliers(urls["suppliers"], int(args.suppliers - have))
    deadline = time.monotonic() + 300
    while metric(urls["matcher"], "innomatch_matcher_supplier_profiles") < args.suppliers:
        if time.monotonic() > deadline:
            raise TimeoutError("the matcher did not load the suppliers within 300 s")
        await asyncio.sleep(1)

    receiver = WebhookReceiver(SECRET).start()
    matched: dict[str, float] = {}
    watch = asyncio.create_task(watch_matches(dev["kafka_bootstrap"], matched))
    try:
        group_id, token = await create_group(urls["needs"], dev["operator_token"], receiver, args.min_score)
        await asyncio.sleep(2)  # the notifier learns the group's webhook from its event
        rng = random.Random(11)
        posted: dict[str, float] = {}
        errors = 0
        n = int(args.rate * args.seconds)
        started = time.monotonic()
        async with httpx.AsyncClient(
            base_url=urls["needs"], headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as http:

            async def post_one(i: int) -> None:
                nonlocal errors
                await asyncio.sleep(max(0.0, started + i / args.rate - time.monotonic()))
                sent = time.monotonic()
                r = await http.post(f"/v1/buyer-groups/{group_id}/needs", json=need_body(rng))
                if r.status_code == 201:
                    posted[r.json()["id"]] = sent
                else:
                    errors += 1

            await asyncio.gather(*(post_one(i) for i in range(n)))
        send_s = time.monotonic() - started
        await asyncio.sleep(args.drain_seconds)
        first: dict[str, float] = {}
        alerts = receiver.alerts(f"buyer_group:{group_id}")
        posts = len({a.delivery_id for a in alerts})
        for r in alerts:
            need = r.body["match"]["need_id"]
            first[need] = min(first.get(need, r.at), r.at)
        latencies = [(first[k] - posted[k]) * 1000 for k in posted if k in first]
        # Where the time goes: POST to the need's first match event on the topic (needs
        # service, relay, matcher, relay), then that event to the webhook (notifier).
        upstream = [(matched[k] - posted[k]) * 1000 for k in posted if k in first and k in matched]
        downstream = [(first[k] - matched[k]) * 1000 for k in posted if k in first and k in matched]
        bad_signatures = sum(1 for r in receiver.received if not r.signature_ok)
        span = (max(r.at for r in alerts) - min(r.at for r in alerts)) if len(alerts) > 1 else 0.0
    finally:
        watch.cancel()
        receiver.stop()
    return {
        "suppliers": int(metric(urls["matcher"], "innomatch_matcher_supplier_profiles")),
        "registration_seconds": registration_s,
        "needs_posted": len(posted),
        "post_errors": errors,
        "send_seconds": round(send_s, 2),
        "needs_alerted": len(latencies),
        "alerts_received": len(alerts),
        "webhook_posts": posts,
        "alerts_per_s_during_run": round(len(alerts) / span, 1) if span else None,
        "bad_signatures": bad_signatures,
        "latency_ms": {
            **summary(latencies),
            "max": round(max(latencies), 1) if latencies else None,
            "mean": round(statistics.fmean(latencies), 1) if latencies else None,
        },
        "post_to_match_event_ms": summary(upstream),
        "match_event_to_webhook_ms": summary(downstream),
    }


def summary(values: list[float]) -> dict[str, float | None]:
    """p50, p90 and p99 of `values`, rounded to 0.1 (None when there are none)."""
    if not values:
        return {"p50": None, "p90": None, "p99": None}
    return {q: round(percentile(values, v), 1) for q, v in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))}


async def watch_matches(
    bootstrap: str, seen: dict[str, float], key: str = "need_id", ready: asyncio.Event | None = None
) -> None:
    """Note when the first match event of each need (or each value of `key`, such as
    "supplier_id") can be read from the matches topic; `ready` is set once the consumer reads."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        MATCHES, bootstrap_servers=bootstrap, auto_offset_reset="latest", fetch_max_wait_ms=10
    )
    await consumer.start()
    try:
        if ready is not None:  # nothing is published yet: what the first polls read is no news
            while not consumer.assignment():
                await consumer.getmany(timeout_ms=100)
            ready.set()
        while True:
            batch = await consumer.getmany(timeout_ms=100)
            now = time.monotonic()
            for records in batch.values():
                for r in records:
                    value = json.loads(r.value or b"{}").get("data", {}).get(key)
                    if value:
                        seen.setdefault(value, now)
    finally:
        await consumer.stop()


async def delivery(dev: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Match events straight onto the topic: the notifier's own delivery rate."""
    receiver = WebhookReceiver(SECRET).start()
    try:
        now = datetime.now(UTC)
        group = BuyerGroupState.model_validate(
            {
                "id": str(uuid.uuid4()),
                "name": "Bench delivery group",
                "focus_area": "transport",
                "alerts": {"webhook_url": receiver.url, "webhook_secret": SECRET, "min_score": 0.0},
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
        need = NeedState.model_validate(
            {
                **need_body(random.Random(3)),
                "id": str(uuid.uuid4()),
                "buyer_group_id": group.id,
                "status": "open",
                "version": 1,
                "published_at": now,
                "updated_at": now,
                "respond_by": date(2099, 6, 30),
            }
        )
        bootstrap = dev["kafka_bootstrap"]
        g = new_event(BuyerGroupCreated, source="/bench", data=group)
        nd = new_event(NeedPublished, source="/bench", data=need)
        await produce(bootstrap, BUYER_GROUPS, [(g.subject.encode(), g.model_dump_json().encode())])
        await produce(bootstrap, NEEDS, [(nd.subject.encode(), nd.model_dump_json().encode())])
        await asyncio.sleep(3)
        explanation = MatchExplanation(
            region_verdict="serves SE, the need is in SE", trl_verdict="TRL 7 meets 4"
        )
        messages = []
        published: set[str] = set()
        for _ in range(args.alerts):
            supplier = str(uuid.uuid4())
            m = MatchState(
                id=match_id(need.id, supplier),
                need_id=need.id,
                supplier_id=supplier,
                score=0.8,
                version=1,
                status="active",
                explanation=explanation,
                updated_at=now,
            )
            published.add(m.id)
            e = new_event(MatchFound, source="/bench", data=m)
            messages.append((e.subject.encode(), e.model_dump_json().encode()))
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await producer.start()
        started = time.monotonic()
        try:
            await asyncio.gather(*[await producer.send(MATCHES, v, key=k) for k, v in messages])
        finally:
            await producer.stop()
        deadline = time.monotonic() + 300
        # Only the matches published here: the matcher also scores the need and adds its own.

        def delivered() -> list[Any]:
            return [a for a in receiver.alerts() if a.body.get("match", {}).get("id") in published]

        while len(delivered()) < args.alerts and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        accepted = delivered()
        elapsed = (max(r.at for r in accepted) - started) if accepted else 0.0
    finally:
        receiver.stop()
    return {
        "alerts_published": args.alerts,
        "alerts_delivered": len(accepted),
        "webhook_posts": len({a.delivery_id for a in accepted}),
        "seconds": round(elapsed, 2),
        "alerts_per_s": round(len(accepted) / elapsed, 1) if elapsed else None,
        "bad_signatures": sum(1 for r in receiver.received if not r.signature_ok),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    dev = json.loads(args.dev_json.read_text())
    out: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "params": {
            "suppliers": args.suppliers,
            "rate": args.rate,
            "seconds": args.seconds,
            "min_score": args.min_score,
            "alerts": args.alerts,
        },
        "target": TARGET,
    }
    # Delivery first: the pipeline phase can leave a backlog behind that would slow it down.
    if args.alerts:
        out["delivery"] = await delivery(dev, args)
    if not args.skip_pipeline:
        out["pipeline"] = await pipeline(dev, args)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--suppliers", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=20.0, help="needs per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--min-score", type=float, default=0.5, help="the buyer group's min_score")
    parser.add_argument("--drain-seconds", type=float, default=10.0, help="wait for late alerts")
    parser.add_argument("--alerts", type=int, default=5000, help="phase 1 size; 0 skips it")
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--dev-json", type=Path, default=DEV_JSON)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
