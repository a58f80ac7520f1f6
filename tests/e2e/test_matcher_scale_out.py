"""Two matcher instances in one consumer group: needs are shared out by partition and each is
matched exactly once; every supplier change reaches both instances."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from services.contracts.topics import MATCHES
from services.infra.devstack import free_port
from tests.conftest import OPERATOR_TOKEN, Stack
from tests.e2e.test_matcher import World, until
from tests.kafka_helpers import bodies, read_until

pytestmark = pytest.mark.e2e

OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
PROCESSES = {"suppliers": "suppliers", "needs": "needs", "matcher-a": "matcher", "matcher-b": "matcher"}
# The cluster's consumer groups are its own: the other modules' matchers never join them.
PREFIX = "scale-" + secrets.token_hex(3)


@pytest.fixture(scope="module")
def cluster(stack: Stack) -> Iterator[dict[str, str]]:
    procs, urls = {}, {}
    for name, service in PROCESSES.items():
        port = free_port()
        env = {**os.environ, **stack.env(), f"INNOMATCH_{service.upper()}_PORT": str(port)}
        env["INNOMATCH_KAFKA_GROUP_PREFIX"] = PREFIX
        if service == "matcher":
            env["INNOMATCH_MATCHER_INSTANCE"] = name
        procs[name] = subprocess.Popen([sys.executable, "-m", "services.cli", "serve", service], env=env)
        urls[name] = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        pending = set(procs)
        while pending:
            assert time.monotonic() < deadline, f"not ready within 120 s: {pending}"
            for name in list(pending):
                assert procs[name].poll() is None, f"{name} exited with {procs[name].returncode}"
                try:
                    if httpx.get(f"{urls[name]}/readyz", timeout=2).status_code == 200:
                        pending.discard(name)
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        yield urls
    finally:
        # One at a time: each leaves the shared group before the next one is asked to.
        stuck = []
        for name, proc in procs.items():
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                stuck.append(name)
        assert not stuck, f"did not stop within 15 s of SIGTERM: {stuck}"


def _partitions(metrics: str) -> set[str]:
    """Partitions of the needs topic that the shared matcher group assigned to this instance."""
    found = set()
    for labels in re.findall(r"^innomatch_consumer_lag\{([^}]*)\}", metrics, re.MULTILINE):
        if f'group="{PREFIX}-matcher"' in labels and 'topic="innomatch.needs.v1"' in labels:
            found.update(re.findall(r'partition="(\d+)"', labels))
    return found


def _count(metrics: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_each_need_is_matched_once_and_both_instances_hold_every_supplier(
    stack: Stack, cluster: dict[str, str]
) -> None:
    urls = {"suppliers": cluster["suppliers"], "needs": cluster["needs"], "matcher": cluster["matcher-a"]}
    world = World(urls)
    http = world.http
    try:

        async def split() -> bool:
            a = _partitions((await http.get(f"{cluster['matcher-a']}/metrics")).text)
            b = _partitions((await http.get(f"{cluster['matcher-b']}/metrics")).text)
            return bool(a) and bool(b) and len(a | b) >= 2

        await until(split, timeout=60)

        before = {
            name: _count(
                (await http.get(f"{cluster[name]}/metrics")).text,
                "innomatch_matcher_scoring_duration_seconds_count",
                direction="need",
            )
            for name in ("matcher-a", "matcher-b")
        }
        word = "zq" + secrets.token_hex(4)
        suppliers = [await world.supplier(keywords=[word], regions=["SE"]) for _ in range(3)]
        ours = {s["id"] for s in suppliers}
        group = await world.group()
        needs = [await world.need(group, description=f"Laddning {word} {i}.") for i in range(24)]

        for need in needs:
            await until(lambda need=need: _all_matched(world, need["id"], ours), timeout=90)

        ids = {n["id"] for n in needs}

        def ours_found(records: list) -> list[dict[str, Any]]:  # type: ignore[type-arg]
            return [
                b
                for b in bodies(records)
                if b.get("subject") in ids and b["data"]["supplier_id"] in ours and b["type"] == "match.found"
            ]

        found = ours_found(
            await read_until(stack.kafka_bootstrap, MATCHES, lambda rs: len(ours_found(rs)) >= 72)
        )
        pairs = Counter((e["data"]["need_id"], e["data"]["supplier_id"]) for e in found)
        assert len(pairs) == 24 * 3
        assert set(pairs.values()) == {1}, "a pair was found twice"

        after = {
            name: _count(
                (await http.get(f"{cluster[name]}/metrics")).text,
                "innomatch_matcher_scoring_duration_seconds_count",
                direction="need",
            )
            for name in ("matcher-a", "matcher-b")
        }
        ranked = {name: after[name] - before[name] for name in after}
        assert ranked["matcher-a"] > 0 and ranked["matcher-b"] > 0, ranked
        assert sum(ranked.values()) >= 24

        # A supplier change reaches both instances: each explains the pair with the new TRL.
        supplier = suppliers[0]
        changed = await http.patch(
            f"{cluster['suppliers']}/v1/suppliers/{supplier['id']}",
            json={"capabilities": {"trl": 9}},
            headers={"Authorization": f"Bearer {supplier['token']}"},
        )
        assert changed.status_code == 200, changed.text
        for name in ("matcher-a", "matcher-b"):

            async def sees_trl_9(name: str = name) -> bool:
                got = await http.get(
                    f"{cluster[name]}/v1/needs/{needs[0]['id']}/matches/{supplier['id']}", headers=OPERATOR
                )
                return got.status_code == 200 and got.json()["explanation"]["trl_verdict"].startswith("TRL 9")

            await until(sees_trl_9)

        # Needs first, suppliers after: each instance scores a changed supplier only against
        # the needs of the partitions it owns, and every pair is still decided once.
        scored_before = {
            name: _count(
                (await http.get(f"{cluster[name]}/metrics")).text,
                "innomatch_matcher_candidates_scored_total",
                direction="supplier",
            )
            for name in ("matcher-a", "matcher-b")
        }
        later = "zq" + secrets.token_hex(4)
        early_needs = [await world.need(group, description=f"Laddning {later} {i}.") for i in range(12)]
        early_ids = {n["id"] for n in early_needs}
        for need in early_needs:
            await until(lambda need=need: _known(http, cluster, need["id"]), timeout=90)
        newcomers = [await world.supplier(keywords=[later], regions=["SE"]) for _ in range(3)]
        new_ids = {s["id"] for s in newcomers}
        for need in early_needs:
            await until(lambda need=need: _all_matched(world, need["id"], new_ids), timeout=90)

        def newcomers_found(records: list) -> list[dict[str, Any]]:  # type: ignore[type-arg]
            return [
                b
                for b in bodies(records)
                if b.get("subject") in early_ids
                and b["data"]["supplier_id"] in new_ids
                and b["type"] == "match.found"
            ]

        found = newcomers_found(
            await read_until(stack.kafka_bootstrap, MATCHES, lambda rs: len(newcomers_found(rs)) >= 36)
        )
        pairs = Counter((e["data"]["need_id"], e["data"]["supplier_id"]) for e in found)
        assert len(pairs) == 12 * 3 and set(pairs.values()) == {1}
        scored = {
            name: _count(
                (await http.get(f"{cluster[name]}/metrics")).text,
                "innomatch_matcher_candidates_scored_total",
                direction="supplier",
            )
            - scored_before[name]
            for name in ("matcher-a", "matcher-b")
        }
        # Each instance scored the newcomers against its own share of the open needs only.
        held = re.search(
            r"^innomatch_matcher_open_needs ([0-9.e+]+)$",
            (await http.get(f"{cluster['matcher-a']}/metrics")).text,
            re.MULTILINE,
        )
        assert held is not None
        open_needs = float(held.group(1))
        assert all(0 < count < 3 * open_needs for count in scored.values()), (scored, open_needs)
        assert sum(scored.values()) >= 3 * open_needs, (scored, open_needs)  # every need at least once
    finally:
        await http.aclose()


async def _known(http: httpx.AsyncClient, cluster: dict[str, str], need_id: str) -> bool:
    """Whether both instances hold the need (so a supplier registered now meets it)."""
    for name in ("matcher-a", "matcher-b"):
        got = await http.get(f"{cluster[name]}/v1/needs/{need_id}/matches", headers=OPERATOR)
        if got.status_code != 200:
            return False
    return True


async def _all_matched(world: World, need_id: str, suppliers: set[str]) -> bool:
    return suppliers <= {m["supplier_id"] for m in await world.matches(need_id)}
