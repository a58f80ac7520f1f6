"""End to end through the running services, a real broker and a real PostgreSQL."""

from __future__ import annotations

import json

import asyncpg
import httpx
import pytest

from services.contracts.topics import SUPPLIERS
from services.infra.settings import SERVICES
from tests.conftest import OPERATOR_TOKEN, Stack
from tests.factories import registration
from tests.kafka_helpers import bodies, eventually, read_until

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("service", SERVICES)
async def test_every_service_serves_health_readiness_metrics_and_docs(
    services: dict[str, str], service: str
) -> None:
    async with httpx.AsyncClient(base_url=services[service]) as http:
        assert (await http.get("/healthz")).json()["status"] == "ok"
        ready = (await http.get("/readyz")).json()
        assert ready == {"status": "ready", "checks": {"database": True, "broker": True, "consumers": True}}
        metrics = await http.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "innomatch_http_requests_total" in metrics.text
        assert (await http.get("/docs")).status_code == 200
        assert (await http.get("/openapi.json")).json()["info"]["title"].lower().endswith(service)


async def test_a_registered_supplier_reaches_the_topic_and_the_matcher(
    stack: Stack, services: dict[str, str], db: asyncpg.Pool
) -> None:
    body = registration()
    async with httpx.AsyncClient(base_url=services["suppliers"]) as http:
        created = await http.post("/v1/suppliers", json=body)
        assert created.status_code == 201, created.text
        supplier = created.json()
        own = await http.get(
            f"/v1/suppliers/{supplier['id']}", headers={"Authorization": f"Bearer {supplier['token']}"}
        )
        assert own.status_code == 200
        assert own.json()["org_number"] == body["org_number"]

    stored = await db.fetchval("SELECT profile FROM suppliers.suppliers WHERE id = $1", supplier["id"])
    assert json.loads(stored)["name"] == body["name"]

    def registered(records: list) -> list:  # type: ignore[type-arg]
        return [b for b in bodies(records) if b.get("subject") == supplier["id"]]

    events = registered(await read_until(stack.kafka_bootstrap, SUPPLIERS, lambda rs: bool(registered(rs))))
    assert len(events) == 1
    event = events[0]
    assert event["type"] == "supplier.registered"
    assert event["specversion"] == "1.0"
    assert event["data"]["capabilities"]["cpv_codes"] == ["31158100"]
    assert event["data"]["org_number"] == body["org_number"]

    async def in_matcher() -> bool:
        return bool(await db.fetchval("SELECT 1 FROM matcher.suppliers WHERE id = $1", supplier["id"]))

    await eventually(in_matcher)
    async with httpx.AsyncClient(base_url=services["matcher"]) as http:
        text = (await http.get("/metrics")).text
    assert 'type="supplier.registered"' in text
    profiles = [ln for ln in text.splitlines() if ln.startswith("innomatch_matcher_supplier_profiles ")]
    assert profiles and float(profiles[0].split()[1]) >= 1

    async def lag_reported() -> list[str]:
        async with httpx.AsyncClient(base_url=services["matcher"]) as http:
            text = (await http.get("/metrics")).text
        return [ln for ln in text.splitlines() if ln.startswith("innomatch_consumer_lag{")]

    lag = await eventually(lag_reported, timeout=15)
    # Each matcher instance reads the suppliers in a group of its own (its replica).
    assert any(f'topic="{SUPPLIERS}"' in ln and 'group="innomatch-matcher-' in ln for ln in lag)


async def test_tokens_decide_who_may_read_a_profile(services: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=services["suppliers"]) as http:
        a = (await http.post("/v1/suppliers", json=registration())).json()
        b = (await http.post("/v1/suppliers", json=registration())).json()
        url = f"/v1/suppliers/{a['id']}"
        assert (await http.get(url)).status_code == 401
        assert (await http.get(url, headers={"Authorization": "Bearer not-a-token"})).status_code == 401
        other = await http.get(url, headers={"Authorization": f"Bearer {b['token']}"})
        assert other.status_code == 403
        operator = await http.get(url, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
        assert operator.status_code == 200
        assert "webhook_secret" not in operator.json()["alerts"]


async def test_an_operator_registers_an_authority_and_a_duplicate_is_refused(
    services: dict[str, str],
) -> None:
    body = {"org_number": "212000-0142", "name": "Testkommunen", "level": "local", "region": "SE110"}
    headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    async with httpx.AsyncClient(base_url=services["needs"]) as http:
        assert (await http.post("/v1/authorities", json=body)).status_code == 401
        first = await http.post("/v1/authorities", json=body, headers=headers)
        assert first.status_code == 201, first.text
        assert (await http.post("/v1/authorities", json=body, headers=headers)).status_code == 409
        company = await http.post(
            "/v1/authorities", json={**body, "org_number": "556036-0793"}, headers=headers
        )
        assert company.status_code == 422
        assert company.json()["error"]["fields"][0]["field"] == "org_number"


async def test_the_inbox_answers_each_principal(services: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=services["notifier"]) as http:
        assert (await http.get("/v1/inbox")).status_code == 401
        inbox = await http.get("/v1/inbox", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
        assert inbox.status_code == 200
        assert inbox.json() == []
