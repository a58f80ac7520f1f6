"""Enumerations and validated value types shared by the HTTP APIs and the events.

The annotated types normalise on the way in (CpvCode "45000000-7" becomes "45000000").
Their errors carry the plain-words reason as the pydantic error message, so an HTTP
layer can show `error["msg"]` as it is.
"""

import re
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, LiteralString, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, AwareDatetime, Field
from pydantic_core import PydanticCustomError

from services.contracts.cpv import normalize_cpv
from services.contracts.nuts import normalize_nuts
from services.contracts.orgnr import is_public_body, normalize_org_number

__all__ = [
    "STARTUP_MAX_AGE_YEARS",
    "AlertMode",
    "AuthorityLevel",
    "CompanyType",
    "CpvCode",
    "EmailAddress",
    "FocusArea",
    "FoundedYear",
    "Language",
    "NeedStatus",
    "NutsCode",
    "OrgNumber",
    "Principal",
    "Procedure",
    "PublicOrgNumber",
    "SupplierSize",
    "SupplierType",
    "Trl",
    "UtcDateTime",
    "Verdict",
    "WebUrl",
    "supplier_types",
]


class FocusArea(StrEnum):
    transport = "transport"
    health_care = "health_care"
    community_building = "community_building"
    industry_4_0 = "industry_4_0"
    sustainable_production = "sustainable_production"
    skills = "skills"
    test_beds = "test_beds"
    other = "other"


class SupplierSize(StrEnum):
    micro = "micro"
    small = "small"
    medium = "medium"
    large = "large"


class CompanyType(StrEnum):
    industrial = "industrial"
    industry_service = "industry_service"
    other = "other"


class SupplierType(StrEnum):
    """The kinds of supplier a need may prefer; see supplier_types for what each means."""

    sme = "sme"
    startup = "startup"
    large = "large"
    industrial = "industrial"
    industry_service = "industry_service"


class Procedure(StrEnum):
    market_dialogue = "market_dialogue"
    innovation_partnership = "innovation_partnership"
    pre_commercial = "pre_commercial"
    competitive_dialogue = "competitive_dialogue"
    other = "other"


class AuthorityLevel(StrEnum):
    national = "national"
    regional = "regional"
    local = "local"


class AlertMode(StrEnum):
    instant = "instant"
    daily = "daily"
    weekly = "weekly"


class Verdict(StrEnum):
    """A buyer group's judgement of a match."""

    relevant = "relevant"
    not_relevant = "not_relevant"
    contacted = "contacted"
    selected = "selected"


class Language(StrEnum):
    sv = "sv"
    en = "en"


class NeedStatus(StrEnum):
    open = "open"
    closed = "closed"


# A company founded this many years ago or less counts as a start-up.
STARTUP_MAX_AGE_YEARS = 5


def supplier_types(
    size: SupplierSize, company_type: CompanyType, founded_year: int, this_year: int
) -> frozenset[SupplierType]:
    """The supplier types a supplier counts as, for a need's preferred_supplier_types."""
    types = {SupplierType.large if size == SupplierSize.large else SupplierType.sme}
    if this_year - founded_year <= STARTUP_MAX_AGE_YEARS:
        types.add(SupplierType.startup)
    if company_type == CompanyType.industrial:
        types.add(SupplierType.industrial)
    elif company_type == CompanyType.industry_service:
        types.add(SupplierType.industry_service)
    return frozenset(types)


T = TypeVar("T")


def _explained(error_type: LiteralString, check: Callable[[T], T]) -> AfterValidator:
    """Run check; its ValueError message becomes the pydantic error message unchanged.

    A plain ValueError would reach the client as "Value error, <reason>".
    """

    def validate(value: T) -> T:
        try:
            return check(value)
        except ValueError as error:
            raise PydanticCustomError(error_type, "{reason}", {"reason": str(error)}) from None

    return AfterValidator(validate)


def _public_org_number(value: str) -> str:
    normalized = normalize_org_number(value)
    if not is_public_body(normalized):
        raise ValueError("first digit must be 2 for a public body")
    return normalized


def _founded_year(value: int) -> int:
    # Read at validation time: a year bound in the schema would go stale on New Year.
    this_year = datetime.now(UTC).year
    if not 1800 <= value <= this_year:
        raise ValueError(f"founded_year must be between 1800 and {this_year}")
    return value


def _trl(value: int) -> int:
    if not 1 <= value <= 9:
        raise ValueError("trl must be 1-9")
    return value


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _email(value: str) -> str:
    text = value.strip()
    if len(text) > 254 or not _EMAIL.fullmatch(text):
        raise ValueError("not an e-mail address: expected something like name@example.se")
    return text


def _web_url(value: str) -> str:
    text = value.strip()
    parts = urlsplit(text)
    if (
        len(text) > 2000
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() for c in text)
    ):
        raise ValueError("not a web address: expected an http or https URL")
    return text


CpvCode = Annotated[
    str,
    _explained("cpv_code", normalize_cpv),
    Field(
        description="CPV 2008 code; the check digit is optional on input, the 8 digits are kept",
        examples=["45000000-7", "45000000"],
    ),
]
NutsCode = Annotated[
    str,
    _explained("nuts_code", normalize_nuts),
    Field(
        description="NUTS 2021 code of a Swedish region; SE is all of Sweden",
        examples=["SE110"],
    ),
]
OrgNumber = Annotated[
    str,
    _explained("org_number", normalize_org_number),
    Field(description="Swedish organisationsnummer, NNNNNN-NNNN", examples=["556036-0793"]),
]
PublicOrgNumber = Annotated[
    str,
    _explained("public_org_number", _public_org_number),
    Field(
        description="Organisationsnummer of a public body (first digit 2), NNNNNN-NNNN",
        examples=["212000-0142"],
    ),
]
# The bounds go into the JSON schema by hand: Field(ge=1, le=9) would answer
# "Input should be greater than or equal to 1" instead of naming the scale.
Trl = Annotated[
    int,
    _explained("trl", _trl),
    Field(
        description="Technology readiness level, 1-9",
        json_schema_extra={"minimum": 1, "maximum": 9},
    ),
]
FoundedYear = Annotated[
    int,
    _explained("founded_year", _founded_year),
    Field(description="Year the company was founded, 1800 to this year", examples=[2019]),
]
EmailAddress = Annotated[
    str,
    _explained("email", _email),
    Field(description="E-mail address", examples=["info@example.se"]),
]
WebUrl = Annotated[
    str,
    _explained("web_url", _web_url),
    Field(description="http or https URL", examples=["https://example.se/innomatch"]),
]
# Timestamps must say their time zone; they are kept in UTC.
UtcDateTime = Annotated[AwareDatetime, AfterValidator(lambda value: value.astimezone(UTC))]
Principal = Annotated[
    str,
    Field(
        pattern=r"^(operator|supplier:[^\s:]+|buyer_group:[^\s:]+)$",
        description='Who a token speaks for: "operator", "supplier:<id>" or "buyer_group:<id>"',
        examples=["supplier:0b6f5c1e-8d5a-4a57-9f0c-1f2d3e4a5b6c"],
    ),
]
