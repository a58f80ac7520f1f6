"""The notifier's own metrics, on the process registry next to the common ones."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.infra.metrics import LATENCY_BUCKETS, Metrics


class NotifierMetrics:
    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self.service = metrics.service
        self.alerts = Counter(
            "innomatch_notifier_alerts",
            "Alerts by channel (webhook, email, inbox) and outcome (delivered, failed).",
            ["service", "channel", "outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "innomatch_notifier_delivery_latency_seconds",
            "From the match event to the alert delivered, by channel (instant alerts).",
            ["service", "channel"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.retries_pending = Gauge(
            "innomatch_notifier_retries_pending",
            "Deliveries that failed at least once and wait for another try.",
            ["service", "channel"],
            registry=r,
        )
        self.suppressed = Counter(
            "innomatch_notifier_alerts_suppressed",
            "Alerts not sent, by reason (min_score, budget, disabled).",
            ["service", "reason"],
            registry=r,
        )
        self.digest_size = Histogram(
            "innomatch_notifier_digest_size",
            "Alerts in each digest made.",
            ["service"],
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
            registry=r,
        )
        self.alerted_suppliers = Counter(
            "innomatch_notifier_alerted_suppliers",
            "Alerts to buyer groups about a supplier, by each type the supplier counts as.",
            ["service", "supplier_type"],
            registry=r,
        )

    def delivered(self, channel: str, n: int = 1) -> None:
        self.alerts.labels(self.service, channel, "delivered").inc(n)

    def failed(self, channel: str, n: int = 1) -> None:
        self.alerts.labels(self.service, channel, "failed").inc(n)

    def suppress(self, reason: str, n: int = 1) -> None:
        self.suppressed.labels(self.service, reason).inc(n)
