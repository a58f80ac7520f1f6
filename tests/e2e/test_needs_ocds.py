"""The open needs as OCDS open data, through the needs service running as a process: a need
with a market dialogue's answered question, exported and validated with lib-cove-ocds."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import OPERATOR_TOKEN, Stack
from tests.e2e.conftest import serve
from tests.factories import authority, need, registration
from tests.kafka_helpers import eventually
from tests.ocds_validation import problems, validate

pytestmark = pytest.mark.e2e

OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@pytest.fixture(scope="module")
def services(stack: Stack) -> Iterator[dict[str, str]]:
    """Suppliers (the needs service learns them from their topic) and needs."""
    with serve(stack, ["suppliers", "needs"]) as urls:
        yield urls


@pytest.fixture
async def http(services: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=services["needs"], timeout=30) as client:
        yield client


def bearer(party: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {party['token']}"}


async def test_open_needs_export_as_a_valid_ocds_package_with_anonymous_enquiries(
    http: httpx.AsyncClient, services: dict[str, str], tmp_path: Path
) -> None:
    member = await http.post("/v1/authorities", json=authority(name="Solna stad"), headers=OPERATOR)
    assert member.status_code == 201, member.text
    group = await http.post(
        "/v1/buyer-groups",
        json={
            "name": "Laddgruppen",
            "focus_area": "transport",
            "member_authority_ids": [member.json()["id"]],
        },
        headers=OPERATOR,
    )
    assert group.status_code == 201, group.text
    body = need(cpv_codes=["31158100", "34144900"], regions=["SE11", "SE232"], budget_sek=7_500_000)
    published = await http.post(
        f"/v1/buyer-groups/{group.json()['id']}/needs", json=body, headers=bearer(group.json())
    )
    assert published.status_code == 201, published.text
    the_need = published.json()

    async with httpx.AsyncClient(base_url=services["suppliers"], timeout=30) as suppliers:
        created = await suppliers.post("/v1/suppliers", json=registration(name="Frågvisa Laddare AB"))
    assert created.status_code == 201, created.text
    asker = created.json()

    async def opened() -> httpx.Response | None:
        response = await http.post(
            f"/v1/needs/{the_need['id']}/dialogues",
            json={
                "title": "Marknadsdialog om laddning",
                "closes_at": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
                "invitees": {"supplier_ids": [asker["id"]]},
            },
            headers=bearer(group.json()),
        )
        return None if response.status_code == 404 else response  # supplier not learnt yet

    dialogue = await eventually(opened, timeout=60, interval=0.2)
    assert dialogue.status_code == 201, dialogue.text
    url = f"/v1/dialogues/{dialogue.json()['id']}"
    asked = await http.post(f"{url}/questions", json={"question": "Räcker 150 kW?"}, headers=bearer(asker))
    assert asked.status_code == 201, asked.text
    unanswered = await http.post(
        f"{url}/questions", json={"question": "Vem äger marken?"}, headers=bearer(asker)
    )
    assert unanswered.status_code == 201, unanswered.text
    answered = await http.post(
        f"{url}/questions/{asked.json()['id']}/answer",
        json={"answer": "Ja, vid depåerna."},
        headers=bearer(group.json()),
    )
    assert answered.status_code == 200, answered.text

    # Open data: no token needed.
    response = await http.get("/v1/needs.ocds.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    package = response.json()

    result = validate(package, tmp_path)
    assert problems(result) == {}
    assert len(result["extensions"]["extensions"]) == 2

    (release,) = [r for r in package["releases"] if r["tender"]["id"] == the_need["id"]]
    assert release["ocid"] == f"ocds-innomatch-{the_need['id']}"
    assert release["tag"] == ["planning"] and release["tender"]["status"] == "planning"
    assert release["planning"]["budget"]["amount"] == {"amount": 7_500_000, "currency": "SEK"}
    assert [i["classification"] for i in release["tender"]["items"]] == [
        {"scheme": "CPV", "id": "31158100", "description": "Battery chargers"},
        {"scheme": "CPV", "id": "34144900", "description": "Electric vehicles"},
    ]
    assert release["tender"]["items"][0]["deliveryLocation"]["gazetteer"]["identifiers"] == ["SE11", "SE232"]
    assert release["buyer"] == {"id": group.json()["id"], "name": "Laddgruppen"}
    assert "Solna stad" in {p["name"] for p in release["parties"]}
    (enquiry,) = release["tender"]["enquiries"]
    assert enquiry["id"] == asked.json()["id"]
    assert enquiry["description"] == "Räcker 150 kW?" and enquiry["answer"] == "Ja, vid depåerna."
    assert enquiry["threadID"] == dialogue.json()["id"]
    assert "author" not in enquiry
    text = json.dumps(package, ensure_ascii=False)
    assert asker["id"] not in text and "Frågvisa Laddare AB" not in text
    assert "Vem äger marken?" not in text

    # A closed need leaves the export.
    closed = await http.post(
        f"/v1/needs/{the_need['id']}/close", json={"reason": "Upphandlad"}, headers=bearer(group.json())
    )
    assert closed.status_code == 200, closed.text
    after = (await http.get("/v1/needs.ocds.json")).json()
    assert the_need["id"] not in {r["tender"]["id"] for r in after["releases"]}
