"""The suppliers API through HTTP, against the running services, the broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from services.contracts.topics import SUPPLIERS
from tests.conftest import OPERATOR_TOKEN, Stack
from tests.e2e.conftest import serve
from tests.factories import registration
from tests.kafka_helpers import bodies, eventually, read_until

pytestmark = pytest.mark.e2e

OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@pytest.fixture
async def http(services: dict[str, str]) -> Any:
    async with httpx.AsyncClient(base_url=services["suppliers"], timeout=30) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(http: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    created = await http.post("/v1/suppliers", json=registration(**overrides))
    assert created.status_code == 201, created.text
    supplier: dict[str, Any] = created.json()
    return supplier


async def events_of(stack: Stack, subject: str, done: Any) -> list[dict[str, Any]]:
    def mine(records: list) -> list[dict[str, Any]]:  # type: ignore[type-arg]
        return [b for b in bodies(records) if b.get("subject") == subject]

    return mine(await read_until(stack.kafka_bootstrap, SUPPLIERS, lambda rs: done(mine(rs))))


def capabilities(**overrides: Any) -> dict[str, Any]:
    caps: dict[str, Any] = registration()["capabilities"]
    caps.update(overrides)
    return caps


def errors(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {f["field"]: f["reason"] for f in response.json()["error"]["fields"]}


async def test_a_registration_returns_the_profile_an_etag_and_one_event(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    body = registration(capabilities=capabilities(cpv_codes=["45000000-7", "31158100"]))
    created = await http.post("/v1/suppliers", json=body)
    assert created.status_code == 201, created.text
    assert created.headers["ETag"] == 'W/"1"'
    supplier = created.json()
    assert supplier["capabilities"]["cpv_codes"] == ["45000000", "31158100"]
    assert supplier["version"] == 1 and supplier["token"]
    got = await http.get(f"/v1/suppliers/{supplier['id']}", headers=bearer(supplier["token"]))
    assert got.headers["ETag"] == 'W/"1"'
    assert got.json() == {k: v for k, v in supplier.items() if k not in ("token", "token_expires_at")}

    events = await events_of(stack, supplier["id"], bool)
    await asyncio.sleep(0.5)  # a second copy, if any, would have arrived by now
    events = await events_of(stack, supplier["id"], bool)
    assert [e["type"] for e in events] == ["supplier.registered"]
    data = events[0]["data"]
    assert data["name"] == body["name"] and data["contact_email"] == body["contact_email"]
    assert data["capabilities"]["cpv_codes"] == ["45000000", "31158100"]


INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "unknown CPV",
        {"capabilities": capabilities(cpv_codes=["31158100", "45000000-7", "12345678"])},
        "capabilities.cpv_codes[2]",
        "12345678",
    ),
    (
        "CPV check digit",
        {"capabilities": capabilities(cpv_codes=["45000000-8"])},
        "capabilities.cpv_codes[0]",
        "check digit",
    ),
    (
        "NUTS region",
        {"capabilities": capabilities(regions=["SE11", "SE999"])},
        "capabilities.regions[1]",
        "SE999",
    ),
    ("TRL", {"capabilities": capabilities(trl=10)}, "capabilities.trl", "1-9"),
    (
        "51 CPV codes",
        {"capabilities": capabilities(cpv_codes=["31158100"] * 51)},
        "capabilities.cpv_codes",
        "50",
    ),
    ("31 keywords", {"capabilities": capabilities(keywords=["el"] * 31)}, "capabilities.keywords", "30"),
    ("21 regions", {"capabilities": capabilities(regions=["SE11"] * 21)}, "capabilities.regions", "20"),
    (
        "description",
        {"capabilities": capabilities(description="x" * 5001)},
        "capabilities.description",
        "5000",
    ),
    ("org_number", {"org_number": "556036-0794"}, "org_number", ""),
    ("contact_email", {"contact_email": "not-an-address"}, "contact_email", ""),
    ("size", {"size": "huge"}, "size", ""),
    ("founded in the future", {"founded_year": 2999}, "founded_year", "1800"),
    ("blank name", {"name": "   "}, "name", ""),
    (
        "webhook secret",
        {"alerts": {"webhook_url": "https://x.se/h", "webhook_secret": "short"}},
        "alerts.webhook_secret",
        "16",
    ),
    ("unknown field", {"website": "https://x.se"}, "website", "unknown field"),
    (
        "unknown nested field",
        {"capabilities": capabilities(colour="blue")},
        "capabilities.colour",
        "unknown field",
    ),
]


@pytest.mark.parametrize(("rule", "change", "field", "reason"), INVALID, ids=[i[0] for i in INVALID])
async def test_each_rule_names_the_failing_field(
    http: httpx.AsyncClient, rule: str, change: dict[str, Any], field: str, reason: str
) -> None:
    failures = errors(await http.post("/v1/suppliers", json=registration(**change)))
    assert field in failures, failures
    assert reason in failures[field]


async def test_malformed_json_is_422_and_a_second_org_number_409(http: httpx.AsyncClient) -> None:
    bad = await http.post("/v1/suppliers", content=b'{"name": ', headers={"Content-Type": "application/json"})
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"][0]["reason"] == "the body is not valid JSON"
    body = registration()
    assert (await http.post("/v1/suppliers", json=body)).status_code == 201
    again = await http.post("/v1/suppliers", json={**body, "name": "Another AB"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"


async def test_a_body_over_64_kib_is_413(http: httpx.AsyncClient) -> None:
    big = registration(capabilities=capabilities(description="x" * (65 * 1024)))
    refused = await http.post("/v1/suppliers", json=big)
    assert refused.status_code == 413
    assert refused.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_authorization_matrix(http: httpx.AsyncClient, method: str) -> None:
    a = await register(http)
    b = await register(http)
    url = f"/v1/suppliers/{a['id']}"
    body = {"name": "Ändrat AB"} if method == "PATCH" else None

    async def call(headers: dict[str, str]) -> int:
        return (await http.request(method, url, json=body, headers=headers)).status_code

    assert await call({}) == 401
    assert await call(bearer("not-a-token")) == 401
    assert await call(bearer(b["token"])) == 403
    assert await call(OPERATOR) == (204 if method == "DELETE" else 200)
    own = await register(http)
    own_status = (
        await http.request(method, f"/v1/suppliers/{own['id']}", json=body, headers=bearer(own["token"]))
    ).status_code
    assert own_status == (204 if method == "DELETE" else 200)


async def test_a_stale_if_match_gets_412(http: httpx.AsyncClient) -> None:
    supplier = await register(http)
    url, auth = f"/v1/suppliers/{supplier['id']}", bearer(supplier["token"])
    first = await http.patch(url, json={"name": "Först AB"}, headers={**auth, "If-Match": 'W/"1"'})
    assert first.status_code == 200 and first.headers["ETag"] == 'W/"2"'
    stale = await http.patch(url, json={"name": "Sist AB"}, headers={**auth, "If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert stale.json()["error"]["current_etag"] == 'W/"2"'
    assert (await http.delete(url, headers={**auth, "If-Match": 'W/"1"'})).status_code == 412
    assert (await http.get(url, headers=auth)).json()["name"] == "Först AB"
    assert (await http.delete(url, headers={**auth, "If-Match": 'W/"2"'})).status_code == 204


async def test_a_patch_merges_and_publishes_one_update(stack: Stack, http: httpx.AsyncClient) -> None:
    supplier = await register(http)
    url, auth = f"/v1/suppliers/{supplier['id']}", bearer(supplier["token"])
    patch = {"name": "Laddbolaget Sverige AB", "capabilities": {"keywords": ["snabbladdning"], "trl": 8}}
    changed = await http.patch(url, json=patch, headers=auth)
    assert changed.status_code == 200, changed.text
    profile = changed.json()
    assert profile["version"] == 2
    assert profile["capabilities"]["keywords"] == ["snabbladdning"]
    assert profile["capabilities"]["regions"] == supplier["capabilities"]["regions"]  # kept
    assert profile["capabilities"]["trl"] == 8

    nothing = await http.patch(url, json={"name": "Laddbolaget Sverige AB"}, headers=auth)
    assert nothing.json()["version"] == 2  # no change, no new version, no event

    def updated(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in events if e["type"] == "supplier.updated"]

    events = updated(await events_of(stack, supplier["id"], lambda es: bool(updated(es))))
    await asyncio.sleep(0.5)
    events = updated(await events_of(stack, supplier["id"], lambda es: bool(updated(es))))
    assert len(events) == 1
    data = events[0]["data"]
    assert data["version"] == 2 and data["name"] == "Laddbolaget Sverige AB"
    assert data["capabilities"] == profile["capabilities"]


async def test_a_patch_is_validated_like_a_registration(http: httpx.AsyncClient) -> None:
    supplier = await register(http)
    url, auth = f"/v1/suppliers/{supplier['id']}", bearer(supplier["token"])
    bad_cpv = {"capabilities": {"cpv_codes": ["31158100", "45000000-7", "12345678"]}}
    assert "capabilities.cpv_codes[2]" in errors(await http.patch(url, json=bad_cpv, headers=auth))
    assert "org_number" in errors(await http.patch(url, json={"org_number": "556036-0793"}, headers=auth))
    assert "name" in errors(await http.patch(url, json={"name": None}, headers=auth))
    hook = {"alerts": {"webhook_url": "https://laddbolaget.se/hook"}}
    assert "alerts" in errors(await http.patch(url, json=hook, headers=auth))  # needs a secret
    assert (await http.get(url, headers=auth)).json()["version"] == 1


async def test_delete_erases_personal_data_and_publishes_a_removal(
    stack: Stack, http: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    marker = secrets.token_hex(6)
    body = registration(
        name=f"Raderas {marker} AB",
        contact_email=f"kontakt-{marker}@example.se",
        capabilities=capabilities(description=f"Hemlig beskrivning {marker}", keywords=[f"ord{marker}"]),
    )
    created = await http.post("/v1/suppliers", json=body)
    supplier = created.json()
    url, auth = f"/v1/suppliers/{supplier['id']}", bearer(supplier["token"])
    assert (await http.delete(url, headers=auth)).status_code == 204
    assert (await http.get(url, headers=auth)).status_code == 401  # its token died with it
    assert (await http.patch(url, json={"name": "x"}, headers=auth)).status_code == 401
    assert (await http.get(url, headers=OPERATOR)).status_code == 404
    assert (await http.delete(url, headers=OPERATOR)).status_code == 404

    def removed(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in events if e["type"] == "supplier.removed"]

    events = removed(await events_of(stack, supplier["id"], lambda es: bool(removed(es))))
    assert len(events) == 1
    assert set(events[0]["data"]) == {"id", "version", "removed_at"}
    assert marker not in json.dumps(events[0]) and body["org_number"] not in json.dumps(events[0])

    async def outbox_drained() -> bool:
        return not await db.fetchval("SELECT count(*) FROM suppliers.outbox WHERE key = $1", supplier["id"])

    await eventually(outbox_drained)
    row = await db.fetchrow("SELECT * FROM suppliers.suppliers WHERE id = $1", supplier["id"])
    assert row["profile"] is None and row["org_number"] is None and row["removed_at"] is not None
    tables = await db.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'suppliers'"
    )
    for table in tables:
        found = await db.fetchval(
            f'SELECT count(*) FROM suppliers."{table["table_name"]}" t WHERE t::text LIKE $1', f"%{marker}%"
        )
        assert found == 0, table["table_name"]
    again = await http.post("/v1/suppliers", json=body)  # the organisation may register anew
    assert again.status_code == 201


async def test_fifty_concurrent_registrations_all_land_with_fifty_events(
    stack: Stack, services: dict[str, str]
) -> None:
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=services["suppliers"], timeout=30, limits=limits) as http:
        responses = await asyncio.gather(
            *(http.post("/v1/suppliers", json=registration()) for _ in range(50))
        )
    assert [r.status_code for r in responses] == [201] * 50
    ids = {r.json()["id"] for r in responses}

    def registered(records: list) -> list[dict[str, Any]]:  # type: ignore[type-arg]
        return [b for b in bodies(records) if b.get("subject") in ids and b["type"] == "supplier.registered"]

    records = await read_until(stack.kafka_bootstrap, SUPPLIERS, lambda rs: len(registered(rs)) >= 50)
    events = registered(records)
    assert len(events) == 50
    assert {e["subject"] for e in events} == ids


async def test_cpv_search_finds_codes_in_both_languages(http: httpx.AsyncClient) -> None:
    ambulance = await http.get("/v1/cpv", params={"q": "ambulance", "lang": "en"})
    assert ambulance.status_code == 200
    hits = ambulance.json()
    assert 0 < len(hits) <= 50
    assert set(hits[0]) == {"code", "code8", "label", "level"}
    assert any("mbulance" in h["label"] for h in hits)
    charging = (await http.get("/v1/cpv", params={"q": "laddstolpar", "lang": "sv"})).json()
    assert charging and all(len(h["code8"]) == 8 for h in charging)
    assert len((await http.get("/v1/cpv", params={"q": "a"})).json()) <= 50


@pytest.mark.parametrize(
    "params", [{"q": ""}, {"q": "   "}, {"q": "x" * 101}, {}, {"q": "buss", "lang": "de"}]
)
async def test_cpv_search_rejects_bad_queries(http: httpx.AsyncClient, params: dict[str, str]) -> None:
    failures = errors(await http.get("/v1/cpv", params=params))
    assert set(failures) & {"q", "lang"}


async def test_the_openapi_document_has_examples(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    post = spec["paths"]["/v1/suppliers"]["post"]
    assert post["requestBody"]["content"]["application/json"]["examples"]
    assert {"409", "413", "422", "429"} <= set(post["responses"])
    patch = spec["paths"]["/v1/suppliers/{supplier_id}"]["patch"]
    assert patch["responses"]["412"]["content"]["application/json"]["example"]["error"]["code"]


async def test_a_token_lives_90_days_and_its_holder_or_an_operator_gets_a_fresh_one(
    http: httpx.AsyncClient,
) -> None:
    supplier = await register(http)
    expires = datetime.fromisoformat(supplier["token_expires_at"])
    assert timedelta(days=89) < expires - datetime.now(UTC) <= timedelta(days=90, seconds=2)
    url = f"/v1/suppliers/{supplier['id']}/token"
    fresh = await http.post(url, headers=bearer(supplier["token"]))
    assert fresh.status_code == 200, fresh.text
    assert set(fresh.json()) == {"token", "expires_at"}
    got = await http.get(f"/v1/suppliers/{supplier['id']}", headers=bearer(fresh.json()["token"]))
    assert got.status_code == 200
    assert (await http.post(url, headers=OPERATOR)).status_code == 200
    other = await register(http)
    assert (await http.post(url, headers=bearer(other["token"]))).status_code == 403
    assert (await http.post(url)).status_code == 401

    assert (await http.delete(f"/v1/suppliers/{supplier['id']}", headers=OPERATOR)).status_code == 204
    assert (await http.post(url, headers=bearer(fresh.json()["token"]))).status_code == 401
    assert (await http.post(url, headers=OPERATOR)).status_code == 404


async def test_an_erased_suppliers_token_is_refused_by_every_service(
    stack: Stack, services: dict[str, str], http: httpx.AsyncClient
) -> None:
    supplier = await register(http)
    sid, auth = supplier["id"], bearer(supplier["token"])
    reads = {
        "suppliers": f"{services['suppliers']}/v1/suppliers/{sid}",
        "needs": f"{services['needs']}/v1/needs/{uuid.uuid4()}",  # 404 to a valid token
        "matcher": f"{services['matcher']}/v1/suppliers/{sid}/matches",
        "notifier": f"{services['notifier']}/v1/inbox",
    }
    async with httpx.AsyncClient(timeout=60) as client:
        for url in reads.values():
            assert (await client.get(url, headers=auth)).status_code in (200, 404), url
        assert (await http.delete(f"/v1/suppliers/{sid}", headers=auth)).status_code == 204
        # Each service learns of the erasure from the suppliers topic, not by asking.
        for url in reads.values():

            async def refused(url: str = url) -> bool:
                return (await client.get(url, headers=auth)).status_code == 401

            await eventually(refused, timeout=60, interval=0.2)
        body = (await client.get(reads["notifier"], headers=auth)).json()
        assert body["error"]["code"] == "unauthenticated"


async def test_erasure_puts_a_tombstone_on_the_topic_after_the_removal(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    supplier = await register(http)
    key = supplier["id"].encode()
    assert (await http.delete(f"/v1/suppliers/{supplier['id']}", headers=OPERATOR)).status_code == 204

    def mine(records: list) -> list:  # type: ignore[type-arg]
        return [r for r in records if r.key == key]

    records = mine(
        await read_until(stack.kafka_bootstrap, SUPPLIERS, lambda rs: any(r.value is None for r in mine(rs)))
    )
    types = [json.loads(r.value)["type"] if r.value is not None else None for r in records]
    assert types == ["supplier.registered", "supplier.removed", None]
    assert not records[-1].headers  # no CloudEvents headers: a tombstone is no event


async def test_tokens_expire_after_their_lifetime(stack: Stack) -> None:
    lifetime_s = 2
    with serve(stack, ["suppliers"], INNOMATCH_TOKEN_TTL_DAYS=str(lifetime_s / 86400)) as urls:
        async with httpx.AsyncClient(base_url=urls["suppliers"], timeout=10) as http:
            supplier = await register(http)
            url, auth = f"/v1/suppliers/{supplier['id']}", bearer(supplier["token"])
            assert (await http.get(url, headers=auth)).status_code == 200
            await asyncio.sleep(lifetime_s + 1.5)
            expired = await http.get(url, headers=auth)
            assert expired.status_code == 401
            assert expired.json()["error"]["code"] == "unauthenticated"
            assert (await http.post(f"{url}/token", headers=auth)).status_code == 401
            fresh = await http.post(f"{url}/token", headers=OPERATOR)  # an operator re-issues
            assert (await http.get(url, headers=bearer(fresh.json()["token"]))).status_code == 200
