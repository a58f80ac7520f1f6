"""`innomatch report` on data created through the HTTP APIs.

The broker is shared by the whole test session, so the topics hold other tests' events too:
the test takes a report before and after creating its own data and checks the exact
differences. Matches and alerts are published here as events (the matcher and notifier
would add their own at unpredictable times); they are dated in the far future, so a report
with --since on that day sees exactly these and nothing else.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.contracts.events import (
    AlertDelivered,
    AlertFailed,
    AlertState,
    CloudEvent,
    DialogueOpened,
    DialogueParticipation,
    DialogueState,
    DialogueSupplierAnswered,
    MatchExplanation,
    MatchFound,
    MatchState,
    MatchUpdated,
    MatchWithdrawn,
    NeedPublished,
    NeedState,
    alert_id,
    match_id,
    new_event,
)
from services.contracts.topics import ALERTS, BUYER_GROUPS, DIALOGUES, MATCHES, NEEDS, SUPPLIERS
from tests.conftest import OPERATOR_TOKEN, Stack
from tests.factories import authority, need, registration
from tests.kafka_helpers import bodies, produce, read_until

pytestmark = pytest.mark.e2e

OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
FUTURE_DAY1 = datetime(2099, 1, 1, 10, tzinfo=UTC)
FUTURE_DAY2 = datetime(2099, 1, 2, 10, tzinfo=UTC)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def run_report(stack: Stack, services: dict[str, str], *args: str) -> str:
    env = {**os.environ, **stack.env()}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        "report",
        "--needs-url",
        services["needs"],
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def report_json(stack: Stack, services: dict[str, str], *args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(await run_report(stack, services, "--format", "json", *args))
    return result


def diff(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """What changed between two count tables, without the keys that did not."""
    keys = set(before) | set(after)
    return {
        k: after.get(k, 0) - before.get(k, 0) for k in sorted(keys) if after.get(k, 0) != before.get(k, 0)
    }


async def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


async def seen(bootstrap: str, topic: str, wanted: dict[str, int]) -> None:
    """Wait until each subject has reached the version wanted on the topic."""

    def done(records: list[Any]) -> bool:
        versions: dict[str, int] = {}
        for body in bodies(records):
            subject, version = body.get("subject"), body.get("data", {}).get("version", 0)
            versions[subject] = max(versions.get(subject, 0), version)
        return all(versions.get(s, 0) >= v for s, v in wanted.items())

    await read_until(bootstrap, topic, done)


async def test_report_counts_what_the_apis_created(stack: Stack, services: dict[str, str]) -> None:
    before = await report_json(stack, services)
    async with (
        httpx.AsyncClient(base_url=services["needs"], timeout=30) as needs_api,
        httpx.AsyncClient(base_url=services["suppliers"], timeout=30) as suppliers_api,
    ):

        async def new_authority(level: str) -> str:
            body = authority(level=level, region="SE" if level == "national" else "SE110")
            return str(
                (await created(await needs_api.post("/v1/authorities", json=body, headers=OPERATOR)))["id"]
            )

        local, regional, national = [
            await new_authority(level) for level in ("local", "regional", "national")
        ]
        transport = await created(
            await needs_api.post(
                "/v1/buyer-groups",
                json={
                    "name": "Elbussar",
                    "focus_area": "transport",
                    "member_authority_ids": [local, regional],
                },
                headers=OPERATOR,
            )
        )
        care = await created(
            await needs_api.post(
                "/v1/buyer-groups",
                json={"name": "Vård", "focus_area": "health_care", "member_authority_ids": [national, local]},
                headers=OPERATOR,
            )
        )
        charging = await created(
            await needs_api.post(
                f"/v1/buyer-groups/{transport['id']}/needs", json=need(), headers=bearer(transport["token"])
            )
        )
        monitoring = await created(
            await needs_api.post(
                f"/v1/buyer-groups/{care['id']}/needs",
                json=need(
                    title="Digital tillsyn i hemtjänsten",
                    description="Sensorer och larm för äldre som bor hemma.",
                    cpv_codes=["33100000"],
                    focus_area="health_care",
                    regions=["SE11", "SE232"],
                    procedure="pre_commercial",
                ),
                headers=bearer(care["token"]),
            )
        )
        await created(
            await needs_api.post(f"/v1/needs/{charging['id']}/cosign", headers=bearer(care["token"]))
        )
        await created(
            await needs_api.post(
                f"/v1/needs/{monitoring['id']}/close",
                json={"reason": "Upphandlad"},
                headers=bearer(care["token"]),
            )
        )

        profiles = [
            registration(size="micro", company_type="industrial", founded_year=2024),
            registration(size="large", company_type="other", founded_year=1980),
            registration(size="medium", company_type="industry_service", founded_year=2010),
        ]
        profiles[1]["capabilities"] = {**profiles[1]["capabilities"], "trl": 9}
        startup, large, medium = [
            await created(await suppliers_api.post("/v1/suppliers", json=p)) for p in profiles
        ]

    await seen(stack.kafka_bootstrap, SUPPLIERS, {s["id"]: 1 for s in (startup, large, medium)})
    await seen(stack.kafka_bootstrap, BUYER_GROUPS, {transport["id"]: 1, care["id"]: 1})
    await seen(stack.kafka_bootstrap, NEEDS, {charging["id"]: 2, monitoring["id"]: 2})
    after = await report_json(stack, services)

    n0, n1 = before["needs"], after["needs"]
    assert {k: n1[k] - n0[k] for k in ("total", "open", "closed", "cosigned")} == {
        "total": 2,
        "open": 1,
        "closed": 1,
        "cosigned": 1,
    }
    assert diff(n0["by_focus_area"], n1["by_focus_area"]) == {"health_care": 1, "transport": 1}
    assert diff(n0["by_region"], n1["by_region"]) == {"SE11": 2, "SE232": 1}
    assert diff(n0["by_cpv"], n1["by_cpv"]) == {"31158100": 1, "33100000": 1}
    assert diff(n0["by_procedure"], n1["by_procedure"]) == {"innovation_partnership": 1, "pre_commercial": 1}
    # The co-signed need stands on all three levels; the closed one on national and local.
    assert diff(n0["by_authority_level"], n1["by_authority_level"]) == {
        "local": 2,
        "national": 2,
        "regional": 1,
    }

    g0, g1 = before["buyer_groups"], after["buyer_groups"]
    assert g1["total"] - g0["total"] == 2
    assert g1["member_authorities"] - g0["member_authorities"] == 4
    assert diff(g0["by_focus_area"], g1["by_focus_area"]) == {"health_care": 1, "transport": 1}
    assert diff(g0["by_authority_level"], g1["by_authority_level"]) == {
        "local": 2,
        "national": 1,
        "regional": 1,
    }
    a0, a1 = g0["authorities"], g1["authorities"]
    assert a1["total"] - a0["total"] == 3
    assert diff(a0["by_level"], a1["by_level"]) == {"local": 1, "national": 1, "regional": 1}
    assert diff(a0["in_groups_by_level"], a1["in_groups_by_level"]) == {
        "local": 1,
        "national": 1,
        "regional": 1,
    }
    assert diff(a0["by_region"], a1["by_region"]) == {"SE": 1, "SE110": 2}
    members = {(a["name"], a["level"], a["region"]) for a in a1["in_groups"]}
    assert {("Stockholms kommun", "local", "SE110"), ("Stockholms kommun", "national", "SE")} <= members

    s0, s1 = before["suppliers"], after["suppliers"]
    assert s1["total"] - s0["total"] == 3
    assert diff(s0["by_size"], s1["by_size"]) == {"large": 1, "medium": 1, "micro": 1}
    assert diff(s0["by_company_type"], s1["by_company_type"]) == {
        "industrial": 1,
        "industry_service": 1,
        "other": 1,
    }
    assert diff(s0["by_trl"], s1["by_trl"]) == {"7": 2, "9": 1}
    assert diff(s0["by_supplier_type"], s1["by_supplier_type"]) == {
        "industrial": 1,
        "industry_service": 1,
        "large": 1,
        "sme": 2,
        "startup": 1,
    }
    assert after["records_skipped"] >= before["records_skipped"]

    # Matches and alerts, dated in the future so that nothing else falls in the window.
    await publish_matches_and_alerts(
        stack, startup["id"], large["id"], medium["id"], transport["id"], care["id"]
    )
    await publish_dialogue(stack, transport["id"], invited=[startup["id"], large["id"], medium["id"]])
    window = await report_json(stack, services, "--since", "2099-01-01")
    dialogues = window["dialogues"]
    assert dialogues["total"] == 1
    # The start-up (an SME too) and the large firm answered; the medium-sized SME did not.
    assert dialogues["invited"] == {"invited": 3, "answered": 2, "share": 2 / 3}
    assert dialogues["smes"] == {"invited": 2, "answered": 1, "share": 0.5}
    assert dialogues["startups"] == {"invited": 1, "answered": 1, "share": 1.0}
    assert dialogues["smes_or_startups"] == {"invited": 2, "answered": 1, "share": 0.5}
    assert (window["needs"]["total"], window["suppliers"]["total"], window["buyer_groups"]["total"]) == (
        0,
        0,
        0,
    )
    matches = window["matches"]
    assert (matches["total"], matches["active"], matches["withdrawn"]) == (3, 2, 1)
    assert matches["by_day"] == {"2099-01-01": 2, "2099-01-02": 1}
    assert matches["matched_suppliers"] == {
        "suppliers": 2,
        "known": 2,
        "by_supplier_type": {"industrial": 1, "industry_service": 1, "sme": 2, "startup": 1},
        "sme_share": 1.0,
        "startup_share": 0.5,
    }
    alerts = window["alerts"]
    assert (alerts["total"], alerts["delivered"], alerts["failed"]) == (4, 3, 1)
    assert alerts["by_channel"] == {"email": 1, "inbox": 1, "webhook": 1}
    assert alerts["by_recipient_kind"] == {"buyer_group": 2, "supplier": 1}
    assert alerts["by_day"] == {"2099-01-01": 2, "2099-01-02": 1}
    assert alerts["alerted_suppliers"]["suppliers"] == 2
    assert (alerts["alerted_suppliers"]["sme_share"], alerts["alerted_suppliers"]["startup_share"]) == (
        1.0,
        0.5,
    )


async def publish_matches_and_alerts(
    stack: Stack, startup: str, large: str, medium: str, group_a: str, group_b: str
) -> None:
    # Needs the matcher has never seen, so its own matches never share these ids.
    need_x, need_y = str(uuid.uuid4()), str(uuid.uuid4())

    def state(
        need_id: str, supplier_id: str, at: datetime, version: int = 1, status: str = "active"
    ) -> MatchState:
        return MatchState(
            id=match_id(need_id, supplier_id),
            need_id=need_id,
            supplier_id=supplier_id,
            score=0.8,
            version=version,
            status=status,  # type: ignore[arg-type]
            explanation=MatchExplanation(region_verdict="inom regionen", trl_verdict="mogen nog"),
            updated_at=at,
        )

    m1 = state(need_x, startup, FUTURE_DAY1)
    m2 = state(need_x, large, FUTURE_DAY1)
    m3 = state(need_y, medium, FUTURE_DAY2)
    matches: list[CloudEvent[Any]] = [
        new_event(MatchFound, source="/tests", data=m1, time=FUTURE_DAY1),
        new_event(MatchFound, source="/tests", data=m2, time=FUTURE_DAY1),
        new_event(
            MatchWithdrawn,
            source="/tests",
            data=state(need_x, large, FUTURE_DAY2, 2, "withdrawn"),
            time=FUTURE_DAY2,
        ),
        new_event(MatchFound, source="/tests", data=m3, time=FUTURE_DAY2),
        new_event(
            MatchUpdated, source="/tests", data=state(need_y, medium, FUTURE_DAY2, 2), time=FUTURE_DAY2
        ),
    ]

    def alert(
        cls: Any, recipient: str, m: MatchState, channel: str, outcome: str, at: datetime
    ) -> CloudEvent[Any]:
        data = AlertState(
            id=alert_id(recipient, m.id, channel),
            recipient=recipient,
            match_id=m.id,
            match_version=m.version,
            channel=channel,  # type: ignore[arg-type]
            outcome=outcome,  # type: ignore[arg-type]
            attempts=1,
            error="HTTP 503" if outcome == "failed" else None,
            at=at,
        )
        result: CloudEvent[Any] = new_event(cls, source="/tests", data=data, time=at)
        return result

    alerts = [
        alert(AlertDelivered, f"buyer_group:{group_a}", m1, "webhook", "delivered", FUTURE_DAY1),
        alert(AlertDelivered, f"supplier:{startup}", m1, "inbox", "delivered", FUTURE_DAY1),
        alert(AlertFailed, f"buyer_group:{group_a}", m3, "webhook", "failed", FUTURE_DAY2),
        alert(AlertDelivered, f"buyer_group:{group_b}", m3, "email", "delivered", FUTURE_DAY2),
    ]
    await produce(
        stack.kafka_bootstrap, MATCHES, [(e.subject.encode(), e.model_dump_json().encode()) for e in matches]
    )
    await produce(
        stack.kafka_bootstrap, ALERTS, [(e.subject.encode(), e.model_dump_json().encode()) for e in alerts]
    )


async def publish_dialogue(stack: Stack, group: str, invited: list[str]) -> None:
    """A dialogue opened in the future window, which its first two invitees answer."""
    state = DialogueState(
        id=str(uuid.uuid4()),
        need_id=str(uuid.uuid4()),
        buyer_group_ids=[group],
        title="Marknadsdialog",
        agenda="",
        open_to_all=False,
        closes_at=FUTURE_DAY2,
        status="open",
        invited_supplier_ids=invited,
        version=1,
        opened_at=FUTURE_DAY1,
        updated_at=FUTURE_DAY1,
    )
    events: list[CloudEvent[Any]] = [new_event(DialogueOpened, source="/tests", data=state, time=FUTURE_DAY1)]
    events += [
        new_event(
            DialogueSupplierAnswered,
            source="/tests",
            data=DialogueParticipation(dialogue_id=state.id, supplier_id=s, at=FUTURE_DAY1, dialogue=state),
            time=FUTURE_DAY1,
        )
        for s in invited[:2]
    ]
    await produce(
        stack.kafka_bootstrap, DIALOGUES, [(e.subject.encode(), e.model_dump_json().encode()) for e in events]
    )


async def test_the_html_report_is_written_to_a_file_and_shows_lan_names(
    stack: Stack, services: dict[str, str], tmp_path: Path
) -> None:
    # A need of its own, dated in a far-future window that no other test's events reach.
    at = datetime(2099, 3, 1, 10, tzinfo=UTC)
    state = NeedState.model_validate(
        {
            **need(regions=["SE232", "SE110"], cpv_codes=["31158100"]),
            "id": str(uuid.uuid4()),
            "buyer_group_id": str(uuid.uuid4()),
            "status": "open",
            "version": 1,
            "published_at": at,
            "updated_at": at,
        }
    )
    event = new_event(NeedPublished, source="/tests", data=state, time=at)
    await produce(stack.kafka_bootstrap, NEEDS, [(event.subject.encode(), event.model_dump_json().encode())])
    out = tmp_path / "report.html"
    args = ("--format", "html", "--since", "2099-03-01", "--out", str(out))
    assert await run_report(stack, services, *args) == ""
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<svg" in text and "<h2>Suppliers</h2>" in text
    # The HTML report shows län names, and Swedish CPV labels, next to the codes.
    assert "Västra Götalands län (SE232)" in text and "Stockholms län (SE110)" in text
    assert "Batteriladdningsdon (31158100)" in text
    assert "<h2>Needs per region</h2>" in text
