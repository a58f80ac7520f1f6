"""The suppliers service's HTTP shapes (the event shapes live in contracts)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from services.contracts.events import AlertSettings, Capabilities
from services.contracts.vocab import CompanyType, OrgNumber, SupplierSize


class SupplierRegistration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_number: OrgNumber
    name: str = Field(min_length=1, max_length=200)
    size: SupplierSize
    company_type: CompanyType
    founded_year: int = Field(ge=1800, le=2100)
    contact_email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    capabilities: Capabilities
    alerts: AlertSettings = Field(default_factory=AlertSettings)


class PublicAlertSettings(BaseModel):
    """Alert settings as shown to callers: the webhook secret is write-only."""

    webhook_url: str | None
    email: str | None
    language: str
    mode: str
    min_score: float
    has_webhook_secret: bool


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
    version: int
    created_at: datetime
    updated_at: datetime


class SupplierCreated(SupplierOut):
    token: str = Field(description="Bearer token for this supplier; shown once, keep it safe.")
