"""The needs service's HTTP shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from services.contracts.vocab import AuthorityLevel, NutsCode, PublicOrgNumber


class AuthorityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_number: PublicOrgNumber
    name: str = Field(min_length=1, max_length=200)
    level: AuthorityLevel
    region: NutsCode


class AuthorityOut(BaseModel):
    id: str
    org_number: str
    name: str
    level: AuthorityLevel
    region: str
    created_at: datetime
