"""The names the report puts next to codes, from the reference data."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from services.contracts.nuts import all_nuts
from services.contracts.vocab import CompanyType, FocusArea, Procedure, SupplierType
from services.report.names import cpv_label, region_label, region_name, term

DATA = Path(__file__).parents[3] / "services" / "contracts" / "data"


def test_every_lan_has_its_name_at_nuts_level_3() -> None:
    with (DATA / "kommuner_se.csv").open(encoding="utf-8") as f:
        lan_by_nuts3 = {row["nuts3"]: row["lan"] for row in csv.DictReader(f)}
    level3 = [r.code for r in all_nuts() if r.level == 3]
    assert len(level3) == 21
    for code in level3:
        assert region_name(code) == lan_by_nuts3[code]
        assert region_name(code).endswith(" län")
        assert region_label(code) == f"{lan_by_nuts3[code]} ({code})"
    assert region_label("SE110") == "Stockholms län (SE110)"
    assert region_label("se232") == "Västra Götalands län (SE232)"


@pytest.mark.parametrize(
    ("code", "label"),
    [
        ("SE11", "Stockholm, riksområde (SE11)"),
        ("SE33", "Övre Norrland, riksområde (SE33)"),
        ("SE2", "Södra Sverige, landsdel (SE2)"),
        ("SE", "Sverige, hela landet (SE)"),
    ],
)
def test_larger_regions_are_named_with_what_they_are(code: str, label: str) -> None:
    assert region_label(code) == label


def test_every_nuts_level_2_region_has_a_name() -> None:
    level2 = [r for r in all_nuts() if r.level == 2]
    assert len(level2) == 8
    assert all(region_label(r.code) == f"{r.name}, riksområde ({r.code})" for r in level2)


def test_codes_without_a_name_are_shown_as_they_are() -> None:
    assert region_label("DE300") == "DE300"
    assert cpv_label("99999999") == "99999999"
    assert cpv_label("31158100") == "Batteriladdningsdon (31158100)"


def test_vocabulary_values_read_as_words() -> None:
    assert term(FocusArea.health_care) == "health care"
    assert term(FocusArea.industry_4_0) == "industry 4.0"
    assert term(Procedure.pre_commercial) == "pre-commercial procurement"
    assert term(SupplierType.sme) == "SME"
    assert term(SupplierType.startup) == "young firm (start-up)"
    assert term(CompanyType.industry_service) == "industry service"
    assert term("transport") == "transport"
    values = [*FocusArea, *Procedure, *CompanyType, *SupplierType]
    assert all("_" not in term(v) for v in values)
