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
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from services.contracts.topics import BUYER_GROUPS, MATCHES, NEEDS, SUPPLIERS
from tests.faults.conftest import RESULT_ROWS
from tests.faults.load import make_plan
from tests.faults.scenario import Fault, Harness, Scenarios, assert_clean

pytestmark = [pytest.mark.faults, pytest.mark.timeout(420)]

# INNOMATCH_FAULTS_SUPPLIERS shrinks the load for a quick try of the harness itself.
PLAN = make_plan(suppliers=int(os.environ.get("INNOMATCH_FAULTS_SUPPLIERS", "1000")))
# Supplier registrations sent when the fault is injected: early in the load, so the rest of
# the load runs through the fault and the recovery.
SCENARIOS = Scenarios(PLAN, fault_at=min(300, len(PLAN.suppliers) * 3 // 10), rows=RESULT_ROWS)
run_scenario = SCENARIOS.run


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def test_reference_run_without_a_fault(harness: Harness) -> None:
    row = await run_scenario(harness, "none (reference)")
    if "INNOMATCH_FAULTS_SUPPLIERS" not in os.environ:  # the full load
        assert row["events"] >= 2000
        assert row["matches"] > 500, "the load should make many matches"
    assert_clean(row)


def _needs_reference() -> None:
    if SCENARIOS.reference is None:
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
