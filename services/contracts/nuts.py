"""NUTS 2021 regions of Sweden: SE (all of Sweden), 3 NUTS-1, 8 NUTS-2 and 21 NUTS-3 (the län)."""

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

__all__ = ["NutsRegion", "all_nuts", "normalize_nuts", "nuts_contains", "nuts_lookup"]


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
