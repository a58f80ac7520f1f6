"""The needs service's HTTP shapes (the event shapes live in contracts).

A PATCH is a JSON merge patch (RFC 7396): the fields sent replace the stored ones, `alerts`
is merged field by field, a list sent replaces the whole list, and null clears an optional
field. The merged result is validated as a whole, with the same messages as on creation.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from services.contracts.events import AlertSettings, NeedState
from services.contracts.vocab import (
    AuthorityLevel,
    CpvCode,
    FocusArea,
    NutsCode,
    Procedure,
    PublicOrgNumber,
    SupplierType,
    Trl,
)
from services.infra.alert_settings import AlertsPatch, PublicAlertSettings
from services.infra.errors import error_examples, openapi_errors
from services.needs.rules import closes_in_future, respond_by_in_future, within_text_limit

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


def _future(value: date) -> date:
    return respond_by_in_future(value, datetime.now(UTC).date())


FutureDate = Annotated[date, AfterValidator(_future)]

AUTHORITY_EXAMPLE: dict[str, Any] = {
    "org_number": "212000-0142",
    "name": "Stockholms kommun",
    "level": "local",
    "region": "SE110",
}
GROUP_EXAMPLE: dict[str, Any] = {
    "name": "Elektrifierade transporter i Mälardalen",
    "focus_area": "transport",
    "member_authority_ids": ["6f1c2b7e-4c1a-4bde-9a55-0d3c1e2f3a4b"],
    "alerts": {"email": "samordnare@stockholm.se", "language": "sv", "mode": "daily", "min_score": 0.6},
}
NEED_EXAMPLE: dict[str, Any] = {
    "title": "Laddinfrastruktur för elbussar",
    "description": "Vi söker lösningar för snabbladdning av elbussar vid depåer och ändhållplatser.",
    "cpv_codes": ["31158100-9", "34144900"],
    "focus_area": "transport",
    "regions": ["SE11", "SE12"],
    "min_trl": 6,
    "preferred_supplier_types": ["sme", "startup"],
    "procedure": "innovation_partnership",
    "respond_by": "2030-06-30",
    "budget_sek": 12000000,
}
NEED_PATCH_EXAMPLE: dict[str, Any] = {"min_trl": 7, "regions": ["SE11", "SE12", "SE21"]}


class AuthorityIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [AUTHORITY_EXAMPLE]})

    org_number: PublicOrgNumber
    name: Name
    level: AuthorityLevel
    region: NutsCode


class AuthorityOut(BaseModel):
    id: str
    org_number: str
    name: str
    level: AuthorityLevel
    region: str
    created_at: datetime


class BuyerGroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [GROUP_EXAMPLE]})

    name: Name
    focus_area: FocusArea
    member_authority_ids: list[uuid.UUID] = Field(min_length=1, max_length=500)
    alerts: AlertSettings = Field(default_factory=AlertSettings)


class BuyerGroupPatch(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"member_authority_ids": ["6f1c2b7e-..."], "alerts": {"mode": "weekly"}}]
        },
    )

    name: str | None = None
    focus_area: str | None = None
    member_authority_ids: list[Any] | None = None
    alerts: AlertsPatch | None = None


class BuyerGroupOut(BaseModel):
    id: str
    name: str
    focus_area: FocusArea
    members: list[AuthorityOut]
    alerts: PublicAlertSettings
    version: int = Field(description='Bumped by every change; the ETag is W/"<version>"')
    created_at: datetime
    updated_at: datetime


class BuyerGroupCreated(BuyerGroupOut):
    token: str = Field(description="Bearer token for this buyer group; shown once, keep it safe.")
    token_expires_at: datetime = Field(
        description="When the token stops working; POST /v1/buyer-groups/{id}/token gives a fresh one."
    )


class NeedFields(BaseModel):
    """What a buyer group states about a need; the same rules as the need's event state."""

    model_config = ConfigDict(extra="forbid")

    title: Name
    description: str = Field(min_length=1, max_length=10000, description="Swedish or English")
    cpv_codes: Annotated[list[CpvCode], Field(min_length=1, max_length=50)]
    focus_area: FocusArea
    regions: Annotated[list[NutsCode], Field(min_length=1, max_length=20)]
    min_trl: Trl
    preferred_supplier_types: list[SupplierType] = Field(
        default_factory=list, description="Empty means no preference"
    )
    procedure: Procedure
    respond_by: date = Field(description="Last day to respond; after today when set")
    budget_sek: int | None = Field(default=None, ge=0)


class NeedIn(NeedFields):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [NEED_EXAMPLE]})

    respond_by: FutureDate = Field(description="Last day to respond; must be after today")


class NeedPatch(BaseModel):
    """A JSON merge patch of a need's fields; status and co-signers change by their own routes."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [NEED_PATCH_EXAMPLE]})

    title: str | None = None
    description: str | None = None
    cpv_codes: list[Any] | None = None
    focus_area: str | None = None
    regions: list[Any] | None = None
    min_trl: int | None = None
    preferred_supplier_types: list[Any] | None = None
    procedure: str | None = None
    respond_by: FutureDate | None = None
    budget_sek: int | None = None


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "Upphandlad"}]})

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class NeedOut(NeedState):
    authority_count: int = Field(
        description="Distinct authorities behind the need: the owning group's and the co-signers'"
    )
    authorities_by_level: dict[AuthorityLevel, int] = Field(
        description="How many of those authorities are national, regional and local"
    )


class NeedPage(BaseModel):
    items: list[NeedOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last")


class SharedBranch(BaseModel):
    code: str
    label_sv: str
    label_en: str


class SimilarNeed(BaseModel):
    need: NeedOut
    score: float = Field(ge=0, le=1, description="0.6 x CPV branch overlap + 0.4 x word overlap")
    shared_cpv_branches: list[SharedBranch] = Field(description="CPV divisions and groups both need lie in")
    shared_words: list[str] = Field(description="Significant words both texts use")


_ERRORS = error_examples(
    "need",
    forbidden=(
        "The token may not do this (another buyer group, or not an operator)",
        "only the owning buyer group or an operator may change a need",
    ),
    not_found=("No such resource", "no need 0b6f5c1e-..."),
    conflict=(
        "Conflicts with the current state (a duplicate, or a closed need)",
        "need 0b6f5c1e-... is closed and can no longer change",
    ),
    invalid_fields=[
        {"field": "cpv_codes[1]", "reason": "12345678 is not a CPV 2008 code"},
        {"field": "respond_by", "reason": "respond_by must be after today (2026-11-23)"},
    ],
)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries with an example body for each status."""
    return openapi_errors(_ERRORS, *statuses)


# Market dialogues.

DIALOGUE_EXAMPLE: dict[str, Any] = {
    "title": "Marknadsdialog: snabbladdning vid depåer",
    "agenda": "1. Behovet. 2. Era frågor. 3. Hur en innovationspartnerskap kan se ut.",
    "closes_at": "2030-05-31T16:00:00+02:00",
    "invitees": {"shortlist_top": 5},
}


def _closes_in_future(value: datetime) -> datetime:
    return closes_in_future(value, datetime.now(UTC))


class Invitees(BaseModel):
    """Exactly one of: named suppliers, or the need's current top N matches."""

    model_config = ConfigDict(extra="forbid")

    supplier_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] | None = Field(
        default=None, min_length=1, max_length=500
    )
    shortlist_top: int | None = Field(default=None, ge=1, le=100)

    @model_validator(mode="after")
    def _exactly_one(self) -> Invitees:
        if (self.supplier_ids is None) == (self.shortlist_top is None):
            raise ValueError("give exactly one of supplier_ids and shortlist_top")
        return self


class DialogueIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [DIALOGUE_EXAMPLE]})

    title: Name
    agenda: str = Field(default="", max_length=10000)
    closes_at: Annotated[datetime, AfterValidator(_closes_in_future)] = Field(
        description="With its time zone; nothing is asked or answered after it"
    )
    invitees: Invitees | None = None
    open: bool = Field(default=False, description="Any registered supplier may join")

    @model_validator(mode="after")
    def _someone(self) -> DialogueIn:
        if self.invitees is None and not self.open:
            raise ValueError(
                'give invitees ({"supplier_ids": [...]} or {"shortlist_top": N}) or "open": true'
            )
        return self


class Named(BaseModel):
    """A buyer group or a supplier: its id and name (None when not known or removed)."""

    id: str
    name: str | None


class DialogueParticipant(BaseModel):
    supplier_id: str
    name: str | None = Field(description="None when the supplier was removed")
    invited_at: datetime | None
    joined_at: datetime | None = Field(description="Set when it joined an open dialogue uninvited")
    response: Literal["accepted", "declined"] | None
    responded_at: datetime | None


class DialogueOut(BaseModel):
    id: str
    need_id: str
    need_title: str
    buyer_groups: list[Named] = Field(description="The need's owning group, then its co-signers")
    title: str
    agenda: str
    open: bool
    closes_at: datetime
    status: Literal["open", "closed"]
    suppliers: list[DialogueParticipant]
    version: int
    opened_at: datetime
    updated_at: datetime


class QuestionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"question": "Kan laddarna delas med taxi?"}]}
    )

    question: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]


class AnswerIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"answer": "Ja, om effekten räcker."}]}
    )

    answer: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1), AfterValidator(within_text_limit)
    ] = Field(description="At most 20 KB (UTF-8)")


class QuestionOut(BaseModel):
    """A question as participants see it: never who asked."""

    id: str
    question: str
    asked_at: datetime
    answer: str | None
    answered_at: datetime | None
    mine: bool = Field(description="The calling supplier asked it")


class ResponseIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"response": "accept"}, {"response": "input", "text": "Vi har en depåladdare..."}]
        },
    )

    response: Literal["accept", "decline", "input"]
    text: Annotated[str, AfterValidator(within_text_limit)] | None = Field(
        default=None, description="The written input (with response input): at most 20 KB (UTF-8)"
    )

    @model_validator(mode="after")
    def _text_with_input(self) -> ResponseIn:
        if self.response == "input" and not (self.text and self.text.strip()):
            raise ValueError("written input needs a text")
        if self.response != "input" and self.text is not None:
            raise ValueError("text goes only with response input")
        return self


class ResponseOut(BaseModel):
    dialogue_id: str
    supplier_id: str
    response: Literal["accept", "decline", "input"]
    at: datetime


class RecordSupplier(DialogueParticipant):
    took_part: bool = Field(description="Asked, accepted or submitted written input")


class RecordQuestion(BaseModel):
    id: str
    question: str
    asked_by: Named = Field(description="The supplier that asked (id and name)")
    asked_at: datetime
    answer: str | None
    answered_by: Named | None = Field(description="The buyer group that answered")
    answered_at: datetime | None


class RecordInput(BaseModel):
    supplier: Named
    text: str
    submitted_at: datetime


class DialogueRecord(BaseModel):
    """The record a buyer keeps of an early market dialogue."""

    dialogue: DialogueOut
    suppliers: list[RecordSupplier]
    questions: list[RecordQuestion]
    written_inputs: list[RecordInput]
    generated_at: datetime
