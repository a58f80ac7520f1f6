import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from services.contracts import topics
from services.contracts.events import (
    EVENT_TYPES,
    TOPIC_EVENTS,
    AlertDelivered,
    AlertFailed,
    AlertSettings,
    AlertState,
    AnsweredQuestion,
    BuyerGroupCreated,
    BuyerGroupState,
    BuyerGroupUpdated,
    Capabilities,
    CloudEvent,
    DialogueAnswer,
    DialogueClosed,
    DialogueInvitation,
    DialogueOpened,
    DialogueParticipation,
    DialogueQuestionAnswered,
    DialogueState,
    DialogueSupplierAnswered,
    DialogueSupplierInvited,
    MatchExplanation,
    MatchFound,
    MatchJudged,
    MatchState,
    MatchUpdated,
    MatchWithdrawn,
    NeedClosed,
    NeedPublished,
    NeedState,
    NeedUpdated,
    SharedCpv,
    SupplierRegistered,
    SupplierRemoved,
    SupplierRemovedState,
    SupplierState,
    SupplierUpdated,
    alert_id,
    match_id,
    new_event,
    parse_event,
    topic_for,
)

NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
SUPPLIER_ID = "6f1c0a52-3f3e-4a8e-9a57-0d6f3b1f2a10"
NEED_ID = "c2a4f5d6-1b7e-4c3a-8e2d-5f6a7b8c9d01"
GROUP_ID = "0b6f5c1e-8d5a-4a57-9f0c-1f2d3e4a5b6c"


def supplier_state(**changes: Any) -> SupplierState:
    fields: dict[str, Any] = {
        "id": SUPPLIER_ID,
        "org_number": "556036-0793",
        "name": "Laddbolaget AB",
        "size": "small",
        "company_type": "industrial",
        "founded_year": 2021,
        "contact_email": "kontakt@laddbolaget.se",
        "capabilities": Capabilities(
            cpv_codes=["31158000-8", "44144000"],
            focus_areas=["transport"],
            keywords=["laddstolpar", "elbilar"],
            description="Laddinfrastruktur för kommuner.",
            regions=["SE110", "SE12"],
            trl=7,
        ),
        "alerts": AlertSettings(
            webhook_url="https://laddbolaget.se/hooks/innomatch",
            webhook_secret="s3cret-s3cret-s3cret",
            email="kontakt@laddbolaget.se",
            language="sv",
            mode="daily",
            min_score=0.6,
        ),
        "version": 1,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return SupplierState.model_validate(fields | changes)


def need_state(**changes: Any) -> NeedState:
    fields: dict[str, Any] = {
        "id": NEED_ID,
        "buyer_group_id": GROUP_ID,
        "title": "Laddning av kommunala fordon",
        "description": "Vi söker laddlösningar för hemtjänstens bilar.",
        "cpv_codes": ["31158000"],
        "focus_area": "transport",
        "regions": ["SE1"],
        "min_trl": 6,
        "preferred_supplier_types": ["sme", "startup"],
        "procedure": "market_dialogue",
        "respond_by": date(2025, 5, 1),
        "budget_sek": 2_000_000,
        "status": "open",
        "cosigners": ["g2"],
        "authority_levels": ["local", "regional"],
        "version": 1,
        "published_at": NOW,
        "updated_at": NOW,
    }
    return NeedState.model_validate(fields | changes)


def group_state(**changes: Any) -> BuyerGroupState:
    fields: dict[str, Any] = {
        "id": GROUP_ID,
        "name": "Elektrifierade transporter",
        "focus_area": "transport",
        "member_authority_ids": ["a1", "a2"],
        "authority_levels": ["local", "regional"],
        "alerts": AlertSettings(email="samordnare@region.se", mode="daily"),
        "version": 1,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return BuyerGroupState.model_validate(fields | changes)


def match_state(**changes: Any) -> MatchState:
    fields: dict[str, Any] = {
        "id": match_id(NEED_ID, SUPPLIER_ID),
        "need_id": NEED_ID,
        "supplier_id": SUPPLIER_ID,
        "score": 0.82,
        "version": 1,
        "status": "active",
        "explanation": MatchExplanation(
            components={"cpv": 0.5, "text": 0.22, "region": 0.1},
            shared_cpv=[SharedCpv(code="31158000", label_sv="Laddningsanordningar", label_en="Chargers")],
            matched_terms=["laddning"],
            region_verdict="SE110 lies within SE1",
            trl_verdict="7 meets 6",
        ),
        "updated_at": NOW,
    }
    return MatchState.model_validate(fields | changes)


def alert_state(**changes: Any) -> AlertState:
    recipient = f"buyer_group:{GROUP_ID}"
    the_match = match_id(NEED_ID, SUPPLIER_ID)
    fields: dict[str, Any] = {
        "id": alert_id(recipient, the_match, "webhook"),
        "recipient": recipient,
        "match_id": the_match,
        "match_version": 1,
        "channel": "webhook",
        "outcome": "delivered",
        "attempts": 1,
        "error": None,
        "at": NOW,
    }
    return AlertState.model_validate(fields | changes)


def removed_state() -> SupplierRemovedState:
    return SupplierRemovedState(id=SUPPLIER_ID, version=3, removed_at=NOW)


DIALOGUE_ID = "9d1e2f3a-4b5c-4d6e-8f70-112233445566"


def dialogue_state(**changes: Any) -> DialogueState:
    fields: dict[str, Any] = {
        "id": DIALOGUE_ID,
        "need_id": NEED_ID,
        "buyer_group_ids": [GROUP_ID],
        "title": "Marknadsdialog om snabbladdning",
        "agenda": "Behovet, era frågor",
        "open_to_all": False,
        "closes_at": NOW + timedelta(days=14),
        "status": "open",
        "invited_supplier_ids": [SUPPLIER_ID],
        "version": 1,
        "opened_at": NOW,
        "updated_at": NOW,
    }
    return DialogueState.model_validate(fields | changes)


def invitation() -> DialogueInvitation:
    return DialogueInvitation(dialogue_id=DIALOGUE_ID, supplier_id=SUPPLIER_ID, dialogue=dialogue_state())


def participation() -> DialogueParticipation:
    return DialogueParticipation(
        dialogue_id=DIALOGUE_ID,
        supplier_id=SUPPLIER_ID,
        at=datetime(2026, 11, 23, 12, tzinfo=UTC),
        dialogue=dialogue_state(),
    )


def answer() -> DialogueAnswer:
    question = AnsweredQuestion(
        id="q1", question="Kan laddarna delas?", answer="Ja.", asked_at=NOW, answered_at=NOW
    )
    return DialogueAnswer(dialogue_id=DIALOGUE_ID, question=question, dialogue=dialogue_state(version=2))


EXAMPLES: list[tuple[type[CloudEvent[Any]], BaseModel]] = [
    (SupplierRegistered, supplier_state()),
    (SupplierUpdated, supplier_state(version=2)),
    (SupplierRemoved, removed_state()),
    (NeedPublished, need_state()),
    (NeedUpdated, need_state(version=2)),
    (NeedClosed, need_state(version=3, status="closed", closed_reason="Avslutad dialog")),
    (BuyerGroupCreated, group_state()),
    (BuyerGroupUpdated, group_state(version=2, member_authority_ids=["a1"])),
    (MatchFound, match_state()),
    (MatchUpdated, match_state(version=2, score=0.9)),
    (MatchWithdrawn, match_state(version=3, status="withdrawn")),
    (MatchJudged, match_state(version=4, verdict="not_relevant", verdict_reason="Fel region")),
    (AlertDelivered, alert_state()),
    (AlertFailed, alert_state(outcome="failed", attempts=5, error="HTTP 503")),
    (DialogueOpened, dialogue_state()),
    (DialogueSupplierInvited, invitation()),
    (DialogueQuestionAnswered, answer()),
    (DialogueSupplierAnswered, participation()),
    (DialogueClosed, dialogue_state(version=3, status="closed")),
]


def example(cls: type[CloudEvent[Any]]) -> CloudEvent[Any]:
    data = dict(EXAMPLES)[cls]
    return new_event(cls, source="/innomatch/test", data=data)


def body(event: BaseModel) -> dict[str, Any]:
    return dict(json.loads(event.model_dump_json()))


@pytest.mark.parametrize(("cls", "data"), EXAMPLES, ids=lambda value: getattr(value, "__name__", ""))
def test_round_trip_through_parse_event(cls: type[CloudEvent[Any]], data: BaseModel) -> None:
    event = new_event(cls, source="/innomatch/test", data=data)
    parsed = parse_event(topic_for(cls), event.model_dump_json().encode())
    assert type(parsed) is cls
    assert parsed == event
    assert parsed.model_dump_json() == event.model_dump_json()


def test_every_type_has_an_example_and_a_topic() -> None:
    assert {cls for cls, _ in EXAMPLES} == {cls for c in TOPIC_EVENTS.values() for cls in c}
    assert set(TOPIC_EVENTS) == set(topics.ALL_TOPICS)
    assert sorted(EVENT_TYPES) == [
        "alert.delivered",
        "alert.failed",
        "buyer_group.created",
        "buyer_group.updated",
        "dialogue.closed",
        "dialogue.opened",
        "dialogue.question_answered",
        "dialogue.supplier_answered",
        "dialogue.supplier_invited",
        "match.found",
        "match.judged",
        "match.updated",
        "match.withdrawn",
        "need.closed",
        "need.published",
        "need.updated",
        "supplier.registered",
        "supplier.removed",
        "supplier.updated",
    ]


def test_dialogue_events_are_keyed_by_the_dialogue_and_never_name_an_asker() -> None:
    for cls in (
        DialogueOpened,
        DialogueSupplierInvited,
        DialogueQuestionAnswered,
        DialogueSupplierAnswered,
        DialogueClosed,
    ):
        assert example(cls).subject == DIALOGUE_ID
        assert topic_for(cls) == topics.DIALOGUES
    assert "asked_by" not in json.dumps(DialogueQuestionAnswered.model_json_schema())
    # Who answered a dialogue says neither how nor what it asked.
    assert set(DialogueParticipation.model_fields) == {"dialogue_id", "supplier_id", "at", "dialogue"}
    with pytest.raises(ValidationError, match=r"dialogue_id must be dialogue\.id"):
        DialogueInvitation(dialogue_id="other", supplier_id=SUPPLIER_ID, dialogue=dialogue_state())
    with pytest.raises(ValidationError, match=r"data\.status = closed"):
        new_event(DialogueClosed, source="/t", data=dialogue_state())


def test_cloudevents_attributes() -> None:
    event = example(SupplierRegistered)
    sent = body(event)
    assert list(sent) == [
        "id",
        "source",
        "type",
        "specversion",
        "time",
        "subject",
        "datacontenttype",
        "data",
    ]
    assert sent["type"] == "supplier.registered"
    assert sent["specversion"] == "1.0"
    assert sent["datacontenttype"] == "application/json"
    assert sent["subject"] == SUPPLIER_ID
    assert sent["time"].endswith("Z")
    uuid.UUID(sent["id"])


def test_new_event_defaults() -> None:
    before = datetime.now(UTC)
    event = new_event(NeedPublished, source="/innomatch/needs", data=need_state())
    assert event.type == "need.published"
    assert event.subject == NEED_ID
    assert before <= event.time <= datetime.now(UTC)
    assert event.time.tzinfo is not None
    assert uuid.UUID(event.id).version == 4
    assert new_event(NeedPublished, source="s", data=need_state()).id != event.id


def test_new_event_takes_a_deterministic_id_and_time() -> None:
    event = new_event(MatchFound, source="/innomatch/matcher", data=match_state(), id="m-1-v1", time=NOW)
    assert (event.id, event.time, event.subject) == ("m-1-v1", NOW, NEED_ID)


def test_subjects_are_the_kafka_keys() -> None:
    assert example(SupplierRemoved).subject == SUPPLIER_ID
    assert example(NeedClosed).subject == NEED_ID
    assert example(MatchWithdrawn).subject == NEED_ID
    assert example(AlertFailed).subject == f"buyer_group:{GROUP_ID}"


def test_subject_must_match_the_data() -> None:
    with pytest.raises(ValidationError, match=r"subject must be data\.id"):
        new_event(SupplierUpdated, source="s", data=supplier_state(), subject="someone-else")


def test_discriminator_picks_the_class() -> None:
    sent = body(example(SupplierUpdated))
    assert type(parse_event(topics.SUPPLIERS, json.dumps(sent))) is SupplierUpdated
    sent["type"] = "supplier.registered"
    assert type(parse_event(topics.SUPPLIERS, json.dumps(sent))) is SupplierRegistered


def test_unknown_type_is_rejected() -> None:
    sent = body(example(SupplierUpdated))
    sent["type"] = "supplier.renamed"
    with pytest.raises(ValidationError) as caught:
        parse_event(topics.SUPPLIERS, json.dumps(sent))
    assert caught.value.errors()[0]["type"] == "union_tag_invalid"


def test_event_on_the_wrong_topic_is_rejected() -> None:
    with pytest.raises(ValidationError):
        parse_event(topics.SUPPLIERS, example(NeedPublished).model_dump_json())


def test_unknown_topic_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not an Innomatch event topic") as caught:
        parse_event("innomatch.other.v1", b"{}")
    assert not isinstance(caught.value, ValidationError)


@pytest.mark.parametrize("junk", [b"", b"not json", b"[]", b"{}", b'{"type": "need.published"}'])
def test_junk_is_a_validation_error(junk: bytes) -> None:
    with pytest.raises(ValidationError):
        parse_event(topics.NEEDS, junk)


def test_extra_fields_are_rejected() -> None:
    sent = body(example(NeedPublished))
    sent["priority"] = "high"
    with pytest.raises(ValidationError, match="priority"):
        parse_event(topics.NEEDS, json.dumps(sent))

    sent = body(example(NeedPublished))
    sent["data"]["owner_email"] = "someone@example.se"
    with pytest.raises(ValidationError, match="owner_email"):
        parse_event(topics.NEEDS, json.dumps(sent))


def test_type_must_agree_with_the_state() -> None:
    with pytest.raises(ValidationError, match=r"data\.status = closed"):
        new_event(NeedClosed, source="s", data=need_state())
    with pytest.raises(ValidationError, match=r"data\.status = withdrawn"):
        new_event(MatchWithdrawn, source="s", data=match_state())
    with pytest.raises(ValidationError, match=r"data\.outcome = failed"):
        new_event(AlertFailed, source="s", data=alert_state())


def test_time_must_be_aware_and_is_kept_in_utc() -> None:
    sent = body(example(MatchFound))
    sent["time"] = "2025-03-14T10:30:00+01:00"
    event = parse_event(topics.MATCHES, json.dumps(sent))
    assert event.time == NOW
    assert event.time.utcoffset() == timedelta(0)
    assert body(event)["time"] == "2025-03-14T09:30:00Z"

    sent["time"] = "2025-03-14T10:30:00"
    with pytest.raises(ValidationError, match="timezone"):
        parse_event(topics.MATCHES, json.dumps(sent))


def test_removed_supplier_carries_no_personal_data() -> None:
    assert set(SupplierRemovedState.model_fields) == {"id", "version", "removed_at"}
    sent = body(example(SupplierRemoved))
    assert set(sent["data"]) == {"id", "version", "removed_at"}
    text = json.dumps(sent)
    for personal in ("556036-0793", "Laddbolaget", "kontakt@", "hooks", "s3cret"):
        assert personal not in text


def test_supplier_events_carry_the_webhook_secret_for_the_notifier() -> None:
    sent = body(example(SupplierUpdated))
    assert sent["data"]["alerts"]["webhook_secret"] == "s3cret-s3cret-s3cret"
    assert "s3cret" not in repr(supplier_state())


def test_match_id_is_deterministic() -> None:
    first = match_id(NEED_ID, SUPPLIER_ID)
    assert first == match_id(NEED_ID, SUPPLIER_ID)
    assert uuid.UUID(first).version == 5
    assert first != match_id(SUPPLIER_ID, NEED_ID)
    assert first != match_id(NEED_ID, "another-supplier")


def test_alert_id_is_deterministic() -> None:
    the_match = match_id(NEED_ID, SUPPLIER_ID)
    first = alert_id("supplier:x", the_match, "email")
    assert first == alert_id("supplier:x", the_match, "email")
    assert first != alert_id("supplier:x", the_match, "webhook")
    assert first != alert_id("supplier:y", the_match, "email")


def test_match_and_alert_ids_are_checked() -> None:
    with pytest.raises(ValidationError, match="match_id"):
        match_state(id=str(uuid.uuid4()))
    with pytest.raises(ValidationError, match="alert_id"):
        alert_state(channel="email")


def test_state_normalises_vocabulary() -> None:
    state = supplier_state(org_number="5560360793")
    assert state.org_number == "556036-0793"
    assert state.capabilities.cpv_codes == ["31158000", "44144000"]
    caps = Capabilities(cpv_codes=["44144000-1", "44144000"], regions=["se", "SE"], trl=1)
    assert caps.cpv_codes == ["44144000"]
    assert caps.regions == ["SE"]


def test_state_limits() -> None:
    with pytest.raises(ValidationError, match="at least 1 item"):
        Capabilities(regions=[], trl=3)
    with pytest.raises(ValidationError, match="trl must be 1-9"):
        need_state(min_trl=0)
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        need_state(budget_sek=-1)
    with pytest.raises(ValidationError):
        Capabilities(keywords=["x" * 61], regions=["SE"], trl=3)
    with pytest.raises(ValidationError):
        Capabilities(keywords=["k"] * 31, regions=["SE"], trl=3)


def test_alert_settings() -> None:
    assert AlertSettings() == AlertSettings(language="sv", mode="instant", min_score=0.5)
    with pytest.raises(ValidationError, match="at least 16 characters"):
        AlertSettings(webhook_url="https://example.se/h", webhook_secret="short")
    with pytest.raises(ValidationError, match="webhook_secret is required with webhook_url"):
        AlertSettings(webhook_url="https://example.se/h")
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        AlertSettings(min_score=1.5)


def test_event_schema_requires_every_attribute() -> None:
    schema = NeedPublished.model_json_schema()
    assert schema["required"] == [
        "id",
        "source",
        "type",
        "specversion",
        "time",
        "subject",
        "datacontenttype",
        "data",
    ]
    assert schema["additionalProperties"] is False


def test_topic_for() -> None:
    assert topic_for(SupplierRemoved) == topics.SUPPLIERS
    assert topic_for(example(AlertDelivered)) == topics.ALERTS


def test_time_zone_of_given_time_is_normalised() -> None:
    stockholm = timezone(timedelta(hours=2))
    event = new_event(NeedUpdated, source="s", data=need_state(), time=NOW.astimezone(stockholm))
    assert event.time.tzinfo == UTC
