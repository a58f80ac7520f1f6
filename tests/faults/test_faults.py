"""Fault injection: the same load of needs and supplier events goes through the whole pipeline
(HTTP API -> outbox -> Kafka -> matcher -> matches -> notifier -> signed webhook) once
without a fault, as the reference, and once per fault. Each run must end with the reference's
matches (none for a closed need, none extra), every alert of them delivered, and no alert
accepted twice.

The scenarios run in this order on one stack; each uses regions of its own (see load.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.contracts.topics import BUYER_GROUPS, MATCHES, NEEDS, SUPPLIERS, dlq
from tests.faults.conftest import OPERATOR_TOKEN, RESULT_ROWS, Harness
from tests.faults.load import COUNTIES, LoadRunner, World, make_plan
from tests.faults.observe import Pair, compare, end_offsets, settle

pytestmark = [pytest.mark.faults, pytest.mark.timeout(420)]

# INNOMATCH_FAULTS_SUPPLIERS shrinks the load for a quick try of the harness itself.
PLAN = make_plan(suppliers=int(os.environ.get("INNOMATCH_FAULTS_SUPPLIERS", "1000")))
# Supplier registrations sent when the fault is injected: early in the load, so the rest of
# the load runs through the fault and the recovery.
FAULT_AT = min(300, len(PLAN.suppliers) * 3 // 10)
REFERENCE: dict[str, set[Pair]] = {}
_scenarios = iter(range(10))
Fault = Callable[[Harness], Awaitable[float | None]]  # returns the recovery time


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def run_scenario(
    h: Harness, name: str, fault: Fault | None = None, at: int = FAULT_AT
) -> dict[str, Any]:
    k = next(_scenarios)
    world = World((COUNTIES[2 * k], COUNTIES[2 * k + 1]))
    runner = LoadRunner(
        lambda service: h.cluster.url(service), OPERATOR_TOKEN, h.database_url, h.receiver.url, scenario=k + 1
    )
    dlqs = [dlq(t) for t in (SUPPLIERS, NEEDS, BUYER_GROUPS, MATCHES)]
    dlq_before = await end_offsets(h.bootstrap, dlqs)
    injected: list[asyncio.Task[float | None]] = []

    async def progress(sent: int) -> None:
        if fault is not None and sent == at and not injected:
            injected.append(asyncio.create_task(fault(h)))

    runner.progress = progress
    began = time.monotonic()
    await runner.run(world, PLAN)
    load_s = time.monotonic() - began
    recovery = await injected[0] if injected else None
    expected = REFERENCE.get("pairs")
    matcher_url = h.cluster.url("matcher")
    urls = [p.url for p in h.cluster.processes.values() if p.running()]
    # A run that has not reached the expected state waits out the notifier's lease (15 s here)
    # before it counts what is missing as lost.
    quiet_s = 10 if expected is None else 20
    async with httpx.AsyncClient(timeout=30) as http:
        seen, settle_s = await settle(
            http, matcher_url, urls, h.operator, PLAN, world, h.receiver, expected, quiet_s=quiet_s
        )
    if expected is None:  # the reference run: its own open needs' matches are the expectation
        expected = {p for p in seen.matches if p[0] not in world.closed}
        REFERENCE["pairs"] = expected
    verdict = compare(PLAN, world, expected, seen)
    dlq_after = await end_offsets(h.bootstrap, dlqs)
    row = {
        "scenario": name,
        "events": world.events,
        "lost": verdict.lost,
        "extra": verdict.extra + seen.foreign,
        "stale": sum(1 for i, _ in verdict.extra_matches if i in world.closed),
        "duplicated": verdict.duplicated_alerts,
        "resent": seen.resent,
        "dlq": sum(dlq_after.values()) - sum(dlq_before.values()),
        "recovery_s": round(recovery, 1) if recovery is not None else None,
        "settle_s": round(settle_s, 1),
        "load_s": round(load_s, 1),
        "matches": len(seen.matches),
        "alerts": sum(seen.alerts.values()),
        "closed_needs": len(world.closed),
        "retries": world.retries,
        "looked_up": world.looked_up,
        "lost_matches": verdict.lost_matches[:20],
        "extra_matches": verdict.extra_matches[:20],
        "lost_alerts": len(verdict.lost_alerts),
        "extra_alerts": len(verdict.extra_alerts),
        "foreign_matches": seen.foreign,
    }
    # The signature of a supplier event the matcher recorded but never ranked: each supplier
    # with a lost match lost all of them, and the lost alerts are exactly theirs (two each).
    losers = {j for _, j in verdict.lost_matches}
    row["never_ranked"] = sorted(losers)[:20]
    row["only_never_ranked"] = bool(losers) and (
        {p for p in expected if p[0] not in world.closed and p[1] in losers} == set(verdict.lost_matches)
        and len(verdict.lost_alerts) == 2 * len(verdict.lost_matches)
    )
    stale = [p for p in verdict.extra_matches if p[0] in world.closed]
    row["stale_evidence"] = await _stale_evidence(h, world, stale[:3])
    RESULT_ROWS.append(row)
    print(json.dumps(row))
    return row


async def _stale_evidence(h: Harness, world: World, pairs: list[Pair]) -> list[dict[str, Any]]:
    """For an active match of a closed need: when the match was written, and when the needs
    service and the matcher's projection closed the need."""
    if not pairs:
        return []
    conn = await asyncpg.connect(h.database_url)
    try:
        out = []
        for i, j in pairs:
            need_id, supplier_id = world.needs[i], world.suppliers[j]
            row = await conn.fetchrow(
                "SELECT m.version, m.status, m.updated_at AS match_written, "
                "  p.status AS projected_status, n.updated_at AS need_closed "
                "FROM matcher.matches m JOIN matcher.needs p ON p.id = m.need_id "
                "JOIN needs.needs n ON n.id::text = m.need_id "
                "WHERE m.need_id = $1 AND m.supplier_id = $2",
                need_id,
                supplier_id,
            )
            if row is not None:
                found = dict(row)
                lag = (found["match_written"] - found["need_closed"]).total_seconds()
                found["match_written_after_close_s"] = round(lag, 3)
                out.append({k: str(v) for k, v in found.items()})
        return out
    finally:
        await conn.close()


STALE_MATCH_BUG = (
    "known matcher bug: Matcher.on_supplier_events ranks a supplier against the open needs "
    "held in memory and writes the matches without checking or locking the need's stored "
    "status; when it runs before this process has applied a need's close to memory, or "
    "after the close's transaction read the need's active rows, it inserts the match (v1) or "
    "finds it again after the close withdrew it (v3) for a need already closed in "
    "matcher.needs (issue 15, deliverable 3)"
)


LOST_RANKING_BUG = (
    "known bugs: a batch that fails after the matcher updated its memory (PostgreSQL stopping "
    "or a connection terminated mid-batch) is replayed and loses its rankings. (1) asyncpg's "
    "InterfaceError 'cannot switch to state N; another operation (M) "
    "is in progress', raised on a connection whose backend was terminated, is not recognised "
    "as a lost connection (services/infra/faults.py _CLOSED), so with the database answering "
    "the batch is judged the events' own and applied one event at a time; a retry after a "
    "transient fault replays it too. (2) "
    "Matcher.on_supplier_events raises supplier_versions and the engine's profiles before "
    "its transaction commits, so the replay finds every supplier unchanged, returns before "
    "ranking, and the inbox records the events as processed: their matches and alerts are "
    "never made (issue 15, deliverable 2)"
)


def assert_clean(row: dict[str, Any], dlq: int = 0) -> None:
    """Nothing lost, nothing extra, nothing duplicated, no dead letters. What only the two
    known matcher bugs explain (suppliers never ranked, active matches left on closed needs)
    makes an expected failure; anything else fails."""
    assert (row["extra"] - row["stale"], row["duplicated"], row["dlq"]) == (0, 0, dlq), row
    if row["lost"]:
        assert row["only_never_ranked"], row
        pytest.xfail(f"{row['lost']} matches and alerts of suppliers never ranked: {LOST_RANKING_BUG}")
    if row["stale"]:
        pytest.xfail(f"{row['stale']} active matches of closed needs: {STALE_MATCH_BUG}")


async def test_reference_run_without_a_fault(harness: Harness) -> None:
    row = await run_scenario(harness, "none (reference)")
    if "INNOMATCH_FAULTS_SUPPLIERS" not in os.environ:  # the full load
        assert row["events"] >= 2000
        assert row["matches"] > 500, "the load should make many matches"
    assert_clean(row)


def _needs_reference() -> None:
    if "pairs" not in REFERENCE:
        pytest.skip("the reference run did not finish")


async def test_close_and_register_races_on_two_matcher_instances(harness: Harness) -> None:
    _needs_reference()
    second = harness.cluster.add(harness.process("matcher-b", "matcher"))
    await _in_thread(harness.cluster.start, ["matcher-b"])
    try:
        row = await run_scenario(harness, "two matchers, close/register races")
    finally:
        await _in_thread(harness.cluster.stop, [second.name])
        del harness.cluster.processes[second.name]
    assert_clean(row)


async def _postgres_outage(h: Harness) -> float:
    await _in_thread(h.postgres.stop_fast)
    await asyncio.sleep(15)
    await _in_thread(h.postgres.start)
    return float(await _in_thread(h.cluster.wait_ready))


async def test_postgres_stopped_for_15_s(harness: Harness) -> None:
    _needs_reference()
    assert_clean(await run_scenario(harness, "PostgreSQL stop 15 s", _postgres_outage))


async def _broker_outage(h: Harness) -> float:
    assert h.kafka is not None
    argv = await _in_thread(h.kafka.stop)
    await asyncio.sleep(5)
    await _in_thread(h.kafka.start, argv)
    return float(await _in_thread(h.cluster.wait_ready))


async def test_kafka_broker_stopped_and_restarted(harness: Harness) -> None:
    _needs_reference()
    if harness.kafka is None:
        pytest.skip("the broker is not an Apache Kafka run by deploy/kafka/kafka.sh (INNOMATCH_KAFKA_HOME)")
    assert_clean(await run_scenario(harness, "Kafka broker restart", _broker_outage))


def _kill(name: str) -> Fault:
    async def fault(h: Harness) -> float:
        process = h.cluster[name]
        await _in_thread(process.kill)
        began = time.monotonic()
        process.start()
        await _in_thread(h.cluster.wait_ready, [name])
        return time.monotonic() - began

    return fault


@pytest.mark.parametrize("service", ["suppliers", "needs", "matcher", "notifier"])
async def test_kill_9_mid_load(harness: Harness, service: str) -> None:
    _needs_reference()
    assert_clean(await run_scenario(harness, f"kill -9 {service}", _kill(service)))


async def _terminate_matcher_connections(h: Harness) -> float:
    """For 6 s, terminate every matcher connection that is in a query or a transaction."""
    conn = await asyncpg.connect(h.postgres.url)
    terminated = 0
    try:
        end = time.monotonic() + 6
        while time.monotonic() < end:
            terminated += len(
                await conn.fetch(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name LIKE 'faults-matcher%' AND state <> 'idle'"
                )
            )
            await asyncio.sleep(0.3)
    finally:
        await conn.close()
    assert terminated > 0, "no matcher connection was busy to terminate"
    return float(await _in_thread(h.cluster.wait_ready))


async def test_matcher_connection_terminated_mid_batch(harness: Harness) -> None:
    _needs_reference()
    assert_clean(await run_scenario(harness, "pg_terminate_backend matcher", _terminate_matcher_connections))


POISON = [
    b"\x00\x01\xfe not json at all \xff",
    b'{"specversion": "1.0", "type": ',
    b"[]",
    json.dumps(
        {"specversion": "1.0", "id": "poison", "type": "supplier.registered", "data": {"id": 1}}
    ).encode(),
]
POISONED = (SUPPLIERS, NEEDS, BUYER_GROUPS, MATCHES)


async def _poison(h: Harness) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=h.bootstrap, acks="all")
    await producer.start()
    try:
        for topic in POISONED:
            for body in POISON:
                await producer.send_and_wait(topic, body, key=secrets.token_hex(8).encode())
    finally:
        await producer.stop()
    return None


async def test_poison_messages_on_the_topics(harness: Harness) -> None:
    _needs_reference()
    row = await run_scenario(harness, "poison messages", _poison)
    # Every consumer group of a poisoned topic dead-letters each poison message once.
    assert row["dlq"] >= len(POISON) * len(POISONED), row
    assert_clean(row, dlq=row["dlq"])
