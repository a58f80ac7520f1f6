"""Gauges that count rows: refreshed in the background, at a pace bounded by their cost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from services.infra.logs import get_logger

log = get_logger(__name__)

# A count scans a table (674 ms at 1M suppliers, tests/bench/bench_kpis.py): wait at least
# this many times as long as it took, so a refresh keeps the database busy at most 5 % of the
# time however many rows there are.
COST_RATIO = 20


def pause_s(interval_s: float, took_s: float) -> float:
    return max(interval_s, COST_RATIO * took_s)


async def refresh_forever(kpi: str, refresh: Callable[[], Awaitable[None]], interval_s: float) -> None:
    """Run `refresh` every `interval_s` or slower (see COST_RATIO); a failure is logged and the
    next refresh tried: a KPI is best effort and never takes the service down."""
    while True:
        started = time.perf_counter()
        try:
            await refresh()
        except Exception as exc:
            log.warning("kpi_refresh_failed", kpi=kpi, error=str(exc))
        await asyncio.sleep(pause_s(interval_s, time.perf_counter() - started))
