"""The topology test's stack: `deploy/local`'s LocalStack (three Apache Kafka nodes, PostgreSQL,
two replicas of every service) on free ports, without Prometheus, and the fault suite's
webhook receiver that every buyer group and supplier of the load points at."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deploy.local.stack import Layout, LocalStack
from tests.faults.load import SECRET
from tests.faults.scenario import COLUMNS, Harness, suite_env, write_results
from tests.receivers import WebhookReceiver

RESULTS = Path(__file__).parent / "results"
OPERATOR_TOKEN = "topology-operator-token-" + secrets.token_hex(8)
RESULT_ROWS: list[dict[str, Any]] = []
ORDER: dict[str, dict[str, Any]] = {}  # topic -> what reading it back found

TOPOLOGY_COLUMNS = [
    *COLUMNS[:2],
    ("events_per_s", "events/s", 8),
    ("recovery_s", "recovery (s)", 12),
    *(c for c in COLUMNS[2:] if c[0] != "recovery_s"),
]


@dataclass
class Topology:
    stack: LocalStack
    harness: Harness


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    logs = RESULTS / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    workdir = Path(tempfile.mkdtemp(prefix="innomatch-topology-"))
    env = suite_env(OPERATOR_TOKEN, "topology-" + secrets.token_hex(3))
    stack = LocalStack(workdir, Layout.free(), env=env, prometheus=False, logs=logs)
    receiver = WebhookReceiver(SECRET).start()
    try:
        stack.start(fresh=True)
        harness = Harness(
            stack.services,
            stack.postgres,
            stack.database_url,
            stack.kafka.bootstrap,
            None,
            receiver,
            stack.base_env(),
            logs,
            OPERATOR_TOKEN,
        )
        yield Topology(stack, harness)
    finally:
        stack.stop()
        receiver.stop()
        for node in stack.kafka.nodes.values():
            if node.log_path.exists():
                shutil.copy(node.log_path, logs / f"kafka-{node.node_id}.log")
        shutil.rmtree(workdir, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    write_results(
        terminalreporter,
        "replicated topology",
        RESULTS,
        "topology",
        RESULT_ROWS,
        TOPOLOGY_COLUMNS,
        order=ORDER,
    )
    if ORDER:
        for topic, found in ORDER.items():
            terminalreporter.write_line(
                f"{topic}: {found['records']} records, {found['aggregates']} aggregates, "
                f"{len(found['reversals'])} version reversals, {found['republished']} republished"
            )
