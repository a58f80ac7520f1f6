"""The needs API through HTTP, against the running services, the broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.contracts.topics import BUYER_GROUPS, NEEDS
from tests.conftest import OPERATOR_TOKEN, Stack
from tests.factories import authority, need
from tests.kafka_helpers import bodies, read_until

pytestmark = pytest.mark.e2e

OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@pytest.fixture
async def http(services: dict[str, str]) -> Any:
    async with httpx.AsyncClient(base_url=services["needs"], timeout=30) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def word() -> str:
    """A fresh word of letters only, to find what a test published among everything else."""
    return "zq" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(10))


def errors(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {f["field"]: f["reason"] for f in response.json()["error"]["fields"]}


async def new_authority(http: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    created = await http.post("/v1/authorities", json=authority(**overrides), headers=OPERATOR)
    assert created.status_code == 201, created.text
    result: dict[str, Any] = created.json()
    return result


async def new_group(http: httpx.AsyncClient, *levels: str, **overrides: Any) -> dict[str, Any]:
    members = [(await new_authority(http, level=level))["id"] for level in levels or ("local",)]
    body = {"name": "Elbussgruppen", "focus_area": "transport", "member_authority_ids": members}
    body.update(overrides)
    created = await http.post("/v1/buyer-groups", json=body, headers=OPERATOR)
    assert created.status_code == 201, created.text
    result: dict[str, Any] = created.json()
    return result


async def publish(http: httpx.AsyncClient, group: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    created = await http.post(
        f"/v1/buyer-groups/{group['id']}/needs", json=need(**overrides), headers=bearer(group["token"])
    )
    assert created.status_code == 201, created.text
    result: dict[str, Any] = created.json()
    return result


async def events_of(stack: Stack, subject: str, done: Any) -> list[dict[str, Any]]:
    def mine(records: list) -> list[dict[str, Any]]:  # type: ignore[type-arg]
        return [b for b in bodies(records) if b.get("subject") == subject]

    return mine(await read_until(stack.kafka_bootstrap, NEEDS, lambda rs: done(mine(rs))))


# Authorities and buyer groups.


async def test_authorities_are_public_bodies_with_a_level_and_a_region(http: httpx.AsyncClient) -> None:
    failures = errors(
        await http.post(
            "/v1/authorities",
            json=authority(org_number="556036-0793", level="federal", region="SE999"),
            headers=OPERATOR,
        )
    )
    assert "first digit must be 2" in failures["org_number"]
    assert {"level", "region"} <= set(failures)
    body = authority()
    assert (await http.post("/v1/authorities", json=body)).status_code == 401
    first = await http.post("/v1/authorities", json=body, headers=OPERATOR)
    assert first.status_code == 201
    assert (await http.post("/v1/authorities", json=body, headers=OPERATOR)).status_code == 409
    listed = await http.get("/v1/authorities", headers=OPERATOR)
    assert first.json() in listed.json()
    group = await new_group(http)
    assert (await http.get("/v1/authorities", headers=bearer(group["token"]))).status_code == 403


async def test_a_buyer_group_gets_a_token_once_and_never_shows_its_secret(http: httpx.AsyncClient) -> None:
    alerts = {"webhook_url": "https://kommun.se/hook", "webhook_secret": "s" * 20, "mode": "daily"}
    group = await new_group(http, "local", "regional", alerts=alerts)
    assert group["token"] and group["version"] == 1
    assert group["alerts"]["has_webhook_secret"] is True
    assert "webhook_secret" not in group["alerts"]
    url = f"/v1/buyer-groups/{group['id']}"
    got = await http.get(url, headers=bearer(group["token"]))
    assert got.status_code == 200 and got.headers["ETag"] == 'W/"1"'
    assert got.json() == {k: v for k, v in group.items() if k not in ("token", "token_expires_at")}
    assert (await http.get(url, headers=OPERATOR)).status_code == 200
    other = await new_group(http)
    assert (await http.get(url)).status_code == 401
    assert (await http.get(url, headers=bearer(other["token"]))).status_code == 403
    assert (await http.post("/v1/buyer-groups", json={}, headers=bearer(group["token"]))).status_code == 403


async def test_buyer_group_changes_reach_the_topic_with_alert_settings(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    alerts = {"webhook_url": "https://kommun.se/hook", "webhook_secret": "s" * 20, "language": "en"}
    group = await new_group(http, "local", "national", alerts=alerts)
    changed = await http.patch(
        f"/v1/buyer-groups/{group['id']}", json={"alerts": {"mode": "weekly"}}, headers=bearer(group["token"])
    )
    assert changed.status_code == 200, changed.text

    def mine(records: list) -> list[dict[str, Any]]:  # type: ignore[type-arg]
        return [b for b in bodies(records) if b.get("subject") == group["id"]]

    events = mine(await read_until(stack.kafka_bootstrap, BUYER_GROUPS, lambda rs: len(mine(rs)) >= 2))
    assert [e["type"] for e in events] == ["buyer_group.created", "buyer_group.updated"]
    created, updated = events[0]["data"], events[1]["data"]
    assert created["member_authority_ids"] == [m["id"] for m in group["members"]]
    assert sorted(created["authority_levels"]) == ["local", "national"]
    assert created["alerts"]["webhook_secret"] == "s" * 20  # the notifier signs with it
    assert created["alerts"]["mode"] == "instant" and updated["alerts"]["mode"] == "weekly"
    assert updated["version"] == 2


async def test_a_buyer_group_needs_existing_members(http: httpx.AsyncClient) -> None:
    real = await new_authority(http)
    ghost = "00000000-0000-4000-8000-000000000000"
    body = {"name": "G", "focus_area": "transport", "member_authority_ids": [real["id"], real["id"], ghost]}
    failures = errors(await http.post("/v1/buyer-groups", json=body, headers=OPERATOR))
    assert failures == {"member_authority_ids[2]": f"no authority {ghost}"}
    failures = errors(
        await http.post("/v1/buyer-groups", json={**body, "member_authority_ids": ["x"]}, headers=OPERATOR)
    )
    assert "member_authority_ids[0]" in failures
    failures = errors(
        await http.post("/v1/buyer-groups", json={**body, "member_authority_ids": []}, headers=OPERATOR)
    )
    assert "member_authority_ids" in failures
    failures = errors(
        await http.post("/v1/buyer-groups", json={**body, "focus_area": "space"}, headers=OPERATOR)
    )
    assert "focus_area" in failures


async def test_patching_members_and_alerts_republishes_the_groups_open_needs(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    group = await new_group(http, "local")
    item = await publish(http, group)
    url, auth = f"/v1/buyer-groups/{group['id']}", bearer(group["token"])
    national = await new_authority(http, level="national", region="SE")
    members = [group["members"][0]["id"], national["id"]]
    patch = {"member_authority_ids": members, "alerts": {"mode": "weekly"}}
    changed = await http.patch(url, json=patch, headers={**auth, "If-Match": 'W/"1"'})
    assert changed.status_code == 200, changed.text
    assert changed.headers["ETag"] == 'W/"2"'
    assert {m["id"] for m in changed.json()["members"]} == set(members)
    assert changed.json()["alerts"]["mode"] == "weekly"
    stale = await http.patch(url, json={"name": "x"}, headers={**auth, "If-Match": 'W/"1"'})
    assert stale.status_code == 412
    bad = errors(await http.patch(url, json={"member_authority_ids": [national["id"], "nope"]}, headers=auth))
    assert "member_authority_ids[1]" in bad
    assert "member_authority_ids" in errors(
        await http.patch(url, json={"member_authority_ids": []}, headers=auth)
    )

    got = (await http.get(f"/v1/needs/{item['id']}")).json()
    assert got["authority_count"] == 2 and got["authority_levels"] == ["national", "local"]
    updated = await events_of(stack, item["id"], lambda es: any(e["type"] == "need.updated" for e in es))
    assert updated[-1]["data"]["authority_levels"] == ["national", "local"]


# Publishing and changing needs.


async def test_a_published_need_is_open_and_carried_by_one_event(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    group = await new_group(http, "local", "regional")
    created = await http.post(
        f"/v1/buyer-groups/{group['id']}/needs",
        json=need(cpv_codes=["34144900-7", "31158100"]),
        headers=bearer(group["token"]),
    )
    assert created.status_code == 201, created.text
    assert created.headers["ETag"] == 'W/"1"'
    item = created.json()
    assert item["status"] == "open" and item["buyer_group_id"] == group["id"]
    assert item["cpv_codes"] == ["34144900", "31158100"]
    assert item["authority_count"] == 2
    assert item["authority_levels"] == ["regional", "local"]
    assert item["authorities_by_level"] == {"regional": 1, "local": 1}
    got = await http.get(f"/v1/needs/{item['id']}")  # public: no token
    assert got.status_code == 200 and got.json() == item

    events = await events_of(stack, item["id"], bool)
    await asyncio.sleep(0.5)
    events = await events_of(stack, item["id"], bool)
    assert [e["type"] for e in events] == ["need.published"]
    expected = {k: v for k, v in item.items() if k not in ("authority_count", "authorities_by_level")}
    assert events[0]["data"] == expected

    by_operator = await http.post(f"/v1/buyer-groups/{group['id']}/needs", json=need(), headers=OPERATOR)
    assert by_operator.status_code == 201


def _tomorrow() -> str:
    return (datetime.now(UTC).date() + timedelta(days=1)).isoformat()


INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    ("blank title", {"title": "  "}, "title", ""),
    ("long title", {"title": "x" * 201}, "title", "200"),
    ("empty description", {"description": ""}, "description", ""),
    ("long description", {"description": "x" * 10001}, "description", "10000"),
    ("unknown CPV", {"cpv_codes": ["31158100", "12345678"]}, "cpv_codes[1]", "12345678"),
    ("CPV check digit", {"cpv_codes": ["45000000-8"]}, "cpv_codes[0]", "check digit"),
    ("no CPV", {"cpv_codes": []}, "cpv_codes", ""),
    ("focus area", {"focus_area": "space"}, "focus_area", ""),
    ("region", {"regions": ["SE11", "SE999"]}, "regions[1]", "SE999"),
    ("no region", {"regions": []}, "regions", ""),
    ("TRL", {"min_trl": 0}, "min_trl", "1-9"),
    ("supplier type", {"preferred_supplier_types": ["giant"]}, "preferred_supplier_types[0]", ""),
    ("procedure", {"procedure": "auction"}, "procedure", ""),
    ("respond_by today", {"respond_by": datetime.now(UTC).date().isoformat()}, "respond_by", "after today"),
    ("respond_by in the past", {"respond_by": "2020-01-01"}, "respond_by", "after today"),
    ("respond_by not a date", {"respond_by": "soon"}, "respond_by", ""),
    ("negative budget", {"budget_sek": -1}, "budget_sek", "0"),
    ("unknown field", {"status": "closed"}, "status", "unknown field"),
]


@pytest.mark.parametrize(("rule", "change", "field", "reason"), INVALID, ids=[i[0] for i in INVALID])
async def test_each_rule_names_the_failing_field(
    http: httpx.AsyncClient, rule: str, change: dict[str, Any], field: str, reason: str
) -> None:
    group = await new_group(http)
    response = await http.post(
        f"/v1/buyer-groups/{group['id']}/needs", json=need(**change), headers=bearer(group["token"])
    )
    failures = errors(response)
    assert field in failures, failures
    assert reason in failures[field]


async def test_tomorrow_and_no_budget_are_fine(http: httpx.AsyncClient) -> None:
    group = await new_group(http)
    body = need(respond_by=_tomorrow())
    del body["budget_sek"]
    created = await http.post(
        f"/v1/buyer-groups/{group['id']}/needs", json=body, headers=bearer(group["token"])
    )
    assert created.status_code == 201, created.text
    assert created.json()["budget_sek"] is None


async def test_who_may_publish_change_and_close(http: httpx.AsyncClient) -> None:
    owner = await new_group(http)
    other = await new_group(http)
    body = need()
    needs_url = f"/v1/buyer-groups/{owner['id']}/needs"
    assert (await http.post(needs_url, json=body)).status_code == 401
    assert (await http.post(needs_url, json=body, headers=bearer("not-a-token"))).status_code == 401
    assert (await http.post(needs_url, json=body, headers=bearer(other["token"]))).status_code == 403
    missing = "/v1/buyer-groups/00000000-0000-4000-8000-000000000000/needs"
    assert (await http.post(missing, json=body, headers=OPERATOR)).status_code == 404

    item = await publish(http, owner)
    url = f"/v1/needs/{item['id']}"
    assert (await http.patch(url, json={"min_trl": 7})).status_code == 401
    assert (await http.patch(url, json={"min_trl": 7}, headers=bearer(other["token"]))).status_code == 403
    assert (
        await http.post(f"{url}/close", json={"reason": "x"}, headers=bearer(other["token"]))
    ).status_code == 403
    assert (await http.get(f"{url}/similar", headers=bearer(other["token"]))).status_code == 403
    assert (await http.get(f"{url}/similar")).status_code == 401
    by_operator = await http.patch(url, json={"min_trl": 7}, headers=OPERATOR)
    assert by_operator.status_code == 200 and by_operator.json()["min_trl"] == 7
    by_owner = await http.patch(url, json={"min_trl": 8}, headers=bearer(owner["token"]))
    assert by_owner.status_code == 200 and by_owner.json()["version"] == 3
    assert (await http.get(f"{url}/similar", headers=OPERATOR)).status_code == 200
    assert (await http.post(f"{url}/close", json={"reason": "klart"}, headers=OPERATOR)).status_code == 200
    ghost = "/v1/needs/00000000-0000-4000-8000-000000000000"
    assert (await http.patch(ghost, json={"min_trl": 7}, headers=OPERATOR)).status_code == 404
    assert (await http.get(ghost)).status_code == 404


async def test_a_patch_merges_validates_and_honours_if_match(stack: Stack, http: httpx.AsyncClient) -> None:
    group = await new_group(http)
    item = await publish(http, group)
    url, auth = f"/v1/needs/{item['id']}", bearer(group["token"])
    patch = {"regions": ["SE11", "SE12"], "min_trl": 7}
    changed = await http.patch(url, json=patch, headers={**auth, "If-Match": 'W/"1"'})
    assert changed.status_code == 200, changed.text
    assert changed.headers["ETag"] == 'W/"2"'
    result = changed.json()
    assert result["regions"] == ["SE11", "SE12"] and result["title"] == item["title"]
    stale = await http.patch(url, json={"min_trl": 8}, headers={**auth, "If-Match": 'W/"1"'})
    assert stale.status_code == 412 and stale.json()["error"]["current_etag"] == 'W/"2"'
    same = await http.patch(url, json={"min_trl": 7}, headers=auth)
    assert same.json()["version"] == 2  # nothing changed: no version, no event
    assert "cpv_codes[0]" in errors(await http.patch(url, json={"cpv_codes": ["12345678"]}, headers=auth))
    assert "respond_by" in errors(await http.patch(url, json={"respond_by": "2020-01-01"}, headers=auth))
    assert "title" in errors(await http.patch(url, json={"title": None}, headers=auth))
    assert "cosigners" in errors(await http.patch(url, json={"cosigners": []}, headers=auth))
    assert (await http.get(url)).json()["version"] == 2

    def updated(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in events if e["type"] == "need.updated"]

    await events_of(stack, item["id"], lambda es: bool(updated(es)))
    await asyncio.sleep(0.5)
    events = updated(await events_of(stack, item["id"], lambda es: bool(updated(es))))
    assert len(events) == 1
    assert events[0]["data"]["regions"] == ["SE11", "SE12"] and events[0]["data"]["version"] == 2


async def test_a_closed_need_refuses_changes_and_is_hidden_from_the_public(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    owner = await new_group(http)
    cosigner = await new_group(http)
    stranger = await new_group(http)
    item = await publish(http, owner)
    url = f"/v1/needs/{item['id']}"
    assert (await http.post(f"{url}/cosign", headers=bearer(cosigner["token"]))).status_code == 200
    assert "reason" in errors(await http.post(f"{url}/close", json={}, headers=bearer(owner["token"])))
    closed = await http.post(f"{url}/close", json={"reason": "Upphandlad"}, headers=bearer(owner["token"]))
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed" and closed.json()["closed_reason"] == "Upphandlad"

    again = await http.post(f"{url}/close", json={"reason": "igen"}, headers=bearer(owner["token"]))
    assert again.status_code == 409
    patched = await http.patch(url, json={"min_trl": 9}, headers=bearer(owner["token"]))
    assert patched.status_code == 409 and patched.json()["error"]["code"] == "conflict"
    assert (await http.post(f"{url}/cosign", headers=bearer(stranger["token"]))).status_code == 409

    assert (await http.get(url)).status_code == 404
    assert (await http.get(url, headers=bearer(stranger["token"]))).status_code == 404
    for auth in (bearer(owner["token"]), bearer(cosigner["token"]), OPERATOR):
        assert (await http.get(url, headers=auth)).json()["status"] == "closed"

    events = await events_of(stack, item["id"], lambda es: any(e["type"] == "need.closed" for e in es))
    assert [e["type"] for e in events] == ["need.published", "need.updated", "need.closed"]
    assert events[-1]["data"] == {
        k: v for k, v in closed.json().items() if k not in ("authority_count", "authorities_by_level")
    }


# Co-signing and similar needs.


async def test_cosigning_adds_the_group_once_and_counts_its_authorities(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    owner = await new_group(http, "local")
    partner = await new_group(http, "regional", "national")
    shared = await new_authority(http, level="local")
    late = await new_group(http, "local", member_authority_ids=[shared["id"], owner["members"][0]["id"]])
    item = await publish(http, owner)
    url = f"/v1/needs/{item['id']}"

    first = await http.post(f"{url}/cosign", headers=bearer(partner["token"]))
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["cosigners"] == [partner["id"]] and body["version"] == 2
    assert body["authority_count"] == 3
    assert body["authority_levels"] == ["national", "regional", "local"]
    again = await http.post(f"{url}/cosign", headers=bearer(partner["token"]))
    assert again.status_code == 200 and again.json() == body

    # The late group shares one authority with the owner: counted once.
    third = (await http.post(f"{url}/cosign", headers=bearer(late["token"]))).json()
    assert third["cosigners"] == [partner["id"], late["id"]]
    assert third["authority_count"] == 4
    assert third["authorities_by_level"] == {"national": 1, "regional": 1, "local": 2}
    assert (await http.get(url)).json() == third

    own = await http.post(f"{url}/cosign", headers=bearer(owner["token"]))
    assert own.status_code == 409
    assert (await http.post(f"{url}/cosign", headers=OPERATOR)).status_code == 403
    assert (await http.post(f"{url}/cosign")).status_code == 401

    def updated(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in events if e["type"] == "need.updated"]

    await events_of(stack, item["id"], lambda es: len(updated(es)) >= 2)
    await asyncio.sleep(0.5)
    events = updated(await events_of(stack, item["id"], lambda es: len(updated(es)) >= 2))
    assert [e["data"]["cosigners"] for e in events] == [[partner["id"]], [partner["id"], late["id"]]]
    assert events[-1]["data"]["authority_levels"] == ["national", "regional", "local"]
    assert events[-1]["data"]["version"] == third["version"]


async def test_similar_needs_share_cpv_branches_or_words(http: httpx.AsyncClient) -> None:
    marker = word()
    owner = await new_group(http)
    other = await new_group(http)
    item = await publish(
        http, owner, title=f"Elbussar {marker}", description="Laddning vid depåer", cpv_codes=["34144910"]
    )
    # Same group (34100000 motor vehicles) and the marker word: the best match.
    both = await publish(
        http, other, title=f"Elfordon {marker}", description="Fordon", cpv_codes=["34144900"]
    )
    # Only the CPV division 34 (transport equipment).
    branch = await publish(http, other, title="Tåg", description="Spårfordon", cpv_codes=["34600000"])
    # Only the words.
    words = await publish(
        http, other, title=f"Depåer {marker}", description="Tjänster", cpv_codes=["72000000"]
    )
    unrelated = await publish(http, other, title="Sjukvård", description="Röntgen", cpv_codes=["33100000"])
    mine = await publish(http, owner, title=f"Elbussar {marker}", cpv_codes=["34144910"])
    closed = await publish(http, other, title=f"Elbussar {marker}", cpv_codes=["34144910"])
    await http.post(f"/v1/needs/{closed['id']}/close", json={"reason": "x"}, headers=bearer(other["token"]))

    response = await http.get(f"/v1/needs/{item['id']}/similar", headers=bearer(owner["token"]))
    assert response.status_code == 200, response.text
    found = {s["need"]["id"]: s for s in response.json()}
    assert unrelated["id"] not in found and mine["id"] not in found and closed["id"] not in found
    assert {both["id"], branch["id"], words["id"]} <= set(found)
    ranked = [
        s["need"]["id"] for s in response.json() if s["need"]["id"] in {both["id"], branch["id"], words["id"]}
    ]
    assert ranked[0] == both["id"]
    best = found[both["id"]]
    assert {b["code"] for b in best["shared_cpv_branches"]} == {"34000000-7", "34100000-8"}
    assert marker in best["shared_words"]
    assert found[branch["id"]]["shared_cpv_branches"][0]["code"] == "34000000-7"
    assert found[branch["id"]]["shared_words"] == []
    assert found[words["id"]]["shared_cpv_branches"] == []
    assert set(found[words["id"]]["shared_words"]) >= {marker, "depåer"}
    assert all(0 < s["score"] <= 1 for s in found.values())


# The public list.


async def test_the_list_filters_by_each_criterion(http: httpx.AsyncClient) -> None:
    marker = word()
    group = await new_group(http)
    bus = await publish(
        http,
        group,
        title=f"Elbussar {marker}",
        cpv_codes=["34144910"],
        regions=["SE11"],
        focus_area="transport",
    )
    care = await publish(
        http,
        group,
        title=f"Vård {marker}",
        description="Hemsjukvård med SENSORER",
        cpv_codes=["33100000"],
        regions=["SE23"],
        focus_area="health_care",
        procedure="pre_commercial",
    )
    wide = await publish(http, group, title=f"Hela landet {marker}", cpv_codes=["72000000"], regions=["SE"])
    closed = await publish(http, group, title=f"Stängd {marker}", cpv_codes=["34144910"])
    await http.post(f"/v1/needs/{closed['id']}/close", json={"reason": "x"}, headers=bearer(group["token"]))

    async def ids(**params: str) -> set[str]:
        response = await http.get("/v1/needs", params={"q": marker, "limit": "100", **params})
        assert response.status_code == 200, response.text
        return {n["id"] for n in response.json()["items"]}

    assert await ids() == {bus["id"], care["id"], wide["id"]}
    assert await ids(focus_area="health_care") == {care["id"]}
    assert await ids(procedure="pre_commercial") == {care["id"]}
    assert await ids(cpv="34144910-0") == {bus["id"]}
    assert await ids(cpv="34000000") == {bus["id"]}  # an ancestor
    assert await ids(cpv="34144900") == {bus["id"]}
    assert await ids(cpv="33000000-0") == {care["id"]}
    assert await ids(region="SE11") == {bus["id"], wide["id"]}
    assert await ids(region="SE1") == {bus["id"], wide["id"]}  # SE11 lies within SE1
    assert await ids(region="SE110") == {bus["id"], wide["id"]}  # SE11 covers SE110
    assert await ids(region="SE") == {bus["id"], care["id"], wide["id"]}
    assert await ids(region="SE2") == {care["id"], wide["id"]}
    assert await ids(q=f"{marker.upper()} sensorer") == {care["id"]}
    assert await ids(q=f"{marker} hemsjukvård") == {care["id"]}

    for params, field in [
        ({"cpv": "12345678"}, "cpv"),
        ({"cpv": "34144910-1"}, "cpv"),
        ({"region": "SE999"}, "region"),
        ({"focus_area": "space"}, "focus_area"),
        ({"procedure": "auction"}, "procedure"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
    ]:
        assert field in errors(await http.get("/v1/needs", params=params)), params


async def test_pages_cover_every_need_once_newest_first(http: httpx.AsyncClient) -> None:
    marker = word()
    group = await new_group(http)
    published = [(await publish(http, group, title=f"Behov {i} {marker}"))["id"] for i in range(7)]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"q": marker, "limit": "3", **({"cursor": cursor} if cursor else {})}
        page = (await http.get("/v1/needs", params=params)).json()
        seen += [n["id"] for n in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(published))
    default = (await http.get("/v1/needs")).json()
    assert len(default["items"]) == 20 or default["next_cursor"] is None
    assert all(n["status"] == "open" for n in default["items"])


async def test_the_openapi_document_has_examples(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    post = spec["paths"]["/v1/buyer-groups/{group_id}/needs"]["post"]
    assert post["requestBody"]["content"]["application/json"]["examples"]
    assert {"401", "403", "404", "422"} <= set(post["responses"])
    patch = spec["paths"]["/v1/needs/{need_id}"]["patch"]
    assert patch["responses"]["409"]["content"]["application/json"]["example"]["error"]["code"] == "conflict"


async def test_a_buyer_groups_token_expires_and_is_refreshed_by_the_group_or_an_operator(
    http: httpx.AsyncClient,
) -> None:
    group = await new_group(http)
    expires = datetime.fromisoformat(group["token_expires_at"])
    assert timedelta(days=89) < expires - datetime.now(UTC) <= timedelta(days=90, seconds=2)
    url = f"/v1/buyer-groups/{group['id']}/token"
    fresh = await http.post(url, headers=bearer(group["token"]))
    assert fresh.status_code == 200, fresh.text
    assert set(fresh.json()) == {"token", "expires_at"}
    got = await http.get(f"/v1/buyer-groups/{group['id']}", headers=bearer(fresh.json()["token"]))
    assert got.status_code == 200
    assert (await http.post(url, headers=OPERATOR)).status_code == 200
    other = await new_group(http)
    assert (await http.post(url, headers=bearer(other["token"]))).status_code == 403
    assert (await http.post(url)).status_code == 401
    missing = f"/v1/buyer-groups/{uuid.uuid4()}/token"
    assert (await http.post(missing, headers=OPERATOR)).status_code == 404
