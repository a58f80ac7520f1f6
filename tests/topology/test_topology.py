"""The production topology under faults: three Apache Kafka nodes (replication 3, min ISR 2,
idempotent producers) and two replicas of every service, as `deploy/local` runs them.

The fault suite's load goes through the whole pipeline twice, spread over both replicas of
each service: once without a fault, as the reference, and once while one Kafka node and one
replica of each service are killed (`kill -9`) and started again. The second run must end
with the reference's matches and alerts, each exactly once; afterwards every topic is read
back, and each aggregate's versions must never go down within a partition.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time

import pytest

from services.contracts.topics import MATCHES, NEEDS, SUPPLIERS
from tests.faults.load import make_plan
from tests.faults.observe import read_order
from tests.faults.scenario import Fault, Harness, Scenarios, assert_clean
from tests.topology.conftest import ORDER, RESULT_ROWS, Topology

pytestmark = [pytest.mark.topology, pytest.mark.timeout(420)]

# INNOMATCH_TOPOLOGY_SUPPLIERS sizes the load (two runs of it must fit CI's time budget).
PLAN = make_plan(needs=40, suppliers=int(os.environ.get("INNOMATCH_TOPOLOGY_SUPPLIERS", "400")))
SCENARIOS = Scenarios(PLAN, fault_at=len(PLAN.suppliers) * 3 // 10, rows=RESULT_ROWS)
KILLED_NODE = 2
KILLED_REPLICAS = ["suppliers-1", "needs-1", "matcher-1", "notifier-1"]
ORDERED_TOPICS = [SUPPLIERS, NEEDS, MATCHES]


async def test_reference_run_on_the_topology(topology: Topology) -> None:
    assert len(topology.stack.kafka.nodes) == 3
    assert len(topology.harness.cluster.processes) == 8
    assert_clean(await SCENARIOS.run(topology.harness, "reference (no fault)"))


def _fault(topology: Topology) -> Fault:
    stack = topology.stack

    async def fault(h: Harness) -> float:
        """Kill a Kafka node, then one replica of each service; 3 s later start them all again;
        the seconds from that start until every process is ready and every partition has its
        three replicas in sync again."""
        await asyncio.to_thread(stack.kafka.kill, KILLED_NODE)
        await asyncio.sleep(2)
        for name in KILLED_REPLICAS:
            await asyncio.to_thread(h.cluster[name].kill)
        await asyncio.sleep(3)
        began = time.monotonic()
        stack.kafka.start_node(KILLED_NODE)
        for name in KILLED_REPLICAS:
            h.cluster[name].start()
        await asyncio.to_thread(stack.kafka.wait_brokers, [KILLED_NODE], 120)
        await asyncio.to_thread(h.cluster.wait_ready, KILLED_REPLICAS, 180)
        await stack.kafka.wait_in_sync(ORDERED_TOPICS, 120)
        return time.monotonic() - began

    return fault


async def test_kafka_node_and_one_replica_of_each_service_killed(topology: Topology) -> None:
    if SCENARIOS.reference is None:
        pytest.skip("the reference run did not finish")
    name = f"kill -9 kafka node {KILLED_NODE} + {len(KILLED_REPLICAS)} replicas"
    assert_clean(await SCENARIOS.run(topology.harness, name, _fault(topology)))


async def test_per_aggregate_order_on_every_topic(topology: Topology) -> None:
    found = await read_order(topology.stack.kafka.bootstrap, ORDERED_TOPICS)
    ORDER.update({topic: dataclasses.asdict(order) for topic, order in found.items()})
    for topic, order in found.items():
        assert order.records > 0, topic
        assert order.reversals == [], f"{topic}: {order.reversals[:10]}"
