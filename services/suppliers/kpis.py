"""Programme KPI: registered suppliers by size and company type, as a Prometheus gauge.

The count comes from the suppliers schema, refreshed by a background loop: the gauge then
survives restarts and replicas agree (each reports the same totals; dashboards take `max`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import Gauge

from services.contracts.vocab import CompanyType, SupplierSize
from services.infra.kpis import refresh_forever
from services.infra.runtime import Runtime

Key = tuple[str, str]

_COUNT_LIVE = (
    "SELECT profile->>'size' AS size, profile->>'company_type' AS company_type, count(*) AS n "
    "FROM suppliers.suppliers WHERE removed_at IS NULL GROUP BY 1, 2"
)


def with_zeros(rows: Iterable[tuple[str, str, int]]) -> dict[Key, int]:
    """Counts for every size and company type, zero where there is none, so a category
    that empties drops to 0 instead of keeping its last value."""
    counts: dict[Key, int] = {(s.value, t.value): 0 for s in SupplierSize for t in CompanyType}
    for size, company_type, n in rows:
        counts[(size, company_type)] = counts.get((size, company_type), 0) + n
    return counts


class SupplierKpis:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.registered = Gauge(
            "innomatch_suppliers_registered",
            "Registered (not removed) suppliers, by size and company type.",
            ["service", "size", "company_type"],
            registry=runtime.metrics.registry,
        )

    def publish(self, counts: Mapping[Key, int]) -> None:
        for (size, company_type), n in counts.items():
            self.registered.labels(self.runtime.name, size, company_type).set(n)

    async def refresh(self) -> None:
        async with self.runtime.pool.acquire() as conn:
            rows = await conn.fetch(_COUNT_LIVE)
        self.publish(with_zeros((r["size"], r["company_type"], r["n"]) for r in rows))

    async def run(self) -> None:
        await refresh_forever("suppliers_registered", self.refresh, self.runtime.settings.lag_poll_interval_s)


def install(runtime: Runtime) -> SupplierKpis:
    """Register the gauge on the service's registry and refresh it while the service runs."""
    kpis = SupplierKpis(runtime)
    runtime.background.append(kpis.run)
    return kpis
