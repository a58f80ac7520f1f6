"""Names a reader of the report knows, next to the codes the events carry: län and
riksområden for NUTS codes, Swedish CPV labels (pure lookups in the reference data,
`services/contracts/data`: nuts_2021_se.csv, kommuner_se.csv, cpv_2008.csv), and words for
the API's vocabulary values (`health_care` reads "health care").
"""

from __future__ import annotations

import csv
from functools import cache
from importlib.resources import files

from services.contracts.cpv import cpv_lookup
from services.contracts.nuts import nuts_lookup
from services.contracts.vocab import CompanyType, FocusArea, Procedure, SupplierType

# What each NUTS level is called in Sweden.
_LEVEL_WORDS = {0: "hela landet", 1: "landsdel", 2: "riksområde"}


@cache
def _lan_by_nuts3() -> dict[str, str]:
    """NUTS-3 code -> län name, from the municipalities' table (every kommun names both)."""
    text = files("services.contracts").joinpath("data/kommuner_se.csv").read_text("utf-8")
    return {row["nuts3"]: row["lan"] for row in csv.DictReader(text.splitlines())}


def region_name(code: str) -> str:
    """The län for a NUTS-3 code ("Västra Götalands län"), the region's name otherwise
    ("Stockholm", "Sverige"); the code itself when it is not a Swedish region."""
    region = nuts_lookup(code)
    if region is None:
        return code
    if region.level == 3:
        return _lan_by_nuts3().get(region.code, region.name)
    return region.name


def region_label(code: str) -> str:
    """ "Stockholms län (SE110)", "Stockholm, riksområde (SE11)", "Sverige, hela landet (SE)"."""
    region = nuts_lookup(code)
    if region is None:
        return code
    word = _LEVEL_WORDS.get(region.level)
    name = region_name(code)
    return f"{name}, {word} ({region.code})" if word else f"{name} ({region.code})"


def cpv_label(code: str) -> str:
    """ "Laddare för batterier (31158100)": the Swedish label next to the code."""
    entry = cpv_lookup(code)
    return f"{entry.label_sv} ({entry.code8})" if entry is not None else code


# The vocabulary values whose code is not already a plain word. Values shared by several
# vocabularies ("other", "industry_service") read the same in each.
_TERMS: dict[str, str] = {
    FocusArea.health_care: "health care",
    FocusArea.community_building: "community building",
    FocusArea.industry_4_0: "industry 4.0",
    FocusArea.sustainable_production: "sustainable production",
    FocusArea.test_beds: "test beds",
    Procedure.market_dialogue: "market dialogue",
    Procedure.innovation_partnership: "innovation partnership",
    Procedure.pre_commercial: "pre-commercial procurement",
    Procedure.competitive_dialogue: "competitive dialogue",
    CompanyType.industry_service: "industry service",
    SupplierType.sme: "SME",
    SupplierType.startup: "young firm (start-up)",
}


def term(value: str) -> str:
    """A focus area, procedure, company or supplier type in words: "health care", "SME"."""
    return _TERMS.get(value, value)
