"""NUTS 2021 regions of Sweden: SE (all of Sweden), 3 NUTS-1, 8 NUTS-2 and 21 NUTS-3 (the län),
and their names for a reader in Swedish or English (`region_name`), also of a län or kommun
by its code."""

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

__all__ = ["NutsRegion", "all_nuts", "normalize_nuts", "nuts_contains", "nuts_lookup", "region_name"]


@dataclass(frozen=True)
class NutsRegion:
    code: str
    name: str
    level: int
    parent: str | None
    # The two-digit län code, for NUTS-3 regions only.
    lan_code: str | None = None


@cache
def _table() -> tuple[NutsRegion, ...]:
    text = files("services.contracts").joinpath("data/nuts_2021_se.csv").read_text("utf-8")
    return tuple(
        NutsRegion(
            code=row["nuts_code"],
            name=row["name_latn"],
            level=int(row["level"]),
            parent=row["parent"] or None,
            lan_code=row["lan_kod"] or None,
        )
        for row in csv.DictReader(text.splitlines())
    )


@cache
def _by_code() -> dict[str, NutsRegion]:
    return {region.code: region for region in _table()}


def all_nuts() -> Sequence[NutsRegion]:
    """Every Swedish region, in code order (SE first)."""
    return _table()


def nuts_lookup(code: str) -> NutsRegion | None:
    return _by_code().get(code.strip().upper())


def normalize_nuts(code: str) -> str:
    """The canonical (upper-case) code; ValueError when it is not a Swedish region."""
    text = code.strip().upper()
    if text not in _by_code():
        shown = text if text.isalnum() and len(text) <= 10 else repr(code[:20])
        raise ValueError(f"region {shown} is not a Swedish NUTS code")
    return text


def nuts_contains(outer: str, inner: str) -> bool:
    """Whether region inner lies within region outer (or is it).

    NUTS codes nest by prefix: SE1 contains SE11, which contains SE110.
    """
    return normalize_nuts(inner).startswith(normalize_nuts(outer))


# Eurostat's English names of the regions above the län.
_ENGLISH = {
    "SE": "Sweden",
    "SE1": "Eastern Sweden",
    "SE2": "Southern Sweden",
    "SE3": "Northern Sweden",
    "SE11": "Stockholm",
    "SE12": "East Middle Sweden",
    "SE21": "Småland with the islands",
    "SE22": "South Sweden",
    "SE23": "West Sweden",
    "SE31": "North Middle Sweden",
    "SE32": "Middle Norrland",
    "SE33": "Upper Norrland",
}


@cache
def _kommuner() -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """kommun code -> (name, official name), län code -> län name ("Stockholms län")."""
    text = files("services.contracts").joinpath("data/kommuner_se.csv").read_text("utf-8")
    kommuner: dict[str, tuple[str, str]] = {}
    lan: dict[str, str] = {}
    for row in csv.DictReader(text.splitlines()):
        kommuner[row["kommun_kod"]] = (row["kommun"], row["kommun_officiellt_namn"])
        lan[row["lan_kod"]] = row["lan"]
    return kommuner, lan


def _county(lan_name: str) -> str:
    """ "Stockholms län" -> "Stockholm County", "Skåne län" -> "Skåne County"."""
    base = lan_name.removesuffix(" län")
    # The genitive s of the Swedish name; no län's own name ends in s.
    return f"{base.removesuffix('s')} County"


def region_name(code: str, language: str = "sv") -> str:
    """A region's name for a reader: a NUTS code ("SE232" -> "Västra Götalands län", in English
    "Västra Götaland County"; "SE23" -> "Västsverige" / "West Sweden"; "SE" -> "Sverige" /
    "Sweden"), a län code ("14") or a kommun code ("1480" -> "Göteborgs kommun" / "Göteborg
    Municipality"). The code itself when it is none of these."""
    text = code.strip().upper()
    english = language == "en"
    region = nuts_lookup(text)
    if region is not None:
        if region.level == 3:
            return _county(region.name) if english else region.name
        return _ENGLISH.get(region.code, region.name) if english else region.name
    kommuner, lan = _kommuner()
    if text in kommuner:
        name, official = kommuner[text]
        return f"{name} Municipality" if english else official
    if text in lan:
        return _county(lan[text]) if english else lan[text]
    return code
