"""The matcher through the running services: suppliers and needs created over HTTP become
ranked, explained matches, match events, updates and withdrawals."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from services.contracts.events import match_id
from services.contracts.topics import MATCHES
from tests.conftest import OPERATOR_TOKEN, Stack
from tests.factories import authority, need, registration
from tests.kafka_helpers import bodies, read_until

pytestmark = pytest.mark.e2e

OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 60) -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


class World:
    """Creates suppliers, buyer groups and needs through the public APIs."""

    def __init__(self, urls: dict[str, str]) -> None:
        self.urls = urls
        self.http = httpx.AsyncClient(timeout=30)

    async def supplier(self, **caps: Any) -> dict[str, Any]:
        capabilities = {**registration()["capabilities"], **caps}
        tag = secrets.token_hex(3)
        body = registration(name=f"Leverantör {tag} AB", capabilities=capabilities)
        created = await self.http.post(f"{self.urls['suppliers']}/v1/suppliers", json=body)
        assert created.status_code == 201, created.text
        result: dict[str, Any] = created.json()
        return result

    async def group(self) -> dict[str, Any]:
        made = await self.http.post(
            f"{self.urls['needs']}/v1/authorities", json=authority(), headers=OPERATOR
        )
        assert made.status_code == 201, made.text
        body = {
            "name": "Elbussgruppen",
            "focus_area": "transport",
            "member_authority_ids": [made.json()["id"]],
        }
        created = await self.http.post(f"{self.urls['needs']}/v1/buyer-groups", json=body, headers=OPERATOR)
        assert created.status_code == 201, created.text
        result: dict[str, Any] = created.json()
        return result

    async def need(self, group: dict[str, Any], **overrides: Any) -> dict[str, Any]:
        created = await self.http.post(
            f"{self.urls['needs']}/v1/buyer-groups/{group['id']}/needs",
            json=need(**overrides),
            headers=bearer(group["token"]),
        )
        assert created.status_code == 201, created.text
        result: dict[str, Any] = created.json()
        return result

    async def matches(self, need_id: str, headers: dict[str, str] = OPERATOR) -> list[dict[str, Any]]:
        got = await self.http.get(f"{self.urls['matcher']}/v1/needs/{need_id}/matches", headers=headers)
        if got.status_code == 404:
            return []
        assert got.status_code == 200, got.text
        result: list[dict[str, Any]] = got.json()["matches"]
        return result


@pytest.fixture
async def world(services: dict[str, str]) -> Any:
    w = World(services)
    try:
        yield w
    finally:
        await w.http.aclose()


async def match_events(
    stack: Stack, need_id: str, done: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    def mine(records: list) -> list[dict[str, Any]]:  # type: ignore[type-arg]
        return [b for b in bodies(records) if b.get("subject") == need_id]

    return mine(await read_until(stack.kafka_bootstrap, MATCHES, lambda rs: done(mine(rs))))


async def test_a_need_gets_ranked_explained_matches_within_its_constraints(
    stack: Stack, world: World
) -> None:
    word = "zq" + secrets.token_hex(4)
    good_sv = await world.supplier(
        cpv_codes=["31158100"],
        keywords=["laddstolpar", word],
        description="Laddinfrastruktur för elbussar.",
        regions=["SE1"],
        trl=8,
    )
    good_en = await world.supplier(
        cpv_codes=["31158000"],
        keywords=["charging"],
        description="Charging stations for electric buses.",
        regions=["SE"],
        trl=7,
        focus_areas=["transport"],
    )
    elsewhere = await world.supplier(regions=["SE2"], trl=9)  # the same offer, in the wrong region
    immature = await world.supplier(regions=["SE12"], trl=3)  # below the need's min_trl
    unrelated = await world.supplier(
        cpv_codes=["90911200"],
        keywords=["städning"],
        description="Städning av kontor.",
        focus_areas=["other"],
        regions=["SE12"],
    )
    group = await world.group()
    published = await world.need(
        # A county the suite's other suppliers (SE11 by default) do not serve: only this
        # test's suppliers compete for the need's top K.
        group,
        regions=["SE125"],
        min_trl=6,
        description=f"Laddning av elbussar {word}.",
    )

    # The need and the suppliers reach the matcher in any order; both directions meet.
    await until(lambda: _has(world, published["id"], {good_sv["id"], good_en["id"]}))
    ranked = await world.matches(published["id"])
    ids = [m["supplier_id"] for m in ranked]
    assert good_sv["id"] in ids and good_en["id"] in ids
    assert not {elsewhere["id"], immature["id"], unrelated["id"]} & set(ids)
    assert ids.index(good_sv["id"]) < ids.index(good_en["id"])  # more shared codes and words
    assert [m["rank"] for m in ranked] == list(range(1, len(ranked) + 1))
    scores = [m["match"]["score"] for m in ranked]
    assert scores == sorted(scores, reverse=True) and all(0.30 <= s <= 1 for s in scores)
    # Other tests' suppliers may rank too: read this test's own.
    entry = next(m for m in ranked if m["supplier_id"] == good_sv["id"])
    top = entry["match"]
    assert top["id"] == match_id(published["id"], top["supplier_id"])
    explanation = top["explanation"]
    assert set(explanation["components"]) == {"cpv", "text", "focus_area", "supplier_type", "semantic"}
    assert explanation["semantic_verdict"] and "in meaning" in explanation["semantic_verdict"]
    assert explanation["closest_passage"]
    assert abs(sum(explanation["components"].values()) - top["score"]) < 0.001
    assert explanation["shared_cpv"][0]["code"] == "31158100"
    assert explanation["shared_cpv"][0]["label_sv"]
    assert word in explanation["matched_terms"]
    assert "SE125" in explanation["region_verdict"] and "meets" in explanation["trl_verdict"]
    assert entry["supplier_name"].startswith("Leverantör")

    def found(events: list[dict[str, Any]]) -> set[str]:
        return {e["data"]["supplier_id"] for e in events if e["type"] == "match.found"}

    events = await match_events(stack, published["id"], lambda es: set(ids) <= found(es))
    assert not {elsewhere["id"], immature["id"], unrelated["id"]} & found(events)
    assert len({e["id"] for e in events}) == len(events)

    # Why not: each failing pair says what failed.
    async def why(supplier: dict[str, Any]) -> dict[str, Any]:
        got = await world.http.get(
            f"{world.urls['matcher']}/v1/needs/{published['id']}/matches/{supplier['id']}", headers=OPERATOR
        )
        assert got.status_code == 200, got.text
        result: dict[str, Any] = got.json()
        return result

    assert (await why(good_sv))["is_match"] is True
    assert (await why(good_sv))["published"]["version"] == 1
    assert (await why(elsewhere))["why_not"].startswith("region:")
    assert (await why(immature))["why_not"].startswith("maturity:")
    low = await why(unrelated)
    assert low["is_match"] is False and "below the threshold" in low["why_not"]


async def test_changes_update_and_withdraw_matches(stack: Stack, world: World) -> None:
    word = "zq" + secrets.token_hex(4)
    stays = await world.supplier(keywords=[word], regions=["SE"])
    moves = await world.supplier(keywords=[word], regions=["SE11"])
    leaves = await world.supplier(keywords=[word], regions=["SE11"])
    group = await world.group()
    published = await world.need(group, description=f"Laddning {word}.")
    need_id = published["id"]
    await until(lambda: _has(world, need_id, {stays["id"], moves["id"], leaves["id"]}))

    # The supplier moves out of the need's region: withdrawn.
    moved = await world.http.patch(
        f"{world.urls['suppliers']}/v1/suppliers/{moves['id']}",
        json={"capabilities": {"regions": ["SE2"]}},
        headers=bearer(moves["token"]),
    )
    assert moved.status_code == 200, moved.text
    # The supplier erases itself: withdrawn.
    left = await world.http.delete(
        f"{world.urls['suppliers']}/v1/suppliers/{leaves['id']}", headers=bearer(leaves["token"])
    )
    assert left.status_code in (200, 204), left.text
    mine = {stays["id"], moves["id"], leaves["id"]}
    await until(lambda: _among(world, need_id, mine, {stays["id"]}))

    # A supplier sees its own matches, with the need's title.
    own = await world.http.get(
        f"{world.urls['matcher']}/v1/suppliers/{stays['id']}/matches", headers=bearer(stays["token"])
    )
    assert own.status_code == 200
    listed = {m["need_id"]: m for m in own.json()["matches"]}
    assert listed[need_id]["need_title"] == published["title"]
    assert all(m["match"]["supplier_id"] == stays["id"] for m in listed.values())

    # The need closes: every match is withdrawn.
    closed = await world.http.post(
        f"{world.urls['needs']}/v1/needs/{need_id}/close",
        json={"reason": "Klart"},
        headers=bearer(group["token"]),
    )
    assert closed.status_code == 200, closed.text
    await until(lambda: _among(world, need_id, mine, set()))

    events = await match_events(
        stack, need_id, lambda es: sum(e["type"] == "match.withdrawn" for e in es) >= 3
    )
    by_supplier: dict[str, list[str]] = {}
    for e in events:
        by_supplier.setdefault(e["data"]["supplier_id"], []).append(e["type"])
    assert by_supplier[moves["id"]] == ["match.found", "match.withdrawn"]
    assert by_supplier[leaves["id"]] == ["match.found", "match.withdrawn"]
    assert by_supplier[stays["id"]] == ["match.found", "match.withdrawn"]
    versions = [e["data"]["version"] for e in events if e["data"]["supplier_id"] == stays["id"]]
    assert versions == [1, 2]


async def _has(world: World, need_id: str, wanted: set[str]) -> bool:
    return wanted <= {m["supplier_id"] for m in await world.matches(need_id)}


async def _among(world: World, need_id: str, suppliers: set[str], wanted: set[str]) -> bool:
    """Whether, of `suppliers`, exactly `wanted` match the need (other tests' suppliers may too)."""
    return {m["supplier_id"] for m in await world.matches(need_id)} & suppliers == wanted


async def test_only_the_needs_groups_and_the_supplier_may_read_matches(world: World) -> None:
    supplier = await world.supplier()
    other_supplier = await world.supplier(regions=["SE2"])
    group, stranger = await world.group(), await world.group()
    published = await world.need(group)
    await until(lambda: _has(world, published["id"], {supplier["id"]}))
    base = f"{world.urls['matcher']}/v1/needs/{published['id']}/matches"
    assert (await world.http.get(base)).status_code == 401
    assert (await world.http.get(base, headers=bearer("not-a-token"))).status_code == 401
    assert (await world.http.get(base, headers=bearer(stranger["token"]))).status_code == 403
    assert (await world.http.get(base, headers=bearer(supplier["token"]))).status_code == 403
    assert (await world.http.get(base, headers=bearer(group["token"]))).status_code == 200
    # A co-signing group may read them too.
    cosigned = await world.http.post(
        f"{world.urls['needs']}/v1/needs/{published['id']}/cosign", headers=bearer(stranger["token"])
    )
    assert cosigned.status_code == 200, cosigned.text
    await until(lambda: _status(world.http, base, bearer(stranger["token"]), 200))
    pair = f"{base}/{supplier['id']}"
    assert (await world.http.get(pair, headers=bearer(supplier["token"]))).status_code == 200
    assert (await world.http.get(pair, headers=bearer(other_supplier["token"]))).status_code == 403
    own = f"{world.urls['matcher']}/v1/suppliers/{supplier['id']}/matches"
    assert (await world.http.get(own, headers=bearer(other_supplier["token"]))).status_code == 403
    assert (await world.http.get(own, headers=OPERATOR)).status_code == 200
    missing = f"{world.urls['matcher']}/v1/needs/00000000-0000-4000-8000-000000000000/matches"
    assert (await world.http.get(missing, headers=OPERATOR)).status_code == 404


async def _status(http: httpx.AsyncClient, url: str, headers: dict[str, str], status: int) -> bool:
    return (await http.get(url, headers=headers)).status_code == status


async def test_a_verdict_through_the_api_reorders_the_shortlist_and_is_published(
    stack: Stack, world: World
) -> None:
    first, second = await world.supplier(), await world.supplier()
    group, stranger = await world.group(), await world.group()
    published = await world.need(group)
    await until(lambda: _has(world, published["id"], {first["id"], second["id"]}))
    shortlist = [m["supplier_id"] for m in await world.matches(published["id"])]
    top = shortlist[0]
    url = f"{world.urls['matcher']}/v1/needs/{published['id']}/matches/{top}/feedback"

    refused = await world.http.post(url, json={"verdict": "not_relevant"}, headers=bearer(stranger["token"]))
    invalid = await world.http.post(url, json={"verdict": "maybe"}, headers=bearer(group["token"]))
    judged = await world.http.post(
        url, json={"verdict": "not_relevant", "reason": "fel region"}, headers=bearer(group["token"])
    )

    assert refused.status_code == 403
    assert invalid.status_code == 422 and invalid.json()["error"]["fields"][0]["field"] == "verdict"
    assert judged.status_code == 200, judged.text
    assert judged.json()["verdict"] == "not_relevant" and judged.json()["version"] == 2
    after = [m["supplier_id"] for m in await world.matches(published["id"])]
    assert after[-1] == top and sorted(after) == sorted(shortlist)
    events = await match_events(
        stack, published["id"], lambda es: any(e["type"] == "match.judged" for e in es)
    )
    assert [e["data"]["verdict"] for e in events if e["type"] == "match.judged"] == ["not_relevant"]


async def test_consortia_cover_a_two_code_need_that_no_single_supplier_covers(world: World) -> None:
    """Codes no other test's supplier (the demo data included) names: mowers and
    railway maintenance vehicles, each offered by one supplier only."""
    mowing, railway = "16310000", "34621000"
    mowers = await world.supplier(cpv_codes=[mowing], description="Slåttermaskiner för vägrenar och parker.")
    rails = await world.supplier(cpv_codes=[railway], description="Underhållsfordon för järnväg.")
    closed = await world.supplier(cpv_codes=[railway], description="Spårfordon.", open_to_consortia=False)
    group, stranger = await world.group(), await world.group()
    published = await world.need(group, cpv_codes=[mowing, railway])
    url = f"{world.urls['matcher']}/v1/needs/{published['id']}/consortia"

    async def suggested() -> list[dict[str, Any]] | None:
        got = await world.http.get(url, headers=bearer(group["token"]))
        found: list[dict[str, Any]] = got.json()["consortia"] if got.status_code == 200 else []
        return found or None

    found = await until(suggested)
    assert {m["supplier_id"] for m in found[0]["members"]} == {mowers["id"], rails["id"]}
    assert sorted(found[0]["covers_cpv"]) == sorted([mowing, railway])
    assert closed["id"] not in {m["supplier_id"] for c in found for m in c["members"]}
    assert all(c["coverage"] > c["best_single_coverage"] for c in found)
    assert (await world.http.get(url, headers=bearer(stranger["token"]))).status_code == 403
