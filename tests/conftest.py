"""Session fixtures: one real Kafka-protocol broker and one real PostgreSQL for the run.

Set INNOMATCH_KAFKA_BOOTSTRAP and/or INNOMATCH_DATABASE_URL to use running ones (CI does so
for Apache Kafka); otherwise a tansu broker and an embedded PostgreSQL are started here. Each
run migrates a fresh database of its own, so runs never see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from services.contracts.topics import ALL_TOPICS, dlq
from services.infra.broker import ensure_topics
from services.infra.db import ensure_database, migrate
from services.infra.devstack import Postgres, Tansu, free_port
from services.infra.settings import Settings

OPERATOR_TOKEN = "operator-token-for-the-test-suite-" + secrets.token_hex(8)


@dataclass(frozen=True)
class Stack:
    kafka_bootstrap: str
    database_url: str
    external_kafka: bool

    def settings(self, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "mode": "development",
            "kafka_bootstrap": self.kafka_bootstrap,
            "database_url": self.database_url,
            "operator_token": OPERATOR_TOKEN,
            "kafka_fetch_max_wait_ms": 20,
            "kafka_idempotent_producer": self.external_kafka,
            "outbox_poll_interval_s": 0.5,
            "lag_poll_interval_s": 0.5,
            "dlq_retry_backoff_s": 0.05,
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    def env(self) -> dict[str, str]:
        return {
            "INNOMATCH_MODE": "development",
            "INNOMATCH_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "INNOMATCH_DATABASE_URL": self.database_url,
            "INNOMATCH_OPERATOR_TOKEN": OPERATOR_TOKEN,
            "INNOMATCH_KAFKA_FETCH_MAX_WAIT_MS": "20",
            "INNOMATCH_KAFKA_IDEMPOTENT_PRODUCER": str(self.external_kafka).lower(),
            "INNOMATCH_OUTBOX_POLL_INTERVAL_S": "0.5",
            "INNOMATCH_LAG_POLL_INTERVAL_S": "0.5",
            # The suite registers many suppliers from one address.
            "INNOMATCH_REGISTRATION_RATE_PER_MINUTE": "0",
            "INNOMATCH_WEBHOOK_ALLOW_PRIVATE": "true",
            "INNOMATCH_LOG_FORMAT": "json",
        }


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    kafka = os.environ.get("INNOMATCH_KAFKA_BOOTSTRAP")
    database = os.environ.get("INNOMATCH_DATABASE_URL")
    started: list[Tansu | Postgres] = []
    workdir = Path(tempfile.mkdtemp(prefix="innomatch-test-"))
    try:
        if not database:
            pg = Postgres(workdir / "postgres", free_port())
            pg.start()
            started.append(pg)
            database = pg.url
        if not kafka:
            tansu = Tansu(free_port(), workdir / "tansu.log")
            tansu.start()
            started.append(tansu)
            kafka = tansu.bootstrap
        test_db = _with_database(database, f"innomatch_test_{secrets.token_hex(4)}")
        settings = Settings(mode="development", kafka_bootstrap=kafka, database_url=test_db)
        asyncio.run(ensure_database(test_db))
        asyncio.run(migrate(settings))
        topics = [*ALL_TOPICS, *(dlq(t) for t in ALL_TOPICS)]
        asyncio.run(ensure_topics(kafka, topics, settings.kafka_partitions))
        yield Stack(kafka, test_db, external_kafka="INNOMATCH_KAFKA_BOOTSTRAP" in os.environ)
    finally:
        for server in reversed(started):
            server.stop()


@pytest.fixture
async def db(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(stack.database_url, min_size=1, max_size=4)
    assert pool is not None
    try:
        yield pool
    finally:
        await pool.close()
