"""Composition root of the matcher service."""

from __future__ import annotations

import socket

from fastapi import FastAPI

from services.contracts.topics import NEEDS, SUPPLIERS
from services.infra.http import create_service_app
from services.infra.runtime import Runtime
from services.infra.settings import Settings
from services.matcher import repository, semantic
from services.matcher.api import router
from services.matcher.embeddings import Embedder, Vectors
from services.matcher.engine import MatchEngine
from services.matcher.handlers import Matcher
from services.matcher.metrics import MatcherMetrics
from services.matcher.ownership import NeedPartitions


def create_app(settings: Settings) -> FastAPI:
    runtime = Runtime("matcher", settings)
    engine = MatchEngine(
        threshold=settings.matcher_threshold,
        top_k=settings.matcher_top_k,
        partitions=settings.kafka_partitions,
    )
    metrics = MatcherMetrics(runtime.metrics)
    vectors = Vectors(semantic.Model(), metrics, wait_s=settings.matcher_embed_wait_s)
    matcher = Matcher(engine, metrics, vectors, owned=frozenset())
    # Stable across restarts, so a restarted instance resumes its consumer groups instead of
    # reading the topics again; two instances on one host must be given names.
    instance = settings.matcher_instance or socket.gethostname()
    replica = f"matcher-{instance}"
    # Every instance: all suppliers and all needs, in groups of its own (one per topic, so
    # that joining one does not rebalance the other).
    group = f"{settings.kafka_group_prefix}-{replica}"
    # `restore`: memory takes back the database's state of what an event sent to the DLQ was
    # about.
    runtime.consume(
        SUPPLIERS,
        batch_handler=matcher.on_supplier_events,
        consumer=replica,
        group_id=f"{group}-suppliers",
        restore=matcher.restore,
    )
    runtime.consume(
        NEEDS,
        batch_handler=matcher.on_need_replica,
        consumer=replica,
        group_id=f"{group}-needs",
        restore=matcher.restore,
    )

    # One instance per need: the shared group splits the needs' partitions, and the owner of a
    # need's partition also scores the changed suppliers against it.
    async def settle(owned: frozenset[int]) -> None:
        async with runtime.pool.acquire() as conn, conn.transaction():
            await matcher.settle(conn, owned)

    runtime.consume(
        NEEDS,
        batch_handler=matcher.on_need_events,
        listener=NeedPartitions(NEEDS, matcher.own, settle),
        restore=matcher.restore,
    )
    # Embedding, the costly part, is split between the instances by partition too.
    embedder = Embedder(vectors)
    embedders = f"{settings.kafka_group_prefix}-matcher-embedder"
    for topic in (SUPPLIERS, NEEDS):
        runtime.consume(
            topic,
            batch_handler=embedder.on_events,
            consumer="matcher-embedder",
            group_id=f"{embedders}-{topic}",
        )

    async def load_replicas() -> None:
        async with runtime.pool.acquire() as conn:
            async for chunk in repository.supplier_chunks(conn):
                matcher.load_suppliers(
                    chunk, await repository.text_vectors(conn, "suppliers", [s.id for s in chunk])
                )
            needs = await repository.load_open_needs(conn)
            matcher.load(
                needs,
                await repository.need_cuts(conn, settings.matcher_top_k),
                await repository.text_vectors(conn, "needs", [n.id for n in needs]),
            )

    runtime.before_consuming.append(load_replicas)

    app = create_service_app(
        runtime,
        title="Innomatch matcher",
        description="Pairs suppliers with needs, with a score and an explanation.",
        routers=[router],
    )
    app.state.engine = engine
    return app
