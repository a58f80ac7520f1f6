"""Kafka topic names. The version suffix changes only with an incompatible event shape."""

__all__ = [
    "ALERTS",
    "ALL_TOPICS",
    "BUYER_GROUPS",
    "DIALOGUES",
    "MATCHES",
    "NEEDS",
    "SUPPLIERS",
    "dlq",
    "topic_of",
]

SUPPLIERS = "innomatch.suppliers.v1"
NEEDS = "innomatch.needs.v1"
BUYER_GROUPS = "innomatch.buyer-groups.v1"
MATCHES = "innomatch.matches.v1"
ALERTS = "innomatch.alerts.v1"
DIALOGUES = "innomatch.dialogues.v1"

ALL_TOPICS: tuple[str, ...] = (SUPPLIERS, NEEDS, BUYER_GROUPS, MATCHES, ALERTS, DIALOGUES)


def dlq(topic: str) -> str:
    """The dead-letter topic for messages from topic that could not be processed."""
    return f"{topic}.dlq"


# The topic of each aggregate, by the first part of its event types ("need.published").
_BY_AGGREGATE = {
    "supplier": SUPPLIERS,
    "need": NEEDS,
    "buyer_group": BUYER_GROUPS,
    "match": MATCHES,
    "alert": ALERTS,
    "dialogue": DIALOGUES,
}


def topic_of(event_type: str) -> str:
    """The topic events of this type go to: `topic_of("need.closed") == NEEDS`."""
    aggregate = event_type.partition(".")[0]
    try:
        return _BY_AGGREGATE[aggregate]
    except KeyError:
        raise ValueError(f"no topic for events of type {event_type!r}") from None
