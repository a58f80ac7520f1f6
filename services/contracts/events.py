"""The events on the Innomatch topics and the aggregate states they carry.

Every event is a CloudEvents 1.0 message in structured JSON form: the attributes are
top-level fields and `data` holds the full current state of the aggregate (event-carried
state transfer), so a consumer can rebuild its view from the topic alone. `subject` is
the Kafka key: the supplier id, the need id (also for matches), the dialogue id or the alert
recipient.

The models forbid unknown fields, so a changed contract fails loudly at the consumer
instead of being half-read: add a field to consumers before producers send it.

The suppliers topic is internal: SupplierState carries the webhook secret because the
notifier signs webhook calls with it. Never expose these events outside the system.
"""

from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Generic, Literal, Self, TypeVar, cast
from uuid import UUID, uuid4, uuid5

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    model_validator,
)

from services.contracts import topics
from services.contracts.vocab import (
    AlertMode,
    AuthorityLevel,
    CompanyType,
    CpvCode,
    EmailAddress,
    FocusArea,
    FoundedYear,
    Language,
    NeedStatus,
    NutsCode,
    OrgNumber,
    Principal,
    Procedure,
    SupplierSize,
    SupplierType,
    Trl,
    UtcDateTime,
    Verdict,
    WebUrl,
)

__all__ = [
    "ALERT_EVENT_ADAPTER",
    "BUYER_GROUP_EVENT_ADAPTER",
    "DIALOGUE_EVENT_ADAPTER",
    "EVENT_TYPES",
    "MATCH_EVENT_ADAPTER",
    "NEED_EVENT_ADAPTER",
    "SUPPLIER_EVENT_ADAPTER",
    "TOPIC_ADAPTERS",
    "TOPIC_EVENTS",
    "AlertDelivered",
    "AlertEvent",
    "AlertFailed",
    "AlertSettings",
    "AlertState",
    "AnsweredQuestion",
    "BuyerGroupCreated",
    "BuyerGroupEvent",
    "BuyerGroupState",
    "BuyerGroupUpdated",
    "Capabilities",
    "CloudEvent",
    "DialogueAnswer",
    "DialogueClosed",
    "DialogueEvent",
    "DialogueInvitation",
    "DialogueOpened",
    "DialogueParticipation",
    "DialogueQuestionAnswered",
    "DialogueState",
    "DialogueSupplierAnswered",
    "DialogueSupplierInvited",
    "ExplanationFacts",
    "MatchEvent",
    "MatchExplanation",
    "MatchFound",
    "MatchJudged",
    "MatchState",
    "MatchUpdated",
    "MatchWithdrawn",
    "NeedClosed",
    "NeedEvent",
    "NeedPublished",
    "NeedState",
    "NeedUpdated",
    "SharedCpv",
    "SupplierEvent",
    "SupplierRegistered",
    "SupplierRemoved",
    "SupplierRemovedState",
    "SupplierState",
    "SupplierUpdated",
    "alert_id",
    "match_id",
    "new_event",
    "parse_event",
    "topic_for",
]

_MATCH_NAMESPACE = UUID("417b8875-d220-49c5-bf0b-9c212ace5424")
_ALERT_NAMESPACE = UUID("a2653ff4-10ec-4a3f-94a2-71929cb9c4b8")

T = TypeVar("T")

# Ids are UUID strings in practice; the character set keeps derived ids unambiguous.
Id = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
Version = Annotated[int, Field(ge=1)]
Keyword = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
Score = Annotated[float, Field(ge=0, le=1)]


def _unique(values: list[T]) -> list[T]:
    """Drop repeated values, keeping the first of each."""
    return list(dict.fromkeys(values))


@lru_cache(maxsize=1 << 16)
def match_id(need_id: str, supplier_id: str) -> str:
    """The one id a need-supplier pair ever has, so rescoring updates instead of duplicating."""
    return str(uuid5(_MATCH_NAMESPACE, f"{need_id}/{supplier_id}"))


def alert_id(recipient: str, match_id: str, channel: str) -> str:
    """The one id of telling a recipient about a match over a channel: never twice."""
    return str(uuid5(_ALERT_NAMESPACE, f"{recipient}/{match_id}/{channel}"))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AlertSettings(_Model):
    """How a supplier or a buyer group wants to hear about matches."""

    webhook_url: WebUrl | None = None
    webhook_secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=256,
        repr=False,
        description="Key for the Innomatch-Signature HMAC; write-only in the HTTP APIs",
    )
    email: EmailAddress | None = None
    language: Language = Language.sv
    mode: AlertMode = AlertMode.instant
    min_score: Score = Field(default=0.5, description="Only matches scoring this or more alert")
    digest_budget: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="At most this many alerts per digest, best scores first; none: the service default",
    )

    @model_validator(mode="after")
    def _signed_webhooks(self) -> Self:
        if self.webhook_url is not None and self.webhook_secret is None:
            raise ValueError("webhook_secret is required with webhook_url: calls are signed")
        return self


class Capabilities(_Model):
    """What a supplier can deliver, where and how mature it is."""

    cpv_codes: Annotated[list[CpvCode], Field(max_length=50), AfterValidator(_unique)] = Field(
        default_factory=list
    )
    focus_areas: Annotated[list[FocusArea], AfterValidator(_unique)] = Field(default_factory=list)
    keywords: Annotated[list[Keyword], Field(max_length=30), AfterValidator(_unique)] = Field(
        default_factory=list
    )
    description: str = Field(default="", max_length=5000)
    regions: Annotated[list[NutsCode], Field(min_length=1, max_length=20), AfterValidator(_unique)]
    trl: Trl
    open_to_consortia: bool = Field(
        default=True, description="May be suggested as a member of a consortium for a need"
    )


class SupplierState(_Model):
    id: Id
    org_number: OrgNumber
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    size: SupplierSize
    company_type: CompanyType
    founded_year: FoundedYear
    contact_email: EmailAddress
    capabilities: Capabilities
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    version: Version
    created_at: UtcDateTime
    updated_at: UtcDateTime


class SupplierRemovedState(_Model):
    """What is left of a removed supplier: nothing that identifies a person or company."""

    id: Id
    version: Version
    removed_at: UtcDateTime


class NeedState(_Model):
    id: Id
    buyer_group_id: Id
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    description: str = Field(min_length=1, max_length=10000)
    cpv_codes: Annotated[list[CpvCode], Field(max_length=50), AfterValidator(_unique)] = Field(
        default_factory=list
    )
    focus_area: FocusArea
    regions: Annotated[list[NutsCode], Field(min_length=1, max_length=20), AfterValidator(_unique)]
    min_trl: Trl
    preferred_supplier_types: Annotated[list[SupplierType], AfterValidator(_unique)] = Field(
        default_factory=list, description="Empty means no preference"
    )
    procedure: Procedure
    respond_by: date
    budget_sek: int | None = Field(default=None, ge=0)
    status: NeedStatus
    cosigners: Annotated[list[Id], AfterValidator(_unique)] = Field(
        default_factory=list, description="Other buyer groups standing behind the need"
    )
    authority_levels: Annotated[list[AuthorityLevel], AfterValidator(_unique)] = Field(
        default_factory=list,
        description="Levels (national, regional, local) of the authorities behind the need",
    )
    version: Version
    published_at: UtcDateTime
    updated_at: UtcDateTime
    closed_reason: str | None = Field(default=None, max_length=500)


class BuyerGroupState(_Model):
    """A buyer group as the other services need it: who is in it and how it wants alerts.

    Carries the webhook secret (the notifier signs with it), like SupplierState.
    """

    id: Id
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    focus_area: FocusArea
    member_authority_ids: Annotated[list[Id], AfterValidator(_unique)] = Field(default_factory=list)
    authority_levels: Annotated[list[AuthorityLevel], AfterValidator(_unique)] = Field(default_factory=list)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    version: Version
    created_at: UtcDateTime
    updated_at: UtcDateTime


class SharedCpv(_Model):
    """A CPV code and its labels: a value, so one instance serves every explanation naming it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: CpvCode
    label_sv: str
    label_en: str


class ExplanationFacts(_Model):
    """The codes and numbers behind the verdicts of an explanation, so that a reader can say
    them in its own language (the verdicts are English)."""

    supplier_regions: list[NutsCode] = Field(
        description="The supplier's region that overlaps the need's, or all of them when none does"
    )
    need_regions: list[NutsCode] = Field(
        description="The need's region that the supplier's overlaps, or all of them when none does"
    )
    regions_overlap: bool
    supplier_trl: Trl
    required_trl: Trl
    semantic_closeness: Score | None = Field(
        default=None, description="How close the two texts are in meaning, 0-1 (semantic_verdict)"
    )


class MatchExplanation(_Model):
    """Why a supplier matches a need, in terms a person can check."""

    components: dict[str, float] = Field(
        default_factory=dict,
        description="Contribution of each scoring component to the score",
    )
    shared_cpv: list[SharedCpv] = Field(default_factory=list)
    matched_terms: list[str] = Field(default_factory=list)
    region_verdict: str
    trl_verdict: str
    semantic_verdict: str | None = Field(
        default=None, description="How close the two texts are in meaning, in words"
    )
    closest_passage: str | None = Field(
        default=None, description="The sentence of the supplier's profile closest in meaning to the need"
    )
    facts: ExplanationFacts | None = Field(
        default=None, description="The regions, TRLs and closeness the verdicts state, as values"
    )


class MatchState(_Model):
    id: str = Field(description="match_id(need_id, supplier_id)")
    need_id: Id
    supplier_id: Id
    score: Score
    version: Version
    status: Literal["active", "withdrawn"]
    explanation: MatchExplanation
    updated_at: UtcDateTime
    verdict: Verdict | None = Field(
        default=None,
        description="The need's buyer groups' judgement of the match, if they gave one (match.judged)",
    )
    verdict_reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _deterministic_id(self) -> Self:
        if self.id != match_id(self.need_id, self.supplier_id):
            raise ValueError("id must be match_id(need_id, supplier_id)")
        return self


class AlertState(_Model):
    id: str = Field(description="alert_id(recipient, match_id, channel)")
    recipient: Principal
    match_id: str = Field(
        description="The match alerted about; for a market dialogue notice "
        "`dialogue:<dialogue id>/<invitation or question id>` (its match_version is 1)"
    )
    match_version: Version
    channel: Literal["webhook", "email", "inbox"]
    outcome: Literal["delivered", "failed"]
    attempts: int = Field(ge=1)
    error: str | None = Field(default=None, max_length=2000)
    at: UtcDateTime

    @model_validator(mode="after")
    def _deterministic_id(self) -> Self:
        if self.id != alert_id(self.recipient, self.match_id, self.channel):
            raise ValueError("id must be alert_id(recipient, match_id, channel)")
        return self


class DialogueState(_Model):
    """A market dialogue (request for information) about a need, as its participants know it.

    Never names who asked a question: askers are anonymous between suppliers.
    """

    id: Id
    need_id: Id
    buyer_group_ids: Annotated[list[Id], Field(min_length=1), AfterValidator(_unique)] = Field(
        description="The need's owning group first, then its co-signers"
    )
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    agenda: str = Field(max_length=10000)
    open_to_all: bool = Field(description="Any registered supplier may join")
    closes_at: UtcDateTime = Field(description="Nothing is asked or answered after this")
    status: Literal["open", "closed"]
    invited_supplier_ids: Annotated[list[Id], AfterValidator(_unique)] = Field(default_factory=list)
    joined_supplier_ids: Annotated[list[Id], AfterValidator(_unique)] = Field(
        default_factory=list, description="Suppliers that joined an open dialogue without an invitation"
    )
    version: Version
    opened_at: UtcDateTime
    updated_at: UtcDateTime


class AnsweredQuestion(_Model):
    """A question and its answer, without the asker."""

    id: Id
    question: str = Field(min_length=1, max_length=5000)
    answer: str = Field(min_length=1, max_length=20000)
    asked_at: UtcDateTime
    answered_at: UtcDateTime


class DialogueInvitation(_Model):
    """A supplier invited to a dialogue, and the dialogue."""

    dialogue_id: Id
    supplier_id: Id
    dialogue: DialogueState

    @model_validator(mode="after")
    def _same_dialogue(self) -> Self:
        if self.dialogue_id != self.dialogue.id:
            raise ValueError("dialogue_id must be dialogue.id")
        return self


class DialogueAnswer(_Model):
    """A question answered in a dialogue, for every participant, and the dialogue."""

    dialogue_id: Id
    question: AnsweredQuestion
    dialogue: DialogueState

    @model_validator(mode="after")
    def _same_dialogue(self) -> Self:
        if self.dialogue_id != self.dialogue.id:
            raise ValueError("dialogue_id must be dialogue.id")
        return self


class DialogueParticipation(_Model):
    """A supplier answered a dialogue for the first time: it asked a question or sent a response
    (accepted, declined or gave written input). Which of these, and what it asked, it does not
    say: askers stay anonymous between suppliers."""

    dialogue_id: Id
    supplier_id: Id
    at: UtcDateTime
    dialogue: DialogueState

    @model_validator(mode="after")
    def _same_dialogue(self) -> Self:
        if self.dialogue_id != self.dialogue.id:
            raise ValueError("dialogue_id must be dialogue.id")
        return self


DataT = TypeVar("DataT", bound=BaseModel)


def _all_required(schema: dict[str, Any]) -> None:
    # Producers always send every attribute, and the type is needed to parse at all;
    # the defaults exist only for building events in code.
    schema["required"] = list(schema["properties"])


class CloudEvent(BaseModel, Generic[DataT]):
    """CloudEvents 1.0 attributes around the state of one aggregate."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_all_required)

    id: str = Field(
        min_length=1,
        max_length=200,
        description="Unique per event; consumers dedupe on it",
    )
    source: str = Field(min_length=1, max_length=200, description="The producer, e.g. /innomatch/suppliers")
    type: str
    specversion: Literal["1.0"] = "1.0"
    time: UtcDateTime
    subject: str = Field(description="The Kafka key")
    datacontenttype: Literal["application/json"] = "application/json"
    data: DataT

    # The field of data that is the subject, and the (field, value) this type requires.
    key_field: ClassVar[str] = "id"
    required_state: ClassVar[tuple[str, str] | None] = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        key = getattr(self.data, self.key_field)
        if self.subject != key:
            raise ValueError(f"subject must be data.{self.key_field} ({key})")
        if self.required_state is not None:
            field, value = self.required_state
            if getattr(self.data, field) != value:
                raise ValueError(f"a {self.type} event must have data.{field} = {value}")
        return self


class SupplierRegistered(CloudEvent[SupplierState]):
    type: Literal["supplier.registered"] = "supplier.registered"


class SupplierUpdated(CloudEvent[SupplierState]):
    type: Literal["supplier.updated"] = "supplier.updated"


class SupplierRemoved(CloudEvent[SupplierRemovedState]):
    type: Literal["supplier.removed"] = "supplier.removed"


class NeedPublished(CloudEvent[NeedState]):
    type: Literal["need.published"] = "need.published"
    required_state = ("status", NeedStatus.open)


class NeedUpdated(CloudEvent[NeedState]):
    type: Literal["need.updated"] = "need.updated"


class NeedClosed(CloudEvent[NeedState]):
    type: Literal["need.closed"] = "need.closed"
    required_state = ("status", NeedStatus.closed)


class BuyerGroupCreated(CloudEvent[BuyerGroupState]):
    type: Literal["buyer_group.created"] = "buyer_group.created"


class BuyerGroupUpdated(CloudEvent[BuyerGroupState]):
    type: Literal["buyer_group.updated"] = "buyer_group.updated"


class MatchFound(CloudEvent[MatchState]):
    type: Literal["match.found"] = "match.found"
    key_field = "need_id"
    required_state = ("status", "active")


class MatchUpdated(CloudEvent[MatchState]):
    type: Literal["match.updated"] = "match.updated"
    key_field = "need_id"
    required_state = ("status", "active")


class MatchWithdrawn(CloudEvent[MatchState]):
    type: Literal["match.withdrawn"] = "match.withdrawn"
    key_field = "need_id"
    required_state = ("status", "withdrawn")


class MatchJudged(CloudEvent[MatchState]):
    """A buyer group judged the match (`verdict`); the match's state is otherwise unchanged."""

    type: Literal["match.judged"] = "match.judged"
    key_field = "need_id"


class AlertDelivered(CloudEvent[AlertState]):
    type: Literal["alert.delivered"] = "alert.delivered"
    key_field = "recipient"
    required_state = ("outcome", "delivered")


class AlertFailed(CloudEvent[AlertState]):
    type: Literal["alert.failed"] = "alert.failed"
    key_field = "recipient"
    required_state = ("outcome", "failed")


class DialogueOpened(CloudEvent[DialogueState]):
    type: Literal["dialogue.opened"] = "dialogue.opened"
    required_state = ("status", "open")


class DialogueSupplierInvited(CloudEvent[DialogueInvitation]):
    type: Literal["dialogue.supplier_invited"] = "dialogue.supplier_invited"
    key_field = "dialogue_id"


class DialogueQuestionAnswered(CloudEvent[DialogueAnswer]):
    type: Literal["dialogue.question_answered"] = "dialogue.question_answered"
    key_field = "dialogue_id"


class DialogueSupplierAnswered(CloudEvent[DialogueParticipation]):
    """Once per supplier and dialogue, when it first asks or responds."""

    type: Literal["dialogue.supplier_answered"] = "dialogue.supplier_answered"
    key_field = "dialogue_id"


class DialogueClosed(CloudEvent[DialogueState]):
    type: Literal["dialogue.closed"] = "dialogue.closed"
    required_state = ("status", "closed")


SupplierEvent = Annotated[SupplierRegistered | SupplierUpdated | SupplierRemoved, Field(discriminator="type")]
NeedEvent = Annotated[NeedPublished | NeedUpdated | NeedClosed, Field(discriminator="type")]
BuyerGroupEvent = Annotated[BuyerGroupCreated | BuyerGroupUpdated, Field(discriminator="type")]
MatchEvent = Annotated[MatchFound | MatchUpdated | MatchWithdrawn | MatchJudged, Field(discriminator="type")]
AlertEvent = Annotated[AlertDelivered | AlertFailed, Field(discriminator="type")]
DialogueEvent = Annotated[
    DialogueOpened
    | DialogueSupplierInvited
    | DialogueQuestionAnswered
    | DialogueSupplierAnswered
    | DialogueClosed,
    Field(discriminator="type"),
]

SUPPLIER_EVENT_ADAPTER: TypeAdapter[SupplierEvent] = TypeAdapter(SupplierEvent)
NEED_EVENT_ADAPTER: TypeAdapter[NeedEvent] = TypeAdapter(NeedEvent)
BUYER_GROUP_EVENT_ADAPTER: TypeAdapter[BuyerGroupEvent] = TypeAdapter(BuyerGroupEvent)
MATCH_EVENT_ADAPTER: TypeAdapter[MatchEvent] = TypeAdapter(MatchEvent)
ALERT_EVENT_ADAPTER: TypeAdapter[AlertEvent] = TypeAdapter(AlertEvent)
DIALOGUE_EVENT_ADAPTER: TypeAdapter[DialogueEvent] = TypeAdapter(DialogueEvent)

TOPIC_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    topics.SUPPLIERS: SUPPLIER_EVENT_ADAPTER,
    topics.NEEDS: NEED_EVENT_ADAPTER,
    topics.BUYER_GROUPS: BUYER_GROUP_EVENT_ADAPTER,
    topics.MATCHES: MATCH_EVENT_ADAPTER,
    topics.ALERTS: ALERT_EVENT_ADAPTER,
    topics.DIALOGUES: DIALOGUE_EVENT_ADAPTER,
}
TOPIC_EVENTS: dict[str, list[type[BaseModel]]] = {
    topics.SUPPLIERS: [SupplierRegistered, SupplierUpdated, SupplierRemoved],
    topics.NEEDS: [NeedPublished, NeedUpdated, NeedClosed],
    topics.BUYER_GROUPS: [BuyerGroupCreated, BuyerGroupUpdated],
    topics.MATCHES: [MatchFound, MatchUpdated, MatchWithdrawn, MatchJudged],
    topics.ALERTS: [AlertDelivered, AlertFailed],
    topics.DIALOGUES: [
        DialogueOpened,
        DialogueSupplierInvited,
        DialogueQuestionAnswered,
        DialogueSupplierAnswered,
        DialogueClosed,
    ],
}
EVENT_TYPES: dict[str, type[BaseModel]] = {
    cls.model_fields["type"].default: cls for classes in TOPIC_EVENTS.values() for cls in classes
}
_TOPIC_OF: dict[type[BaseModel], str] = {
    cls: topic for topic, classes in TOPIC_EVENTS.items() for cls in classes
}


def parse_event(topic: str, body: bytes | str) -> CloudEvent[Any]:
    """The event in a message body; pydantic ValidationError when it is not one.

    ValueError (not a ValidationError) when the topic carries no Innomatch events.
    """
    adapter = TOPIC_ADAPTERS.get(topic)
    if adapter is None:
        raise ValueError(f"{topic} is not an Innomatch event topic")
    return cast(CloudEvent[Any], adapter.validate_json(body))


def topic_for(event: BaseModel | type[BaseModel]) -> str:
    """The topic an event (or event class) is published on."""
    cls = event if isinstance(event, type) else type(event)
    return _TOPIC_OF[cls]


E = TypeVar("E", bound=CloudEvent[Any])


def new_event(
    cls: type[E],
    *,
    source: str,
    data: BaseModel,
    subject: str | None = None,
    id: str | None = None,
    time: datetime | None = None,
) -> E:
    """An event of type cls around data, with a fresh id and the current time by default.

    The subject defaults to the key field of data. Pass a deterministic id to make
    republishing the same change produce the same event id.
    """
    # Not cls(...): type-checked against CloudEvent, which has no default for type.
    return cls.model_validate(
        {
            "id": id or str(uuid4()),
            "source": source,
            "time": time or datetime.now(UTC),
            "subject": subject if subject is not None else getattr(data, cls.key_field),
            "data": data,
        }
    )
