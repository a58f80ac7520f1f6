"""Prometheus metrics shared by every service, all named `innomatch_*`.

Each process has one registry; FastStream's Kafka middleware and the service's own metrics
are registered on it, and `/metrics` renders it. A service served by several processes (the
forum's workers) runs prometheus-client's multiprocess mode: each process writes its values
to files under PROMETHEUS_MULTIPROC_DIR and `/metrics` adds them up (`exposition`); a gauge
says how (`multiprocess_mode`: readiness is the lowest of the live processes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Metrics:
    service: str
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.http_requests = Counter(
            "innomatch_http_requests",
            "HTTP requests served, by route template and status code.",
            ["service", "method", "route", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "innomatch_http_request_duration_seconds",
            "HTTP request latency.",
            ["service", "method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.events_consumed = Counter(
            "innomatch_events_consumed",
            "Events handled by a consumer, by topic, type and outcome (processed, duplicate, dlq).",
            ["service", "topic", "type", "outcome"],
            registry=r,
        )
        self.events_published = Counter(
            "innomatch_events_published",
            "Events published by the outbox relay and confirmed by the broker.",
            ["service", "topic", "type"],
            registry=r,
        )
        self.publish_failures = Counter(
            "innomatch_outbox_publish_failures",
            "Outbox batches the broker did not confirm (the rows stay and are published again).",
            ["service"],
            registry=r,
        )
        self.events_dlq = Counter(
            "innomatch_events_dlq",
            "Messages sent to a dead-letter topic, by source topic and reason.",
            ["service", "topic", "reason"],
            registry=r,
        )
        self.transient_failures = Counter(
            "innomatch_consumer_transient_failures",
            "Attempts at a consumed batch (or a DLQ write) that failed for a transient reason "
            "(database or broker away, timeout, conflict) and are tried again; never a DLQ.",
            ["service", "topic", "reason"],
            registry=r,
        )
        self.handler_latency = Histogram(
            "innomatch_handler_duration_seconds",
            "Time to apply one batch of consumed events in its database transaction.",
            ["service", "topic"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.outbox_backlog = Gauge(
            "innomatch_outbox_backlog",
            "Events written to the outbox and not yet confirmed by the broker.",
            ["service"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.outbox_oldest_age = Gauge(
            "innomatch_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox event (0 when empty).",
            ["service"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.consumer_lag = Gauge(
            "innomatch_consumer_lag",
            "Messages on a partition not yet committed by this service's consumer group.",
            ["service", "group", "topic", "partition"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.ready = Gauge(
            "innomatch_ready",
            "1 when the service's database and broker answer and no consumer waits on an outage.",
            ["service"],
            registry=r,
            multiprocess_mode="livemin",
        )


def exposition(registry: CollectorRegistry) -> bytes:
    """The text `/metrics` answers: this process's registry, or, when several processes serve
    the service (PROMETHEUS_MULTIPROC_DIR is set), what all of them wrote."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
        return generate_latest(combined)
    return generate_latest(registry)
