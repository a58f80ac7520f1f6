"""Programme KPI: open needs by focus area, as a Prometheus gauge.

The count comes from the needs schema, refreshed by a background loop: the gauge then
survives restarts and replicas agree (each reports the same totals; dashboards take `max`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import Gauge

from services.contracts.vocab import FocusArea
from services.infra.kpis import refresh_forever
from services.infra.runtime import Runtime

_COUNT_OPEN = "SELECT focus_area, count(*) AS n FROM needs.needs WHERE status = 'open' GROUP BY 1"


def with_zeros(rows: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Counts for every focus area, zero where there is none, so an area whose last need
    closes drops to 0 instead of keeping its last value."""
    counts: dict[str, int] = {area.value: 0 for area in FocusArea}
    for area, n in rows:
        counts[area] = counts.get(area, 0) + n
    return counts


class NeedKpis:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.open = Gauge(
            "innomatch_needs_open",
            "Open needs, by focus area.",
            ["service", "focus_area"],
            registry=runtime.metrics.registry,
        )

    def publish(self, counts: Mapping[str, int]) -> None:
        for area, n in counts.items():
            self.open.labels(self.runtime.name, area).set(n)

    async def refresh(self) -> None:
        async with self.runtime.pool.acquire() as conn:
            rows = await conn.fetch(_COUNT_OPEN)
        self.publish(with_zeros((r["focus_area"], r["n"]) for r in rows))

    async def run(self) -> None:
        await refresh_forever("needs_open", self.refresh, self.runtime.settings.lag_poll_interval_s)


def install(runtime: Runtime) -> NeedKpis:
    """Register the gauge on the service's registry and refresh it while the service runs."""
    kpis = NeedKpis(runtime)
    runtime.background.append(kpis.run)
    return kpis
