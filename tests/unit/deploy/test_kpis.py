"""The business gauges report every category, zero where there is none."""

from __future__ import annotations

from services.contracts.vocab import CompanyType, FocusArea, SupplierSize
from services.infra import kpis
from services.needs import kpis as needs_kpis
from services.suppliers import kpis as supplier_kpis


def test_supplier_counts_cover_every_size_and_company_type() -> None:
    counts = supplier_kpis.with_zeros([("micro", "industrial", 3), ("large", "other", 1)])
    assert len(counts) == len(SupplierSize) * len(CompanyType)
    assert counts[("micro", "industrial")] == 3
    assert counts[("large", "other")] == 1
    assert counts[("small", "industry_service")] == 0
    assert sum(counts.values()) == 4


def test_open_needs_cover_every_focus_area() -> None:
    counts = needs_kpis.with_zeros([("transport", 2), ("health_care", 5)])
    assert set(counts) == {a.value for a in FocusArea}
    assert counts["transport"] == 2 and counts["health_care"] == 5 and counts["skills"] == 0


def test_a_slow_count_waits_longer_than_the_interval() -> None:
    assert kpis.pause_s(5.0, 0.01) == 5.0
    assert kpis.pause_s(5.0, 0.7) == 0.7 * kpis.COST_RATIO
