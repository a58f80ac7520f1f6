"""The suppliers service's HTTP shapes (the event shapes live in contracts).

A PATCH is a JSON merge patch (RFC 7396): the fields sent replace the stored ones, the
objects `capabilities` and `alerts` are merged field by field (a list sent replaces the whole
list), and null clears an optional field such as `alerts.webhook_url`. The merged profile is
validated as a whole, so the same rules and messages apply as at registration.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.contracts.events import AlertSettings, Capabilities
from services.contracts.vocab import CompanyType, EmailAddress, FoundedYear, OrgNumber, SupplierSize
from services.infra.alert_settings import AlertsPatch, PublicAlertSettings
from services.infra.errors import error_body, error_examples, openapi_errors

REGISTRATION_EXAMPLE: dict[str, Any] = {
    "org_number": "556036-0793",
    "name": "Laddbolaget AB",
    "size": "small",
    "company_type": "industrial",
    "founded_year": 2019,
    "contact_email": "info@laddbolaget.se",
    "capabilities": {
        "cpv_codes": ["31158100-9", "45310000"],
        "focus_areas": ["transport"],
        "keywords": ["laddstolpar", "elbussar"],
        "description": "Laddinfrastruktur för elbussar och depåer.",
        "regions": ["SE11", "SE12"],
        "trl": 7,
    },
    "alerts": {
        "webhook_url": "https://laddbolaget.se/innomatch",
        "webhook_secret": "a-long-random-secret-of-ours",
        "language": "sv",
        "mode": "instant",
        "min_score": 0.5,
    },
}

PATCH_EXAMPLE: dict[str, Any] = {
    "name": "Laddbolaget Sverige AB",
    "capabilities": {"keywords": ["laddstolpar", "snabbladdning"], "trl": 8},
    "alerts": {"mode": "daily"},
}


class SupplierRegistration(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [REGISTRATION_EXAMPLE]})

    org_number: OrgNumber
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    size: SupplierSize
    company_type: CompanyType
    founded_year: FoundedYear
    contact_email: Annotated[
        EmailAddress,
        Field(
            description="The company's public contact: the buyer groups of the needs it matches see it "
            "in their alerts, and sign-in links to the web forum are sent to it"
        ),
    ]
    capabilities: Capabilities
    alerts: AlertSettings = Field(default_factory=AlertSettings)


class CapabilitiesPatch(BaseModel):
    """The capability fields to change; the others keep their value."""

    model_config = ConfigDict(extra="forbid")

    cpv_codes: list[str] | None = None
    focus_areas: list[str] | None = None
    keywords: list[str] | None = None
    description: str | None = None
    regions: list[str] | None = None
    trl: int | None = None
    open_to_consortia: bool | None = None


class SupplierPatch(BaseModel):
    """A JSON merge patch of a supplier's profile; org_number cannot be changed."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [PATCH_EXAMPLE]})

    name: str | None = None
    size: SupplierSize | None = None
    company_type: CompanyType | None = None
    founded_year: int | None = None
    contact_email: str | None = None
    capabilities: CapabilitiesPatch | None = None
    alerts: AlertsPatch | None = None


class SupplierOut(BaseModel):
    id: str
    org_number: str
    name: str
    size: SupplierSize
    company_type: CompanyType
    founded_year: int
    contact_email: str
    capabilities: Capabilities
    alerts: PublicAlertSettings
    version: int = Field(description='Bumped by every change; the ETag is W/"<version>"')
    created_at: datetime
    updated_at: datetime


class SupplierCreated(SupplierOut):
    token: str = Field(description="Bearer token for this supplier; shown once, keep it safe.")
    token_expires_at: datetime = Field(
        description="When the token stops working; POST /v1/suppliers/{id}/token gives a fresh one."
    )


class CpvHit(BaseModel):
    code: str = Field(description="With check digit", examples=["34114121-3"])
    code8: str = Field(description="The 8 digits, as stored in profiles", examples=["34114121"])
    label: str = Field(examples=["Ambulanser"])
    level: int = Field(description="1 (division) to 5 (most specific)", examples=[5])


_ERRORS = error_examples(
    "supplier",
    forbidden=("The token belongs to another supplier", "a supplier may only reach its own profile"),
    not_found=("No such supplier, or it was removed", "no supplier 0b6f5c1e-..."),
    conflict=(
        "The organisation is already registered",
        "a supplier with org_number 556036-0793 is already registered",
    ),
    invalid_fields=[
        {"field": "capabilities.cpv_codes[2]", "reason": "12345678 is not a CPV 2008 code"},
        {"field": "capabilities.trl", "reason": "trl must be 1-9"},
    ],
    s429=(
        "Too many registrations from this address (see Retry-After)",
        error_body("rate_limited", "too many registrations from this address", retry_after_s=12),
    ),
)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries with an example body for each status."""
    return openapi_errors(_ERRORS, *statuses)
