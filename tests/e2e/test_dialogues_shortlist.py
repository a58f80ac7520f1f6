"""A market dialogue with the need's shortlist, through all four services: the matcher ranks
the suppliers, the needs service learns the ranking from the matches topic and invites the
top N."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import OPERATOR_TOKEN
from tests.factories import authority, need, registration
from tests.kafka_helpers import eventually

pytestmark = pytest.mark.e2e

OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def bearer(party: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {party['token']}"}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


# The module's matcher first embeds what earlier modules left (see conftest._caught_up), then
# this test's need and suppliers: more than the default 120 s on a busy machine.
@pytest.mark.timeout(300)
async def test_shortlist_top_invites_the_needs_best_matches(
    http: httpx.AsyncClient, services: dict[str, str]
) -> None:
    needs, suppliers, matcher = services["needs"], services["suppliers"], services["matcher"]
    word = "zq" + secrets.token_hex(5)
    member = await http.post(f"{needs}/v1/authorities", json=authority(), headers=OPERATOR)
    body = {"name": "Elbussgruppen", "focus_area": "transport", "member_authority_ids": [member.json()["id"]]}
    group = (await http.post(f"{needs}/v1/buyer-groups", json=body, headers=OPERATOR)).json()
    # A subject and a CPV code no other test or the demo data use, and the suppliers' own
    # words: whatever else the stack holds, these five are the need's top five.
    description = f"Gröna tak av sedum och mossor på busskurer och hållplatser, {word}."
    cpv = ["03441000"]
    published = await http.post(
        f"{needs}/v1/buyer-groups/{group['id']}/needs",
        json=need(title="Gröna tak på busskurer", description=description, cpv_codes=cpv),
        headers=bearer(group),
    )
    assert published.status_code == 201, published.text
    need_id = published.json()["id"]
    fitting = []
    for i in range(5):
        caps = {
            **registration()["capabilities"],
            "cpv_codes": cpv,
            "keywords": ["sedumtak", word],
            "description": description,
        }
        created = await http.post(
            f"{suppliers}/v1/suppliers", json=registration(name=f"Takgrönt {i} AB", capabilities=caps)
        )
        assert created.status_code == 201, created.text
        fitting.append(created.json())
    mine = {s["id"] for s in fitting}

    async def ranked() -> list[str] | None:
        got = await http.get(f"{matcher}/v1/needs/{need_id}/matches?limit=5", headers=bearer(group))
        top = [m["supplier_id"] for m in got.json()["matches"]] if got.status_code == 200 else []
        return top if set(top) == mine else None

    await eventually(ranked, timeout=180, interval=0.5)

    async def opened() -> dict[str, Any] | None:
        """Open once the needs service holds the same top 5 (it learns them from the topic)."""
        response = await http.post(
            f"{needs}/v1/needs/{need_id}/dialogues",
            json={
                "title": "Marknadsdialog",
                "closes_at": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
                "invitees": {"shortlist_top": 5},
            },
            headers=bearer(group),
        )
        if response.status_code == 409:  # no matches learnt yet
            return None
        assert response.status_code == 201, response.text
        dialogue: dict[str, Any] = response.json()
        return dialogue if {s["supplier_id"] for s in dialogue["suppliers"]} == mine else None

    dialogue = await eventually(opened, timeout=60, interval=0.5)
    url = f"{needs}/v1/dialogues/{dialogue['id']}"
    assert all(s["invited_at"] for s in dialogue["suppliers"])

    sixth = await http.post(f"{suppliers}/v1/suppliers", json=registration(name="Sjätte AB"))
    refused = await http.post(f"{url}/questions", json={"question": "Och jag?"}, headers=bearer(sixth.json()))
    assert refused.status_code == 403
    asked = await http.post(
        f"{url}/questions", json={"question": "Vilken effekt?"}, headers=bearer(fitting[0])
    )
    assert asked.status_code == 201, asked.text
