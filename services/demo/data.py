"""The demo data set (dataset.json beside this module): 15 authorities at all three
levels, four buyer groups, about 50 suppliers and 10 needs in transport, health care and
community building, in Swedish and English.

Names are realistic; organisation numbers are drawn per run (see loader.py), so nothing
here claims to be a real organisation's number. CPV codes are CPV 2008, regions NUTS 2021.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, TypeVar


@dataclass(frozen=True)
class DemoAuthority:
    key: str
    name: str
    level: str  # national | regional | local
    region: str


@dataclass(frozen=True)
class DemoGroup:
    key: str
    name: str
    focus_area: str
    members: tuple[str, ...]  # authority keys
    language: str


@dataclass(frozen=True)
class DemoSupplier:
    name: str
    focus_area: str
    cpv_codes: tuple[str, ...]
    keywords: tuple[str, ...]
    description: str
    language: str
    size: str
    company_type: str
    founded_year: int
    regions: tuple[str, ...]
    trl: int


@dataclass(frozen=True)
class DemoNeed:
    group: str  # buyer group key
    title: str
    description: str
    cpv_codes: tuple[str, ...]
    focus_area: str
    regions: tuple[str, ...]
    min_trl: int
    procedure: str
    respond_in_days: int
    budget_sek: int
    preferred_supplier_types: tuple[str, ...] = ()
    cosigned_by: tuple[str, ...] = ()  # buyer group keys


T = TypeVar("T")


def _rows(cls: type[T], rows: list[dict[str, Any]]) -> tuple[T, ...]:
    # Lists in the JSON become tuples, so the data set stays immutable.
    return tuple(cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in row.items()}) for row in rows)


_DATA = json.loads(files("services.demo").joinpath("dataset.json").read_text("utf-8"))

AUTHORITIES: tuple[DemoAuthority, ...] = _rows(DemoAuthority, _DATA["authorities"])
GROUPS: tuple[DemoGroup, ...] = _rows(DemoGroup, _DATA["groups"])
SUPPLIERS: tuple[DemoSupplier, ...] = _rows(DemoSupplier, _DATA["suppliers"])
NEEDS: tuple[DemoNeed, ...] = _rows(DemoNeed, _DATA["needs"])
