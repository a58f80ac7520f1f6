"""The fault suite's stack: a PostgreSQL of its own (so it can be stopped), the broker named by
INNOMATCH_KAFKA_BOOTSTRAP (or a tansu of its own), the four services as processes, and a
webhook receiver that every buyer group and supplier of the load points at.

On an Apache Kafka broker run by `deploy/kafka/kafka.sh` (found through INNOMATCH_KAFKA_HOME)
the suite deletes and recreates the Innomatch topics first: fresh consumer groups read them
from the beginning, and what earlier runs left there would be matched too.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from services.contracts.topics import ALL_TOPICS, dlq
from services.infra.broker import ensure_topics
from services.infra.db import ensure_database, migrate
from services.infra.devstack import Tansu, free_port
from services.infra.settings import SERVICES, Settings
from tests.faults.load import SECRET
from tests.faults.processes import Cluster, KafkaBroker, PostgresControl
from tests.faults.scenario import Harness, suite_env, write_results
from tests.receivers import WebhookReceiver

RESULTS = Path(__file__).parent / "results"
OPERATOR_TOKEN = "fault-suite-operator-token-" + secrets.token_hex(8)
TOPICS = [*ALL_TOPICS, *(dlq(t) for t in ALL_TOPICS)]


RESULT_ROWS: list[dict[str, Any]] = []


async def _fresh_topics(bootstrap: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="fault-suite")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [t for t in TOPICS if t in existing]
        if doomed:
            await admin.delete_topics(doomed)
        deadline = time.monotonic() + 60
        while set(await admin.list_topics()) & set(doomed):
            assert time.monotonic() < deadline, "the old topics were not deleted within 60 s"
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
    deadline = time.monotonic() + 60
    while True:  # Kafka may refuse a name for a moment after deleting it
        try:
            await ensure_topics(bootstrap, TOPICS, partitions)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    logs = RESULTS / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    workdir = Path(tempfile.mkdtemp(prefix="innomatch-faults-"))
    postgres = PostgresControl(workdir / "postgres")
    tansu: Tansu | None = None
    cluster: Cluster | None = None
    receiver = WebhookReceiver(SECRET).start()
    try:
        postgres.start()
        database_url = postgres.server.database_url("innomatch_faults")
        bootstrap = os.environ.get("INNOMATCH_KAFKA_BOOTSTRAP", "")
        if not bootstrap:
            tansu = Tansu(free_port(), logs / "tansu.log")
            tansu.start()
            bootstrap = tansu.bootstrap
        kafka = KafkaBroker.find(bootstrap)
        settings = Settings(mode="development", kafka_bootstrap=bootstrap, database_url=database_url)
        asyncio.run(ensure_database(database_url))
        asyncio.run(migrate(settings))
        if kafka is not None:
            asyncio.run(_fresh_topics(bootstrap, settings.kafka_partitions))
        else:
            asyncio.run(ensure_topics(bootstrap, TOPICS, settings.kafka_partitions))
        apache = kafka is not None
        env = {
            **os.environ,
            **suite_env(OPERATOR_TOKEN, "faults-" + secrets.token_hex(3)),
            "INNOMATCH_KAFKA_BOOTSTRAP": bootstrap,
            "INNOMATCH_KAFKA_IDEMPOTENT_PRODUCER": str(apache).lower(),
        }
        harness = Harness(
            Cluster([]), postgres, database_url, bootstrap, kafka, receiver, env, logs, OPERATOR_TOKEN
        )
        cluster = harness.cluster
        for service in SERVICES:
            cluster.add(harness.process(service, service))
        cluster.start(timeout=240)
        yield harness
    finally:
        if cluster is not None:
            cluster.stop()
        receiver.stop()
        postgres.stop()
        if tansu is not None:
            tansu.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    write_results(terminalreporter, "fault injection", RESULTS, "faults", RESULT_ROWS)
