import yaml

from services.contracts import topics
from services.contracts.asyncapi import DOCUMENT_PATH, render_asyncapi_yaml


def test_committed_document_is_current() -> None:
    committed = DOCUMENT_PATH.read_text(encoding="utf-8") if DOCUMENT_PATH.exists() else ""
    assert committed == render_asyncapi_yaml(), (
        "docs/asyncapi.yaml is stale: run `uv run python -m services.contracts.asyncapi`"
    )


def test_rendering_is_deterministic() -> None:
    assert render_asyncapi_yaml() == render_asyncapi_yaml()


def test_document_declares_every_topic_and_its_dead_letters() -> None:
    document = yaml.safe_load(render_asyncapi_yaml())
    assert document["asyncapi"].startswith("3.")
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == set(topics.ALL_TOPICS) | {topics.dlq(t) for t in topics.ALL_TOPICS}
    schemas = document["components"]["schemas"]
    payload = schemas["innomatch.needs.v1:Message:Payload"]
    assert payload["discriminator"] == "type"
    assert {ref["$ref"].rsplit("/", 1)[1] for ref in payload["oneOf"]} == {
        "NeedPublished",
        "NeedUpdated",
        "NeedClosed",
    }
