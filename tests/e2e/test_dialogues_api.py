"""Market dialogues through HTTP, with the suppliers and needs services running as processes
against the broker and PostgreSQL: the needs service learns the registered suppliers from the
suppliers topic, and the dialogue's events reach their topic."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.contracts.topics import ALERTS, DIALOGUES
from tests.conftest import OPERATOR_TOKEN, Stack
from tests.e2e.conftest import serve
from tests.factories import authority, need, registration
from tests.kafka_helpers import bodies, eventually, read_until
from tests.receivers import WebhookReceiver

pytestmark = pytest.mark.e2e

OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
SECRET = "dialogue-receiver-secret-0123"


@pytest.fixture(scope="module")
def two_services(stack: Stack) -> Iterator[dict[str, str]]:
    """Suppliers and needs, and the notifier for the dialogue notices (no matcher: slow to start)."""
    with serve(stack, ["suppliers", "needs", "notifier"]) as urls:
        yield urls


@pytest.fixture
async def http(two_services: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=two_services["needs"], timeout=30) as client:
        yield client


def bearer(party: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {party['token']}"}


async def _group_and_need(http: httpx.AsyncClient, **group: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    member = await http.post("/v1/authorities", json=authority(), headers=OPERATOR)
    assert member.status_code == 201, member.text
    body = {"name": "Elbussgruppen", "focus_area": "transport", "member_authority_ids": [member.json()["id"]]}
    body.update(group)
    group = await http.post("/v1/buyer-groups", json=body, headers=OPERATOR)
    assert group.status_code == 201, group.text
    published = await http.post(
        f"/v1/buyer-groups/{group.json()['id']}/needs", json=need(), headers=bearer(group.json())
    )
    assert published.status_code == 201, published.text
    return group.json(), published.json()


async def _suppliers(two_services: dict[str, str], n: int, **more: Any) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=two_services["suppliers"], timeout=30) as client:
        created = [
            await client.post("/v1/suppliers", json=registration(name=f"Leverantör {i} AB", **more))
            for i in range(n)
        ]
    assert all(c.status_code == 201 for c in created), [c.text for c in created]
    return [c.json() for c in created]


def _dialogue(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Marknadsdialog om snabbladdning",
        "agenda": "1. Behovet\n2. Era frågor",
        "closes_at": (datetime.now(UTC) + timedelta(days=14)).isoformat(),
    }
    body.update(overrides)
    return body


async def _open(
    http: httpx.AsyncClient, group: dict[str, Any], need_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Open the dialogue once the needs service has learnt the suppliers from their topic."""

    async def opened() -> httpx.Response | None:
        response = await http.post(f"/v1/needs/{need_id}/dialogues", json=body, headers=bearer(group))
        return None if response.status_code == 404 else response

    response = await eventually(opened, timeout=60, interval=0.2)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_a_dialogue_with_invited_suppliers_from_question_to_record(
    stack: Stack, http: httpx.AsyncClient, two_services: dict[str, str]
) -> None:
    group, the_need = await _group_and_need(http)
    asker, other, outsider = await _suppliers(two_services, 3)
    dialogue = await _open(
        http, group, the_need["id"], _dialogue(invitees={"supplier_ids": [asker["id"], other["id"]]})
    )
    url = f"/v1/dialogues/{dialogue['id']}"
    assert {s["supplier_id"] for s in dialogue["suppliers"]} == {asker["id"], other["id"]}
    assert dialogue["buyer_groups"] == [{"id": group["id"], "name": "Elbussgruppen"}]

    # A supplier nobody registered is not found.
    stranger = str(uuid.uuid4())
    unknown = await http.post(
        f"/v1/needs/{the_need['id']}/dialogues",
        json=_dialogue(invitees={"supplier_ids": [stranger]}),
        headers=bearer(group),
    )
    assert unknown.status_code == 404 and stranger in unknown.json()["error"]["message"]

    asked = await http.post(
        f"{url}/questions", json={"question": "Kan laddarna delas med taxi?"}, headers=bearer(asker)
    )
    assert asked.status_code == 201, asked.text
    question = asked.json()

    # Until it is answered, only the asker and the group see the question.
    assert (await http.get(f"{url}/questions", headers=bearer(other))).json() == []
    [own] = (await http.get(f"{url}/questions", headers=bearer(asker))).json()
    assert own["id"] == question["id"] and own["mine"] is True and own["answer"] is None
    assert [q["id"] for q in (await http.get(f"{url}/questions", headers=bearer(group))).json()] == [
        question["id"]
    ]

    answered = await http.post(
        f"{url}/questions/{question['id']}/answer",
        json={"answer": "Ja, om effekten räcker."},
        headers=bearer(group),
    )
    assert answered.status_code == 200, answered.text
    seen_by_other = await http.get(f"{url}/questions", headers=bearer(other))
    [seen] = seen_by_other.json()
    assert (seen["question"], seen["answer"], seen["mine"]) == (
        "Kan laddarna delas med taxi?",
        "Ja, om effekten räcker.",
        False,
    )
    assert asker["id"] not in seen_by_other.text and "asked_by" not in seen_by_other.text
    again = await http.post(
        f"{url}/questions/{question['id']}/answer", json={"answer": "Igen"}, headers=bearer(group)
    )
    assert again.status_code == 409

    # Who may not take part.
    for response in (
        await http.post(f"{url}/questions", json={"question": "Får jag vara med?"}, headers=bearer(outsider)),
        await http.get(url, headers=bearer(outsider)),
        await http.get(f"{url}/questions", headers=bearer(outsider)),
        await http.post(f"{url}/responses", json={"response": "accept"}, headers=bearer(outsider)),
        await http.get(f"{url}/record", headers=bearer(asker)),
    ):
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "forbidden"
    assert (await http.get(url)).status_code == 401
    missing = await http.get(f"/v1/dialogues/{uuid.uuid4()}", headers=bearer(asker))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    missing_q = await http.post(
        f"/v1/dialogues/{uuid.uuid4()}/questions", json={"question": "?"}, headers=bearer(asker)
    )
    assert missing_q.status_code == 404

    # Responses: written input is at most 20 KB.
    too_long = await http.post(
        f"{url}/responses", json={"response": "input", "text": "å" * 10_241}, headers=bearer(other)
    )
    assert too_long.status_code == 422, too_long.text
    [field] = too_long.json()["error"]["fields"]
    assert field["field"] == "text" and "20482 bytes, 2 beyond the limit of 20480 bytes" in field["reason"]
    for body in ({"response": "accept"}, {"response": "input", "text": "Vi har byggt <tre> depåer."}):
        sent = await http.post(f"{url}/responses", json=body, headers=bearer(other))
        assert sent.status_code == 201, sent.text
        assert sent.json()["supplier_id"] == other["id"]
    declined = await http.post(f"{url}/responses", json={"response": "decline"}, headers=bearer(asker))
    assert declined.status_code == 201

    # The buyer's record names the asker (the answers may become public documents).
    record = await http.get(f"{url}/record", headers=bearer(group))
    assert record.status_code == 200 and record.headers["content-type"].startswith("application/json")
    kept = record.json()
    [q] = kept["questions"]
    assert (q["question"], q["answer"]) == ("Kan laddarna delas med taxi?", "Ja, om effekten räcker.")
    assert q["asked_by"]["id"] == asker["id"] and q["answered_by"]["id"] == group["id"]
    assert q["asked_at"] and q["answered_at"]
    [written] = kept["written_inputs"]
    assert (written["supplier"]["id"], written["text"]) == (other["id"], "Vi har byggt <tre> depåer.")
    parts = {s["supplier_id"]: (s["response"], s["took_part"]) for s in kept["suppliers"]}
    assert parts == {asker["id"]: ("declined", True), other["id"]: ("accepted", True)}
    assert (await http.get(f"{url}/record", headers=OPERATOR)).status_code == 200

    for html in (
        await http.get(f"{url}/record", params={"format": "html"}, headers=bearer(group)),
        await http.get(f"{url}/record", headers={**bearer(group), "Accept": "text/html"}),
    ):
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        page = html.text
        for text in (
            "Kan laddarna delas med taxi?",
            "Ja, om effekten räcker.",
            "Vi har byggt &lt;tre&gt; depåer.",
        ):
            assert text in page
        assert asker["id"] in page and "Leverantör 0 AB" in page

    # The events: opened, two invitations, the answer (naming no asker), and each supplier's
    # first question or response, once (the asker's later decline adds none).
    def mine(records: list) -> list[dict[str, Any]]:  # type: ignore[type-arg]
        return [b for b in bodies(records) if b.get("subject") == dialogue["id"]]

    events = mine(await read_until(stack.kafka_bootstrap, DIALOGUES, lambda rs: len(mine(rs)) >= 6))
    assert [e["type"] for e in events] == [
        "dialogue.opened",
        "dialogue.supplier_invited",
        "dialogue.supplier_invited",
        "dialogue.supplier_answered",
        "dialogue.question_answered",
        "dialogue.supplier_answered",
    ]
    assert events[4]["data"]["question"]["answer"] == "Ja, om effekten räcker."
    assert "asked_by" not in str(events[4])
    assert [events[i]["data"]["supplier_id"] for i in (3, 5)] == [asker["id"], other["id"]]


async def test_nothing_is_asked_or_answered_after_closes_at(
    http: httpx.AsyncClient, two_services: dict[str, str]
) -> None:
    group, the_need = await _group_and_need(http)
    [invited] = await _suppliers(two_services, 1)
    closes_at = datetime.now(UTC) + timedelta(seconds=4)
    dialogue = await _open(
        http,
        group,
        the_need["id"],
        _dialogue(closes_at=closes_at.isoformat(), invitees={"supplier_ids": [invited["id"]]}),
    )
    url = f"/v1/dialogues/{dialogue['id']}"
    asked = await http.post(
        f"{url}/questions", json={"question": "Hinner ni svara?"}, headers=bearer(invited)
    )
    assert asked.status_code == 201, asked.text
    await asyncio.sleep(max(0.0, (closes_at - datetime.now(UTC)).total_seconds()) + 0.5)

    late_question = await http.post(
        f"{url}/questions", json={"question": "För sent?"}, headers=bearer(invited)
    )
    late_answer = await http.post(
        f"{url}/questions/{asked.json()['id']}/answer", json={"answer": "För sent."}, headers=bearer(group)
    )
    for late in (late_question, late_answer):
        assert late.status_code == 409, late.text
        assert "after closes_at" in late.json()["error"]["message"]
    past = await http.post(
        f"/v1/needs/{the_need['id']}/dialogues",
        json=_dialogue(closes_at=(datetime.now(UTC) - timedelta(minutes=1)).isoformat(), open=True),
        headers=bearer(group),
    )
    assert past.status_code == 422 and past.json()["error"]["fields"][0]["field"] == "closes_at"
    # The service closes it by itself (dialogue.closed).
    closed = await eventually(lambda: _status(http, url, group), timeout=30, interval=0.5)
    assert closed == "closed"


async def _status(http: httpx.AsyncClient, url: str, group: dict[str, Any]) -> str | None:
    status = (await http.get(url, headers=bearer(group))).json()["status"]
    return status if status == "closed" else None


async def test_an_open_dialogue_is_public_and_asking_joins_it(
    http: httpx.AsyncClient, two_services: dict[str, str]
) -> None:
    group, the_need = await _group_and_need(http)
    [newcomer] = await _suppliers(two_services, 1)
    dialogue = await _open(http, group, the_need["id"], _dialogue(open=True))
    url = f"/v1/dialogues/{dialogue['id']}"
    public = await http.get(url)
    assert public.status_code == 200 and public.json()["open"] is True and public.json()["suppliers"] == []

    asked = await http.post(
        f"{url}/questions", json={"question": "Hur stora depåer?"}, headers=bearer(newcomer)
    )
    assert asked.status_code == 201, asked.text
    [joined] = (await http.get(url)).json()["suppliers"]
    assert joined["supplier_id"] == newcomer["id"] and joined["invited_at"] is None and joined["joined_at"]


async def test_the_notifier_tells_participants_of_the_invitation_and_of_every_answer(
    stack: Stack, http: httpx.AsyncClient, two_services: dict[str, str]
) -> None:
    receiver = WebhookReceiver(SECRET).start()
    hook = {"webhook_url": receiver.url, "webhook_secret": SECRET, "mode": "daily"}
    try:
        group, the_need = await _group_and_need(http, alerts=hook)
        asker, other, outsider = await _suppliers(two_services, 3, alerts=hook)
        invited = [asker["id"], other["id"]]
        dialogue = await _open(http, group, the_need["id"], _dialogue(invitees={"supplier_ids": invited}))
        url = f"/v1/dialogues/{dialogue['id']}"
        asked = await http.post(
            f"{url}/questions", json={"question": "Vilken effekt?"}, headers=bearer(asker)
        )
        answered = await http.post(
            f"{url}/questions/{asked.json()['id']}/answer", json={"answer": "200 kW."}, headers=bearer(group)
        )
        assert answered.status_code == 200, answered.text

        async with httpx.AsyncClient(base_url=two_services["notifier"], timeout=30) as notifier:

            async def notices(party: dict[str, Any], want: int) -> list[dict[str, Any]] | None:
                got = await notifier.get("/v1/inbox/dialogues", headers=bearer(party))
                assert got.status_code == 200, got.text
                mine = [n for n in got.json() if n["dialogue"]["id"] == dialogue["id"]]
                return mine if len(mine) >= want else None

            for party in (asker, other):
                seen = await eventually(lambda party=party: notices(party, 2), timeout=60, interval=0.3)
                assert sorted(n["kind"] for n in seen) == ["answer", "invitation"]
                [answer] = [n for n in seen if n["kind"] == "answer"]
                assert answer["question"]["answer"] == "200 kW." and "200 kW." in answer["summary"]
                assert asker["id"] not in str(answer)
            [for_group] = await eventually(lambda: notices(group, 1), timeout=60, interval=0.3)
            assert for_group["kind"] == "answer"
            assert await notices(outsider, 1) is None

        # The same notices reach the participants' webhooks at once (their mode is daily),
        # signed, and the audit trail records each delivery.
        principals = [f"supplier:{asker['id']}", f"supplier:{other['id']}", f"buyer_group:{group['id']}"]

        def pushed() -> list[Any] | None:
            got = [
                r
                for r in receiver.accepted()
                if r.body.get("type") == "dialogue_notice" and r.body["dialogue"]["id"] == dialogue["id"]
            ]
            return got if len(got) >= 5 else None

        got = await eventually(pushed, timeout=60, interval=0.3)
        assert all(r.signature_ok for r in got)
        assert sorted((r.body["recipient"], r.body["kind"]) for r in got) == sorted(
            [(p, "answer") for p in principals] + [(p, "invitation") for p in principals[:2]]
        )
        assert all(
            asker["id"] not in json.dumps(r.body["question"]) for r in got if r.body["kind"] == "answer"
        )

        def audited(records: list) -> list[dict[str, Any]]:  # type: ignore[type-arg]
            return [
                b
                for b in bodies(records)
                if str(b.get("data", {}).get("match_id", "")).startswith(f"dialogue:{dialogue['id']}/")
            ]

        trail = audited(await read_until(stack.kafka_bootstrap, ALERTS, lambda rs: len(audited(rs)) >= 5))
        assert {e["type"] for e in trail} == {"alert.delivered"}
        assert {e["data"]["recipient"] for e in trail} == set(principals)
        assert {e["data"]["id"] for e in trail} == {r.delivery_id for r in got}
    finally:
        receiver.stop()
