"""One scenario of a suite that breaks a running stack: the load plan sent through the public
APIs (`load.py`) while a fault is injected, then the outcome compared with the reference run
(`observe.py`). Shared by the fault-injection suite (one process per service, one broker) and
the topology test (`tests/topology/`: three brokers, two replicas of every service).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from services.contracts.topics import BUYER_GROUPS, MATCHES, NEEDS, SUPPLIERS, dlq
from tests.faults.load import COUNTIES, LoadRunner, Plan, World
from tests.faults.observe import Pair, compare, end_offsets, settle
from tests.faults.processes import Cluster, KafkaBroker, PostgresControl, ServiceProcess
from tests.receivers import WebhookReceiver


@dataclass
class Harness:
    cluster: Cluster
    postgres: PostgresControl
    database_url: str
    bootstrap: str
    kafka: KafkaBroker | None  # set when the suite may stop and start the broker
    receiver: WebhookReceiver
    env: dict[str, str]
    logs: Path
    operator_token: str

    @property
    def operator(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.operator_token}"}

    def service_env(self, name: str, service: str) -> dict[str, str]:
        env = dict(self.env)
        # The name in pg_stat_activity, so a fault can pick one service's connections.
        env["INNOMATCH_DATABASE_URL"] = f"{self.database_url}?application_name=faults-{name}"
        if service == "matcher":
            env["INNOMATCH_MATCHER_INSTANCE"] = f"faults-{name}"
        return env

    def process(self, name: str, service: str) -> ServiceProcess:
        return ServiceProcess(name, service, self.service_env(name, service), self.logs / f"{name}.log")


Fault = Callable[[Harness], Awaitable[float | None]]  # returns the recovery time


def suite_env(operator_token: str, group_prefix: str) -> dict[str, str]:
    """Settings of the services under test, beside the broker and database addresses."""
    return {
        "INNOMATCH_MODE": "development",
        "INNOMATCH_OPERATOR_TOKEN": operator_token,
        "INNOMATCH_KAFKA_FETCH_MAX_WAIT_MS": "20",
        "INNOMATCH_KAFKA_GROUP_PREFIX": group_prefix,
        "INNOMATCH_OUTBOX_POLL_INTERVAL_S": "0.5",
        "INNOMATCH_LAG_POLL_INTERVAL_S": "0.5",
        "INNOMATCH_REGISTRATION_RATE_PER_MINUTE": "0",
        "INNOMATCH_WEBHOOK_ALLOW_PRIVATE": "true",
        # Every pair above the threshold is kept: with a top-K cut, ties between suppliers
        # of one template would be broken by their ids, which differ from run to run.
        "INNOMATCH_MATCHER_TOP_K": "1000",
        # Alerts a killed notifier had claimed go out again when their lease runs out.
        "INNOMATCH_NOTIFIER_LEASE_S": "15",
        "INNOMATCH_LOG_FORMAT": "json",
        "INNOMATCH_LOG_LEVEL": "INFO",
    }


@dataclass
class Scenarios:
    """The runs of one suite: the same plan each time, each in two counties of its own."""

    plan: Plan
    fault_at: int  # supplier registrations sent when the fault is injected
    rows: list[dict[str, Any]] = field(default_factory=list)
    reference: set[Pair] | None = None  # the reference run's matches of open needs
    _numbers: itertools.count[int] = field(default_factory=itertools.count)

    async def run(
        self, h: Harness, name: str, fault: Fault | None = None, at: int | None = None
    ) -> dict[str, Any]:
        """One run of the plan; the first that ends becomes the reference of the others."""
        at = self.fault_at if at is None else at
        k = next(self._numbers)
        world = World((COUNTIES[2 * k], COUNTIES[2 * k + 1]))
        # Each request goes to a running process of its service, in turn (a load balancer).
        runner = LoadRunner(
            h.cluster.any_url, h.operator_token, h.database_url, h.receiver.url, scenario=k + 1
        )
        dlqs = [dlq(t) for t in (SUPPLIERS, NEEDS, BUYER_GROUPS, MATCHES)]
        dlq_before = await end_offsets(h.bootstrap, dlqs)
        injected: list[asyncio.Task[float | None]] = []

        async def progress(sent: int) -> None:
            if fault is not None and sent == at and not injected:
                injected.append(asyncio.create_task(fault(h)))

        runner.progress = progress
        began = time.monotonic()
        await runner.run(world, self.plan)
        load_s = time.monotonic() - began
        recovery = await injected[0] if injected else None
        expected = self.reference
        matcher_url = h.cluster.url("matcher")
        urls = [p.url for p in h.cluster.processes.values() if p.running()]
        # A run that has not reached the expected state waits out the notifier's lease (15 s
        # in these suites) before it counts what is missing as lost.
        quiet_s = 10 if expected is None else 20
        async with httpx.AsyncClient(timeout=30) as http:
            seen, settle_s = await settle(
                http, matcher_url, urls, h.operator, self.plan, world, h.receiver, expected, quiet_s=quiet_s
            )
        if expected is None:  # the reference run: its own open needs' matches are the expectation
            expected = {p for p in seen.matches if p[0] not in world.closed}
            self.reference = expected
        verdict = compare(self.plan, world, expected, seen)
        dlq_after = await end_offsets(h.bootstrap, dlqs)
        row = {
            "scenario": name,
            "events": world.events,
            "lost": verdict.lost,
            "extra": verdict.extra + seen.foreign,
            "stale": sum(1 for i, _ in verdict.extra_matches if i in world.closed),
            "duplicated": verdict.duplicated_alerts + seen.repeated,
            "resent": seen.resent,
            "dlq": sum(dlq_after.values()) - sum(dlq_before.values()),
            "recovery_s": round(recovery, 1) if recovery is not None else None,
            "settle_s": round(settle_s, 1),
            "load_s": round(load_s, 1),
            "events_per_s": round(world.events / load_s, 1),
            "matches": len(seen.matches),
            "alerts": sum(seen.alerts.values()),
            "closed_needs": len(world.closed),
            "retries": world.retries,
            "looked_up": world.looked_up,
            "lost_matches": verdict.lost_matches[:20],
            "extra_matches": verdict.extra_matches[:20],
            "lost_alerts": len(verdict.lost_alerts),
            "extra_alerts": len(verdict.extra_alerts),
            "foreign_matches": seen.foreign,
        }
        # The signature of a supplier event the matcher recorded but never ranked: each supplier
        # with a lost match lost all of them, and the lost alerts are exactly theirs (two each).
        losers = {j for _, j in verdict.lost_matches}
        row["never_ranked"] = sorted(losers)[:20]
        row["only_never_ranked"] = bool(losers) and (
            {p for p in expected if p[0] not in world.closed and p[1] in losers} == set(verdict.lost_matches)
            and len(verdict.lost_alerts) == 2 * len(verdict.lost_matches)
        )
        stale = [p for p in verdict.extra_matches if p[0] in world.closed]
        row["stale_evidence"] = await _stale_evidence(h, world, stale[:3])
        self.rows.append(row)
        print(json.dumps(row))
        return row


async def _stale_evidence(h: Harness, world: World, pairs: list[Pair]) -> list[dict[str, Any]]:
    """For an active match of a closed need: when the match was written, and when the needs
    service and the matcher's projection closed the need."""
    if not pairs:
        return []
    conn = await asyncpg.connect(h.database_url)
    try:
        out = []
        for i, j in pairs:
            need_id, supplier_id = world.needs[i], world.suppliers[j]
            row = await conn.fetchrow(
                "SELECT m.version, m.status, m.updated_at AS match_written, "
                "  p.status AS projected_status, n.updated_at AS need_closed "
                "FROM matcher.matches m JOIN matcher.needs p ON p.id = m.need_id "
                "JOIN needs.needs n ON n.id::text = m.need_id "
                "WHERE m.need_id = $1 AND m.supplier_id = $2",
                need_id,
                supplier_id,
            )
            if row is not None:
                found = dict(row)
                lag = (found["match_written"] - found["need_closed"]).total_seconds()
                found["match_written_after_close_s"] = round(lag, 3)
                out.append({k: str(v) for k, v in found.items()})
        return out
    finally:
        await conn.close()


STALE_MATCH_BUG = (
    "known matcher bug: Matcher.on_supplier_events ranks a supplier against the open needs "
    "held in memory and writes the matches without checking or locking the need's stored "
    "status; when it runs before this process has applied a need's close to memory, or "
    "after the close's transaction read the need's active rows, it inserts the match (v1) or "
    "finds it again after the close withdrew it (v3) for a need already closed in "
    "matcher.needs (issue 15, deliverable 3)"
)


LOST_RANKING_BUG = (
    "known bugs: a batch that fails after the matcher updated its memory (PostgreSQL stopping "
    "or a connection terminated mid-batch) is replayed and loses its rankings. (1) asyncpg's "
    "InterfaceError 'cannot switch to state N; another operation (M) "
    "is in progress', raised on a connection whose backend was terminated, is not recognised "
    "as a lost connection (services/infra/faults.py _CLOSED), so with the database answering "
    "the batch is judged the events' own and applied one event at a time; a retry after a "
    "transient fault replays it too. (2) "
    "Matcher.on_supplier_events raises supplier_versions and the engine's profiles before "
    "its transaction commits, so the replay finds every supplier unchanged, returns before "
    "ranking, and the inbox records the events as processed: their matches and alerts are "
    "never made (issue 15, deliverable 2)"
)


def assert_clean(row: dict[str, Any], dlq: int = 0) -> None:
    """Nothing lost, nothing extra, nothing duplicated, no dead letters. What only the two
    known matcher bugs explain (suppliers never ranked, active matches left on closed needs)
    makes an expected failure; anything else fails."""
    assert (row["extra"] - row["stale"], row["duplicated"], row["dlq"]) == (0, 0, dlq), row
    if row["lost"]:
        assert row["only_never_ranked"], row
        pytest.xfail(f"{row['lost']} matches and alerts of suppliers never ranked: {LOST_RANKING_BUG}")
    if row["stale"]:
        pytest.xfail(f"{row['stale']} active matches of closed needs: {STALE_MATCH_BUG}")


COLUMNS = [
    ("scenario", "scenario", 24),
    ("events", "events", 7),
    ("lost", "lost", 5),
    ("extra", "extra", 6),
    ("stale", "of which on closed needs", 24),
    ("duplicated", "duplicated", 10),
    ("resent", "resent", 7),
    ("dlq", "dlq", 4),
    ("recovery_s", "recovery (s)", 12),
    ("settle_s", "settle (s)", 10),
]


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str, int]] = COLUMNS) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        return f"{v:.1f}" if isinstance(v, float) else str(v)

    head = "| " + " | ".join(title for _, title, _ in columns) + " |"
    rule = "| " + " | ".join("---" for _ in columns) + " |"
    body = ["| " + " | ".join(cell(r.get(key)) for key, _, _ in columns) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def write_results(
    terminalreporter: Any,
    title: str,
    results: Path,
    prefix: str,
    rows: list[dict[str, Any]],
    columns: list[tuple[str, str, int]] = COLUMNS,
    **extra: Any,
) -> None:
    """The table at the end of the pytest run, and `results/<prefix>-<time>.json` and
    `results/latest.json` with every row's details."""
    if not rows:
        return
    terminalreporter.section(title)
    terminalreporter.write_line(table(rows, columns))
    results.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    payload = json.dumps({"at": stamp, **extra, "rows": rows}, indent=2)
    (results / f"{prefix}-{stamp}.json").write_text(payload)
    (results / "latest.json").write_text(payload)
    terminalreporter.write_line(f"written to {results / 'latest.json'}")
