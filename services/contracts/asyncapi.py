"""The AsyncAPI document of the Innomatch topics, rendered from the event models.

`uv run python -m services.contracts.asyncapi` rewrites docs/asyncapi.yaml; a unit test
fails when the committed file no longer matches the models.
"""

import sys
from pathlib import Path
from typing import Any

import yaml
from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from services.contracts import topics
from services.contracts.events import (
    AlertEvent,
    BuyerGroupEvent,
    DialogueEvent,
    MatchEvent,
    NeedEvent,
    SupplierEvent,
)

__all__ = ["DOCUMENT_PATH", "build_app", "render_asyncapi_yaml"]

DOCUMENT_PATH = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"

_DESCRIPTION = """\
Events between the Innomatch services. Every message is a CloudEvents 1.0 event in \
structured JSON form whose `data` is the full current state of one aggregate, so a \
consumer can rebuild its view from the topic. The Kafka key is the event's `subject`. \
Consumers deduplicate on the event `id`; match and alert ids are derived from what they \
are about, so reprocessing never yields a second match or alert. All topics are internal: \
supplier and buyer-group events carry webhook secrets."""

_TOPICS: list[tuple[str, Any, str]] = [
    (
        topics.SUPPLIERS,
        SupplierEvent,
        "Supplier profiles, keyed by supplier id. supplier.removed carries no personal "
        "data: consumers must forget the supplier.",
    ),
    (
        topics.NEEDS,
        NeedEvent,
        "Needs published by buyer groups, keyed by need id.",
    ),
    (
        topics.BUYER_GROUPS,
        BuyerGroupEvent,
        "Buyer groups (members and alert settings), keyed by buyer group id. Carries webhook "
        "secrets: the notifier signs alerts with them.",
    ),
    (
        topics.MATCHES,
        MatchEvent,
        "Scored need-supplier pairs with their explanation, keyed by need id. The match id "
        "is derived from the need and supplier ids.",
    ),
    (
        topics.ALERTS,
        AlertEvent,
        "Audit trail of alert deliveries, keyed by recipient principal.",
    ),
    (
        topics.DIALOGUES,
        DialogueEvent,
        "Market dialogues about needs, keyed by dialogue id: opened, a supplier invited, a "
        "question answered (for every participant; the asker is never named), closed.",
    ),
]


def build_app() -> FastStream:
    """A FastStream app declaring every topic; it is never connected."""
    broker = KafkaBroker(
        "localhost:9092",
        description="A local broker; services are pointed at theirs with INNOMATCH_KAFKA_BOOTSTRAP.",
    )
    for topic, schema, description in _TOPICS:
        broker.publisher(topic, title=topic, schema=schema, description=description)
        broker.publisher(
            topics.dlq(topic),
            title=topics.dlq(topic),
            schema=schema,
            description=f"Messages from {topic} that a consumer could not process, "
            "with the same key and body (which may not match the schema: that is why "
            "they are here) and the error in the headers.",
        )
    return FastStream(
        broker,
        specification=AsyncAPI(title="Innomatch events", version="1", description=_DESCRIPTION),
    )


def render_asyncapi_yaml() -> str:
    """The AsyncAPI document as YAML; the same models always give the same text."""
    document = build_app().schema.to_specification().to_jsonable()
    return yaml.safe_dump(document, sort_keys=True, allow_unicode=True, width=100)


def main(argv: list[str]) -> None:
    path = Path(argv[0]) if argv else DOCUMENT_PATH
    path.write_text(render_asyncapi_yaml(), encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
