from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

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
    PublicOrgNumber,
    SupplierSize,
    SupplierType,
    Trl,
    UtcDateTime,
    WebUrl,
    supplier_types,
)


class Form(BaseModel):
    cpv: CpvCode = "45000000"
    cpv_codes: list[CpvCode] = []
    region: NutsCode = "SE"
    org_number: OrgNumber = "556036-0793"
    public_org_number: PublicOrgNumber = "212000-0142"
    trl: Trl = 5
    email: EmailAddress = "info@example.se"
    url: WebUrl = "https://example.se"
    founded_year: FoundedYear = 2000
    at: UtcDateTime = datetime(2025, 1, 1, tzinfo=UTC)
    principal: Principal = "operator"


def only_error(**fields: Any) -> dict[str, Any]:
    with pytest.raises(ValidationError) as caught:
        Form(**fields)
    errors = caught.value.errors()
    assert len(errors) == 1
    return dict(errors[0])


def test_values_are_normalised() -> None:
    form = Form(
        cpv="45000000-7",
        cpv_codes=[" 34114121-3", "34114121"],
        region="se110",
        org_number="5560360793",
        public_org_number=" 2120000142 ",
        email=" info@example.se ",
    )
    assert form.cpv == "45000000"
    assert form.cpv_codes == ["34114121", "34114121"]
    assert form.region == "SE110"
    assert form.org_number == "556036-0793"
    assert form.public_org_number == "212000-0142"
    assert form.email == "info@example.se"


@pytest.mark.parametrize(
    ("fields", "loc", "msg"),
    [
        (
            {"cpv": "1234"},
            ("cpv",),
            "'1234' is not a CPV code: expected 8 digits with an optional check digit, like 45000000-7",
        ),
        ({"cpv": "12345678"}, ("cpv",), "12345678 is not a CPV 2008 code"),
        (
            {"cpv_codes": ["45000000", "45000000-8"]},
            ("cpv_codes", 1),
            "check digit does not match: 45000000-7 is the code",
        ),
        ({"region": "SE999"}, ("region",), "region SE999 is not a Swedish NUTS code"),
        (
            {"org_number": "556036-0794"},
            ("org_number",),
            "check digit does not match: is a digit mistyped?",
        ),
        (
            {"org_number": "801212-1235"},
            ("org_number",),
            "third digit must be 2 or more for an organisation number",
        ),
        (
            {"public_org_number": "556036-0793"},
            ("public_org_number",),
            "first digit must be 2 for a public body",
        ),
        ({"trl": 0}, ("trl",), "trl must be 1-9"),
        ({"trl": 10}, ("trl",), "trl must be 1-9"),
        (
            {"email": "not-an-address"},
            ("email",),
            "not an e-mail address: expected something like name@example.se",
        ),
        (
            {"url": "ftp://example.se"},
            ("url",),
            "not a web address: expected an http or https URL",
        ),
        ({"url": "https://"}, ("url",), "not a web address: expected an http or https URL"),
    ],
)
def test_error_message_reaches_pydantic_unchanged(
    fields: dict[str, Any], loc: tuple[str | int, ...], msg: str
) -> None:
    error = only_error(**fields)
    assert error["loc"] == loc
    assert error["msg"] == msg


def test_founded_year_bounds() -> None:
    this_year = datetime.now(UTC).year
    assert Form(founded_year=this_year).founded_year == this_year
    assert Form(founded_year=1800).founded_year == 1800
    error = only_error(founded_year=this_year + 1)
    assert error["msg"] == f"founded_year must be between 1800 and {this_year}"
    assert error["type"] == "founded_year"


def test_error_type_names_the_vocabulary() -> None:
    assert only_error(cpv="1")["type"] == "cpv_code"
    assert only_error(region="X")["type"] == "nuts_code"
    assert only_error(trl=11)["type"] == "trl"


def test_trl_schema_keeps_its_bounds() -> None:
    schema = Form.model_json_schema()["properties"]["trl"]
    assert (schema["minimum"], schema["maximum"]) == (1, 9)


def test_times_must_be_aware_and_become_utc() -> None:
    stockholm = timezone(timedelta(hours=1))
    form = Form(at=datetime(2025, 1, 1, 13, 0, tzinfo=stockholm))
    assert form.at == datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert form.at.utcoffset() == timedelta(0)
    assert only_error(at=datetime(2025, 1, 1))["type"] == "timezone_aware"


@pytest.mark.parametrize("principal", ["operator", "supplier:abc-1", "buyer_group:g1"])
def test_principals(principal: str) -> None:
    assert Form(principal=principal).principal == principal


@pytest.mark.parametrize("principal", ["admin", "supplier:", "supplier:a b", "buyer_group"])
def test_bad_principals(principal: str) -> None:
    only_error(principal=principal)


def test_enum_values() -> None:
    assert [f.value for f in FocusArea] == [
        "transport",
        "health_care",
        "community_building",
        "industry_4_0",
        "sustainable_production",
        "skills",
        "test_beds",
        "other",
    ]
    assert [s.value for s in SupplierSize] == ["micro", "small", "medium", "large"]
    assert [c.value for c in CompanyType] == ["industrial", "industry_service", "other"]
    assert [p.value for p in Procedure] == [
        "market_dialogue",
        "innovation_partnership",
        "pre_commercial",
        "competitive_dialogue",
        "other",
    ]
    assert [a.value for a in AuthorityLevel] == ["national", "regional", "local"]
    assert [m.value for m in AlertMode] == ["instant", "daily", "weekly"]
    assert [lang.value for lang in Language] == ["sv", "en"]
    assert [s.value for s in NeedStatus] == ["open", "closed"]
    assert FocusArea.health_care == "health_care"


def test_supplier_types() -> None:
    assert supplier_types(SupplierSize.micro, CompanyType.industrial, founded_year=2023, this_year=2025) == {
        SupplierType.sme,
        SupplierType.startup,
        SupplierType.industrial,
    }
    assert supplier_types(
        SupplierSize.large, CompanyType.industry_service, founded_year=1900, this_year=2025
    ) == {SupplierType.large, SupplierType.industry_service}
    assert supplier_types(SupplierSize.medium, CompanyType.other, founded_year=2019, this_year=2025) == {
        SupplierType.sme
    }
