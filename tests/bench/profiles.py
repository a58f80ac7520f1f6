"""Realistic synthetic suppliers and needs for the matcher benchmarks.

Real CPV codes (drawn from the divisions innovation procurement uses most), texts in Swedish
or English built from the codes' own labels plus domain words and filler, real NUTS regions
weighted towards the populous ones, TRL 3-9. Seeded, so runs are comparable.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime

from services.contracts.cpv import all_cpv
from services.contracts.events import Capabilities, NeedState, SupplierState
from services.contracts.nuts import all_nuts
from services.contracts.orgnr import luhn_check_digit

# Divisions (first two digits) and how often suppliers offer something in them.
_DIVISIONS = {
    "31": 8,
    "32": 6,
    "33": 10,
    "34": 8,
    "35": 2,
    "38": 6,
    "42": 5,
    "45": 12,
    "48": 10,
    "50": 4,
    "71": 10,
    "72": 10,
    "73": 5,
    "79": 4,
    "80": 3,
    "85": 5,
    "90": 8,
    "09": 3,
    "44": 4,
    "60": 3,
}
_SV_TEXT = (
    "innovativ hållbar digital smart automatiserad energieffektiv uppkopplad sensorer plattform "
    "tjänst drift underhåll analys laddning elbussar vätgas solceller avlopp dagvatten trähus "
    "robotar svetsning maskininlärning vård omsorg hemtjänst sjukhus logistik drönare inspektion "
    "belysning trafik kollektivtrafik säkerhet återvinning textil värme kyla batterier"
)
_SV_WORDS = tuple(_SV_TEXT.split())
_EN_TEXT = (
    "innovative sustainable digital smart automated energy-efficient connected sensors platform "
    "service operation maintenance analytics charging electric buses hydrogen solar wastewater "
    "stormwater timber robots welding machine learning care elderly hospital logistics drones "
    "inspection lighting traffic public transport safety recycling textile heating cooling batteries"
)
_EN_WORDS = tuple(_EN_TEXT.split())
_FOCUS = ["transport", "health_care", "community_building", "industry_4_0", "sustainable_production"]
_SIZES = ["micro", "small", "medium", "large"]
_TYPES = ["industrial", "industry_service", "other"]
_NOW = datetime(2026, 6, 1, tzinfo=UTC)


class Generator:
    def __init__(self, seed: int = 42) -> None:
        self.rng = random.Random(seed)
        by_division: dict[str, list[str]] = {}
        labels: dict[str, tuple[str, str]] = {}
        for entry in all_cpv():
            if entry.code8[:2] in _DIVISIONS:
                by_division.setdefault(entry.code8[:2], []).append(entry.code8)
                labels[entry.code8] = (entry.label_sv, entry.label_en)
        self.codes = by_division
        self.labels = labels
        self.divisions = list(_DIVISIONS)
        self.division_weights = list(_DIVISIONS.values())
        regions = [r.code for r in all_nuts()]
        # Most suppliers serve a county or a large region; some all of Sweden.
        self.regions = regions
        self.region_weights = [{2: 5, 3: 3, 4: 2}.get(len(r), 1) for r in regions]
        self.serial = 0

    def _codes(self, n: int) -> list[str]:
        division = self.rng.choices(self.divisions, self.division_weights)[0]
        pool = self.codes[division]
        anchor = self.rng.randrange(len(pool))
        # Neighbouring codes in the list are related: offers cluster within a branch.
        picks = {pool[min(len(pool) - 1, max(0, anchor + self.rng.randint(-6, 6)))] for _ in range(n)}
        return sorted(picks)

    def _text(self, codes: list[str], swedish: bool, words: int) -> str:
        vocabulary = _SV_WORDS if swedish else _EN_WORDS
        label = " ".join(self.labels[c][0 if swedish else 1] for c in codes[:2])
        extra = " ".join(self.rng.choice(vocabulary) for _ in range(words))
        return f"{label}. {extra}."

    def _org_number(self) -> str:
        self.serial += 1
        first9 = f"556{self.serial % 1_000_000:06d}"
        return f"{first9[:6]}-{first9[6:]}{luhn_check_digit(first9)}"

    def supplier(self) -> SupplierState:
        self.serial += 1
        codes = self._codes(self.rng.randint(1, 5))
        swedish = self.rng.random() < 0.6
        regions = self.rng.choices(self.regions, self.region_weights, k=self.rng.randint(1, 3))
        return SupplierState(
            id=f"s{self.serial:08d}",
            org_number=self._org_number(),
            name=f"Bolag {self.serial} AB",
            size=self.rng.choice(_SIZES),
            company_type=self.rng.choice(_TYPES),
            founded_year=self.rng.randint(1950, 2026),
            contact_email=f"info{self.serial}@example.se",
            capabilities=Capabilities(
                cpv_codes=codes,
                focus_areas=self.rng.sample(_FOCUS, self.rng.randint(1, 2)),
                keywords=self.rng.sample(_SV_WORDS if swedish else _EN_WORDS, 4),
                description=self._text(codes, swedish, self.rng.randint(10, 30)),
                regions=list(dict.fromkeys(regions)),
                trl=self.rng.randint(3, 9),
            ),
            version=1,
            created_at=_NOW,
            updated_at=_NOW,
        )

    def need(self) -> NeedState:
        self.serial += 1
        codes = self._codes(self.rng.randint(1, 3))
        swedish = self.rng.random() < 0.7
        return NeedState.model_validate(
            {
                "id": f"n{self.serial:08d}",
                "buyer_group_id": "g1",
                "title": self._text(codes, swedish, 3)[:200],
                "description": self._text(codes, swedish, self.rng.randint(20, 60)),
                "cpv_codes": codes,
                "focus_area": self.rng.choice(_FOCUS),
                "regions": [self.rng.choices(self.regions, self.region_weights)[0]],
                "min_trl": self.rng.randint(4, 8),
                "preferred_supplier_types": self.rng.choice([[], [], ["sme"], ["startup"]]),
                "procedure": "innovation_partnership",
                "respond_by": date(2027, 6, 30),
                "status": "open",
                "version": 1,
                "published_at": _NOW,
                "updated_at": _NOW,
            }
        )

    def suppliers(self, n: int) -> Iterator[SupplierState]:
        for _ in range(n):
            yield self.supplier()

    def needs(self, n: int) -> Iterator[NeedState]:
        for _ in range(n):
            yield self.need()
