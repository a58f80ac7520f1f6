"""Kafka topic names. The version suffix changes only with an incompatible event shape."""

__all__ = ["ALERTS", "ALL_TOPICS", "BUYER_GROUPS", "MATCHES", "NEEDS", "SUPPLIERS", "dlq"]

SUPPLIERS = "innomatch.suppliers.v1"
NEEDS = "innomatch.needs.v1"
BUYER_GROUPS = "innomatch.buyer-groups.v1"
MATCHES = "innomatch.matches.v1"
ALERTS = "innomatch.alerts.v1"

ALL_TOPICS: tuple[str, ...] = (SUPPLIERS, NEEDS, BUYER_GROUPS, MATCHES, ALERTS)


def dlq(topic: str) -> str:
    """The dead-letter topic for messages from topic that could not be processed."""
    return f"{topic}.dlq"
