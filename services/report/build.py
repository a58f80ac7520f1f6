"""Put the report together: read the sources, fold, count. The I/O lives in source.py."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import httpx

from services.report.aggregate import Authority, build_report, fold
from services.report.model import Report
from services.report.source import fetch_authorities, read_topics
from services.report.verdicts import labelled_set


async def make_report(
    bootstrap: str,
    *,
    since: datetime | None,
    needs_url: str | None = None,
    operator_token: str | None = None,
    fetch_max_wait_ms: int = 50,
) -> Report:
    """The report over everything on the topics now; authorities too when the needs URL and
    the operator token are given and the needs service answers."""
    now = datetime.now(UTC)
    read = await read_topics(bootstrap, fetch_max_wait_ms=fetch_max_wait_ms)
    authorities: list[Authority] | None = None
    if needs_url and operator_token:
        try:
            authorities = await fetch_authorities(needs_url, operator_token)
        except httpx.HTTPError as exc:
            # The rest of the report stands on the events alone; say what is missing.
            print(f"innomatch report: authorities left out: {exc}", file=sys.stderr)
    return build_report(
        fold(read.events), since=since, now=now, authorities=authorities, skipped=read.skipped
    )


async def make_labelled_set(bootstrap: str, *, fetch_max_wait_ms: int = 50) -> dict[str, Any]:
    """The buyers' verdicts on the topics now, as a labelled set (see `verdicts`)."""
    read = await read_topics(bootstrap, fetch_max_wait_ms=fetch_max_wait_ms)
    return labelled_set(fold(read.events))


def parse_since(text: str) -> datetime:
    """A date (midnight UTC) or an ISO date-time (UTC when it names no zone)."""
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(
            f"--since {text!r} is not a date like 2026-01-31 or 2026-01-31T08:00:00+01:00"
        ) from exc
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
