"""Programme KPI: open needs by focus area, as a Prometheus gauge.

The count comes from the needs schema, refreshed by a background loop: the gauge then
survives restarts and replicas agree (each reports the same totals; dashboards take `max`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping

from prometheus_client import Gauge

from services.contracts.vocab import FocusArea
from services.infra.logs import get_logger
from services.infra.runtime import Runtime

log = get_logger(__name__)

_COUNT_OPEN = "SELECT focus_area, count(*) AS n FROM needs.needs WHERE status = 'open' GROUP BY 1"


def with_zeros(rows: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Counts for every focus area, zero where there is none, so an area whose last need
    closes drops to 0 instead of keeping its last value."""
    counts: dict[str, int] = {area.value: 0 for area in FocusArea}
    for area, n in rows:
        counts[area] = counts.get(area, 0) + n
    return counts


# The count scans the open needs: wait at least this many times as long as it took, so the
# refresh keeps the database busy at most 5% of the time however many needs there are.
COST_RATIO = 20


def pause_s(interval_s: float, took_s: float) -> float:
    return max(interval_s, COST_RATIO * took_s)


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
        while True:
            started = time.perf_counter()
            try:
                await self.refresh()
            except Exception as exc:  # a KPI is best effort; never take the service down
                log.warning("kpi_refresh_failed", kpi="needs_open", error=str(exc))
            await asyncio.sleep(
                pause_s(self.runtime.settings.lag_poll_interval_s, time.perf_counter() - started)
            )


def install(runtime: Runtime) -> NeedKpis:
    """Register the gauge on the service's registry and refresh it while the service runs."""
    kpis = NeedKpis(runtime)
    runtime.background.append(kpis.run)
    return kpis
