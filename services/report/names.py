"""Names a reader of the report knows, next to the codes the events carry: län and
riksområden for NUTS codes, Swedish CPV labels. Pure lookups in the reference data
(`services/contracts/data`: nuts_2021_se.csv, kommuner_se.csv, cpv_2008.csv).
"""

from __future__ import annotations

import csv
from functools import cache
from importlib.resources import files

from services.contracts.cpv import cpv_lookup
from services.contracts.nuts import nuts_lookup

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
