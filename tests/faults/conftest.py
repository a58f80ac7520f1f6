"""The fault suite's stack: a PostgreSQL of its own (so it can be stopped), the broker named by
INNOMATCH_KAFKA_BOOTSTRAP (or a tansu of its own), the four services as processes, and a
webhook receiver that every buyer group and supplier of the load points at.

On an Apache Kafka broker run by `deploy/kafka/kafka.sh` (found through INNOMATCH_KAFKA_HOME)
the suite deletes and recreates the Innomatch topics first: fresh consumer groups read them
from the beginning, and what earlier runs left there would be matched too.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
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
from tests.faults.processes import Cluster, KafkaBroker, PostgresControl, ServiceProcess
from tests.receivers import WebhookReceiver

RESULTS = Path(__file__).parent / "results"
OPERATOR_TOKEN = "fault-suite-operator-token-" + secrets.token_hex(8)
TOPICS = [*ALL_TOPICS, *(dlq(t) for t in ALL_TOPICS)]


@dataclass
class Harness:
    cluster: Cluster
    postgres: PostgresControl
    database_url: str
    bootstrap: str
    kafka: KafkaBroker | None  # set when the suite may stop and start the broker
    receiver: WebhookReceiver
    env: dict[str, str]
    logs: Path

    @property
    def operator(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {OPERATOR_TOKEN}"}

    def service_env(self, name: str, service: str) -> dict[str, str]:
        env = dict(self.env)
        # The name in pg_stat_activity, so a fault can pick one service's connections.
        env["INNOMATCH_DATABASE_URL"] = f"{self.database_url}?application_name=faults-{name}"
        if service == "matcher":
            env["INNOMATCH_MATCHER_INSTANCE"] = f"faults-{name}"
        return env

    def process(self, name: str, service: str) -> ServiceProcess:
        return ServiceProcess(name, service, self.service_env(name, service), self.logs / f"{name}.log")


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
            "INNOMATCH_MODE": "development",
            "INNOMATCH_KAFKA_BOOTSTRAP": bootstrap,
            "INNOMATCH_OPERATOR_TOKEN": OPERATOR_TOKEN,
            "INNOMATCH_KAFKA_FETCH_MAX_WAIT_MS": "20",
            "INNOMATCH_KAFKA_IDEMPOTENT_PRODUCER": str(apache).lower(),
            "INNOMATCH_KAFKA_GROUP_PREFIX": "faults-" + secrets.token_hex(3),
            "INNOMATCH_OUTBOX_POLL_INTERVAL_S": "0.5",
            "INNOMATCH_LAG_POLL_INTERVAL_S": "0.5",
            "INNOMATCH_REGISTRATION_RATE_PER_MINUTE": "0",
            "INNOMATCH_WEBHOOK_ALLOW_PRIVATE": "true",
            # Every pair above the threshold is kept: with a top-K cut, ties between suppliers
            # of one template would be broken by their ids, which differ from run to run.
            "INNOMATCH_MATCHER_TOP_K": "1000",
            # Alerts a killed notifier had claimed go out again when their lease runs out.
            "INNOMATCH_NOTIFIER_LEASE_S": "15",
            "INNOMATCH_LOG_FORMAT": "json",
            "INNOMATCH_LOG_LEVEL": "INFO",
        }
        harness = Harness(Cluster([]), postgres, database_url, bootstrap, kafka, receiver, env, logs)
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


COLUMNS = [
    ("scenario", "scenario", 24),
    ("events", "events", 7),
    ("lost", "lost", 5),
    ("extra", "extra", 6),
    ("stale", "of which on closed needs", 24),
    ("duplicated", "duplicated", 10),
    ("resent", "resent", 7),
    ("dlq", "dlq", 4),
    ("recovery_s", "recovery (s)", 12),
    ("settle_s", "settle (s)", 10),
]


def table(rows: list[dict[str, Any]]) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        return f"{v:.1f}" if isinstance(v, float) else str(v)

    head = "| " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    rule = "| " + " | ".join("---" for _ in COLUMNS) + " |"
    body = ["| " + " | ".join(cell(r.get(key)) for key, _, _ in COLUMNS) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RESULT_ROWS:
        return
    terminalreporter.section("fault injection")
    terminalreporter.write_line(table(RESULT_ROWS))
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    payload = json.dumps({"at": stamp, "rows": RESULT_ROWS}, indent=2)
    (RESULTS / f"faults-{stamp}.json").write_text(payload)
    (RESULTS / "latest.json").write_text(payload)
    terminalreporter.write_line(f"written to {RESULTS / 'latest.json'}")
