"""The matcher's own metrics, on the process registry next to the common ones."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.infra.metrics import Metrics

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class MatcherMetrics:
    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self.suppliers = Gauge(
            "innomatch_matcher_supplier_profiles",
            "Supplier profiles held by this matcher instance.",
            registry=r,
        )
        self.needs = Gauge(
            "innomatch_matcher_open_needs", "Open needs held by this matcher instance.", registry=r
        )
        self.scoring = Histogram(
            "innomatch_matcher_scoring_duration_seconds",
            "Time to rank a need against all suppliers, or a supplier against all open needs.",
            ["service", "direction"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.scored = Counter(
            "innomatch_matcher_candidates_scored",
            "Need-supplier pairs scored.",
            ["service", "direction"],
            registry=r,
        )
        self.emitted = Counter(
            "innomatch_matcher_matches_emitted",
            "Match events written, by type.",
            ["service", "type"],
            registry=r,
        )
        self.scores = Histogram(
            "innomatch_matcher_match_score",
            "Scores of the matches found or updated.",
            ["service"],
            buckets=(0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
            registry=r,
        )
        self.embedded = Counter(
            "innomatch_matcher_texts_embedded",
            "Texts embedded by this instance, by kind and by who embedded them (the embedder "
            "group, or a matcher consumer that could not wait).",
            ["kind", "by"],
            registry=r,
        )
        self.embedding_latency = Histogram(
            "innomatch_matcher_embedding_duration_seconds",
            "Time to embed one text (a supplier's includes its sentences).",
            ["kind"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
