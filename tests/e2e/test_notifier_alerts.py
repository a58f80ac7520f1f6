"""The notifier as a process against the real broker and database, with real receivers: a
webhook HTTP server that checks signatures and an SMTP server.

The events it consumes (suppliers, buyer groups, needs, matches) are published here with a
real Kafka producer, as their services and the matcher publish them.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import BaseModel

from services.contracts.events import (
    BuyerGroupCreated,
    BuyerGroupState,
    BuyerGroupUpdated,
    ExplanationFacts,
    MatchExplanation,
    MatchFound,
    MatchJudged,
    MatchState,
    MatchUpdated,
    MatchWithdrawn,
    NeedPublished,
    NeedState,
    SharedCpv,
    SupplierRegistered,
    SupplierRemoved,
    SupplierRemovedState,
    SupplierUpdated,
    alert_id,
    match_id,
    new_event,
    topic_for,
)
from services.contracts.topics import ALERTS, BUYER_GROUPS, MATCHES, NEEDS, SUPPLIERS
from services.contracts.vocab import Verdict
from services.infra.devstack import free_port
from services.infra.settings import Settings
from tests import factories
from tests.conftest import OPERATOR_TOKEN, Stack
from tests.kafka_helpers import bodies, eventually, produce, read_until
from tests.receivers import ReceivedAlert, SmtpServer, WebhookReceiver, raw_server

pytestmark = pytest.mark.e2e

SECRET = "receiver-secret-0123456789"


class Notifier:
    """One notifier process (`innomatch serve notifier`) that can be killed and restarted."""

    def __init__(self, stack: Stack, **env: str) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            **stack.env(),
            "INNOMATCH_NOTIFIER_PORT": str(self.port),
            "INNOMATCH_NOTIFIER_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
            "INNOMATCH_NOTIFIER_POLL_INTERVAL_S": "0.2",
            "INNOMATCH_NOTIFIER_RETRY_BASE_S": "0.2",
            "INNOMATCH_NOTIFIER_RETRY_MAX_S": "0.5",
            "INNOMATCH_NOTIFIER_RETRY_HORIZON_S": "6",
            "INNOMATCH_NOTIFIER_LEASE_S": "3",
            "INNOMATCH_NOTIFIER_WEBHOOK_TIMEOUT_S": "5",
            **env,
        }
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Notifier:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", "notifier"], env=self.env
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, f"notifier exited with {self.proc.returncode}"
            assert time.monotonic() < deadline, "notifier not ready within 60 s"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200 and self._assigned():
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)

    def _assigned(self) -> bool:
        """Every consumer has its partitions (lag is exported only for assigned ones)."""
        text = httpx.get(f"{self.url}/metrics", timeout=2).text
        return all(f'topic="{t}"' in text for t in (SUPPLIERS, NEEDS, BUYER_GROUPS, MATCHES))

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as in a crash."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def metric(self, name: str, **labels: str) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{"):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def notifier(stack: Stack, smtp: SmtpServer) -> Iterator[Notifier]:
    process = Notifier(stack, INNOMATCH_SMTP_URL=smtp.url, INNOMATCH_WEB_PUBLIC_URL=FORUM).start()
    yield process
    process.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    r = WebhookReceiver(SECRET).start()
    yield r
    r.stop()


def token_for(principal: str) -> str:
    from services.infra.auth import Principal, Tokens

    tokens = Tokens(Settings(mode="development", operator_token=OPERATOR_TOKEN))
    return tokens.issue(Principal.parse(principal)).token


# Events as the other services publish them.


async def publish(stack: Stack, *events: BaseModel) -> None:
    by_topic: dict[str, list[tuple[bytes, bytes]]] = {}
    for event in events:
        by_topic.setdefault(topic_for(event), []).append(
            (event.subject.encode(), event.model_dump_json().encode())
        )
    for topic, messages in by_topic.items():
        await produce(stack.kafka_bootstrap, topic, messages)


def group_event(alerts: dict[str, Any], *, version: int = 1, gid: str | None = None) -> BaseModel:
    now = datetime.now(UTC)
    state = BuyerGroupState.model_validate(
        {
            "id": gid or str(uuid.uuid4()),
            "name": "Region Stockholms innovationsgrupp",
            "focus_area": "transport",
            "alerts": alerts,
            "version": version,
            "created_at": now,
            "updated_at": now,
        }
    )
    cls = BuyerGroupCreated if version == 1 else BuyerGroupUpdated
    return new_event(cls, source="/tests", data=state)


def need_event(group_id: str, *, title: str = "Laddinfrastruktur för elbussar") -> NeedPublished:
    now = datetime.now(UTC)
    body = factories.need(title=title)
    state = NeedState.model_validate(
        {
            **body,
            "id": str(uuid.uuid4()),
            "buyer_group_id": group_id,
            "status": "open",
            "version": 1,
            "published_at": now,
            "updated_at": now,
            "respond_by": date(2099, 6, 30),
        }
    )
    return new_event(NeedPublished, source="/tests", data=state)


def supplier_event(alerts: dict[str, Any] | None = None, name: str = "Laddbolaget AB") -> SupplierRegistered:
    state = factories.supplier_state(alerts=alerts or {}, name=name)
    return factories.supplier_registered(state)


EXPLANATION = MatchExplanation(
    components={"cpv": 0.4, "text": 0.25, "focus_area": 0.1, "supplier_type": 0.1},
    shared_cpv=[SharedCpv(code="31158100", label_sv="Batteriladdare", label_en="Battery chargers")],
    matched_terms=["elbussar", "laddning"],
    region_verdict="serves SE11, the need is in SE110",
    trl_verdict="TRL 7 meets the required 6",
    semantic_verdict="close in meaning (0.63; cosine 0.812)",
    facts=ExplanationFacts(
        supplier_regions=["SE11"],
        need_regions=["SE110"],
        regions_overlap=True,
        supplier_trl=7,
        required_trl=6,
        semantic_closeness=0.63,
    ),
)
FORUM = "https://forum.innomatch.test"


def match_event(
    need_id: str,
    supplier_id: str,
    score: float,
    *,
    version: int = 1,
    status: str = "found",
    verdict: Verdict | None = None,
) -> Any:
    state = MatchState(
        id=match_id(need_id, supplier_id),
        need_id=need_id,
        supplier_id=supplier_id,
        score=score,
        version=version,
        status="withdrawn" if status == "withdrawn" else "active",
        explanation=EXPLANATION,
        updated_at=datetime.now(UTC),
        verdict=verdict,
    )
    cls = {"found": MatchFound, "updated": MatchUpdated, "withdrawn": MatchWithdrawn, "judged": MatchJudged}[
        status
    ]
    return new_event(cls, source="/tests", data=state)


@dataclass
class Scene:
    group: str  # buyer_group:<id>
    need_id: str
    suppliers: list[str]


async def scene(stack: Stack, alerts: dict[str, Any], n_suppliers: int = 1, **supplier_alerts: Any) -> Scene:
    """A buyer group with `alerts`, one of its needs and some suppliers, all published."""
    group = group_event(alerts)
    need = need_event(group.data.id)  # type: ignore[attr-defined]
    suppliers = [
        supplier_event(supplier_alerts or None, name=f"Leverantör {i} AB") for i in range(n_suppliers)
    ]
    await publish(stack, group, need, *suppliers)
    principals = [f"buyer_group:{group.data.id}", *(f"supplier:{s.data.id}" for s in suppliers)]  # type: ignore[attr-defined]
    await known(stack, principals, need.data.id)
    return Scene(f"buyer_group:{group.data.id}", need.data.id, [s.data.id for s in suppliers])  # type: ignore[attr-defined]


async def known(stack: Stack, principals: list[str], need_id: str | None = None) -> None:
    """Wait until the notifier has applied the settings and the need, so that alerts name
    the supplier (matches arriving first work too, see test_settings_arriving_after_the_match)."""

    async def applied() -> bool:
        conn = await asyncpg.connect(stack.database_url)
        try:
            n = await conn.fetchval(
                "SELECT count(*) FROM notifier.recipients WHERE principal = ANY($1::text[])", principals
            )
            sql = "SELECT 1 FROM notifier.needs WHERE id = $1"
            need = need_id is None or await conn.fetchval(sql, need_id)
        finally:
            await conn.close()
        return bool(n == len(principals) and need)

    await eventually(applied, timeout=30, interval=0.1)


def hook(receiver: WebhookReceiver, **more: Any) -> dict[str, Any]:
    return {"webhook_url": receiver.url, "webhook_secret": SECRET, "min_score": 0.5, **more}


async def inbox(notifier: Notifier, principal: str, **params: Any) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        r = await client.get(
            f"{notifier.url}/v1/inbox",
            params=params,
            headers={"Authorization": f"Bearer {token_for(principal)}"},
        )
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()
    return items


# Cases.


async def test_signed_instant_alert_with_explanation_arrives(
    stack: Stack, notifier: Notifier, receiver: WebhookReceiver
) -> None:
    s = await scene(stack, hook(receiver))
    await publish(stack, match_event(s.need_id, s.suppliers[0], 0.82))

    got = await eventually(lambda: receiver.accepted(), timeout=30)
    alert = got[0]
    assert alert.signature_ok
    expected = alert_id(s.group, match_id(s.need_id, s.suppliers[0]), "webhook")
    assert alert.delivery_id == f"{expected}.1"
    body = alert.body
    assert body["recipient"] == s.group
    assert body["match"]["score"] == 0.82
    assert body["need"]["title"] == "Laddinfrastruktur för elbussar"
    assert body["supplier"]["name"] == "Leverantör 0 AB"
    assert "31158100 Batteriladdare" in body["summary"]  # Swedish by default
    assert "Mognadsgrad: TRL 7 når upp till kravet TRL 6" in body["summary"]
    assert body["explanation"]["matched_terms"] == ["elbussar", "laddning"]
    need, supplier = s.need_id, s.suppliers[0]
    assert body["links"] == {
        "need": f"{FORUM}/needs/{need}",
        "shortlist": f"{FORUM}/needs/{need}/shortlist",
        "supplier": f"{FORUM}/suppliers/{supplier}",
        "why": f"{FORUM}/needs/{need}/matches/{supplier}",
    }
    assert body["need"]["buyer_groups"] == ["Region Stockholms innovationsgrupp"]
    assert body["supplier"]["contact_email"] and body["supplier"]["size"]

    audit = await read_until(
        stack.kafka_bootstrap,
        ALERTS,
        lambda rs: any(b.get("data", {}).get("id") == expected for b in bodies(rs)),
    )
    event = next(b for b in bodies(audit) if b.get("data", {}).get("id") == expected)
    assert event["type"] == "alert.delivered"
    assert event["subject"] == s.group
    assert event["data"]["channel"] == "webhook"


async def test_inbox_lists_alerts_with_read_state_and_withdrawal(stack: Stack, notifier: Notifier) -> None:
    s = await scene(stack, {"min_score": 0.6}, n_suppliers=3)
    await publish(
        stack,
        match_event(s.need_id, s.suppliers[0], 0.9),
        match_event(s.need_id, s.suppliers[1], 0.7),
        match_event(s.need_id, s.suppliers[2], 0.55),  # below the group's min_score
    )
    items = await eventually(lambda: _at_least(inbox(notifier, s.group), 2), timeout=30)
    assert {i["match"]["supplier_id"] for i in items} == {s.suppliers[0], s.suppliers[1]}
    assert all(not i["read"] and i["status"] == "active" and i["summary"] for i in items)

    first = items[0]["id"]
    headers = {"Authorization": f"Bearer {token_for(s.group)}"}
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{notifier.url}/v1/inbox/{first}/read", headers=headers)
        assert r.status_code == 200
        other = {"Authorization": f"Bearer {token_for('buyer_group:' + str(uuid.uuid4()))}"}
        assert (await client.post(f"{notifier.url}/v1/inbox/{first}/read", headers=other)).status_code == 404
    unread = await inbox(notifier, s.group, unread="true")
    assert first not in {i["id"] for i in unread} and len(unread) == 1

    # An update folds into the thread; a withdrawal keeps it, marked withdrawn.
    await publish(stack, match_event(s.need_id, s.suppliers[0], 0.95, version=2, status="updated"))
    await publish(stack, match_event(s.need_id, s.suppliers[1], 0.7, version=2, status="withdrawn"))

    async def settled() -> list[dict[str, Any]] | None:
        now = await inbox(notifier, s.group)
        versions = {i["match"]["supplier_id"]: (i["match"]["version"], i["status"]) for i in now}
        want = {s.suppliers[0]: (2, "active"), s.suppliers[1]: (2, "withdrawn")}
        return now if versions == want else None

    final = await eventually(settled, timeout=30)
    assert len(final) == 2  # folded, not a second alert

    # The supplier hears of it too, in its own inbox.
    mine = await eventually(lambda: inbox(notifier, f"supplier:{s.suppliers[0]}"), timeout=30)
    assert mine[0]["match"]["need_id"] == s.need_id


def disabled(notifier: Notifier) -> float:
    return notifier.metric("innomatch_notifier_alerts_suppressed_total", reason="disabled")


async def test_a_needs_matches_reach_the_group_together_best_first(
    stack: Stack, notifier: Notifier, receiver: WebhookReceiver
) -> None:
    s = await scene(stack, hook(receiver), n_suppliers=5)
    scores = dict(zip(s.suppliers, [0.6, 0.9, 0.7, 0.95, 0.8], strict=True))
    await publish(stack, *(match_event(s.need_id, sup, sc) for sup, sc in scores.items()))

    got = await eventually(lambda: _alerts(receiver, s.group, 5), timeout=30)
    assert sorted(a.body["match"]["score"] for a in got) == sorted(scores.values())
    # Due together, they go together: fewer POSTs than alerts, each ranked best first.
    posts = [r for r in receiver.accepted() if r.body["recipient"] == s.group]
    assert len(posts) < 5 and all(r.signature_ok for r in posts)
    batch = next(r.body for r in posts if r.body["type"] == "batch")
    ranked = [a["match"]["score"] for a in batch["alerts"]]
    assert len(ranked) >= 2 and ranked == sorted(ranked, reverse=True)
    assert all(a["summary"] and a["recipient"] == s.group for a in batch["alerts"])
    # The audit trail and the inbox still speak of each alert.
    wanted = {alert_id(s.group, match_id(s.need_id, sup), "webhook") for sup in s.suppliers}
    audit = await read_until(
        stack.kafka_bootstrap,
        ALERTS,
        lambda rs: wanted <= {b.get("data", {}).get("id") for b in bodies(rs)},
    )
    told = [b for b in bodies(audit) if b.get("data", {}).get("id") in wanted]
    assert {b["type"] for b in told} == {"alert.delivered"} and len({b["id"] for b in told}) == 5
    items = await inbox(notifier, s.group)
    assert {i["match"]["supplier_id"] for i in items} >= set(s.suppliers)


async def _at_least(items: Any, n: int) -> Any:
    got = await items
    return got if len(got) >= n else None


async def test_retries_after_500s_carry_the_same_delivery_id_and_deliver_once(
    stack: Stack, notifier: Notifier, receiver: WebhookReceiver
) -> None:
    receiver.script = lambda _id, attempt: 500 if attempt <= 2 else 200
    s = await scene(stack, hook(receiver))
    await publish(stack, match_event(s.need_id, s.suppliers[0], 0.8))

    await eventually(lambda: receiver.accepted(), timeout=30)
    tries = receiver.for_recipient(s.group)
    assert [t.status for t in tries] == [500, 500, 200]
    assert len({t.delivery_id for t in tries}) == 1
    assert all(t.signature_ok for t in tries)
    assert receiver.answered_ok() == {tries[0].delivery_id: 1}


async def test_a_receiver_down_then_up_gets_the_alert_afterwards(stack: Stack, notifier: Notifier) -> None:
    port = free_port()
    receiver = WebhookReceiver(SECRET, port=port)  # not started: connections are refused
    s = await scene(stack, hook(receiver))
    await publish(stack, match_event(s.need_id, s.suppliers[0], 0.8))
    pending = await eventually(
        lambda: notifier.metric("innomatch_notifier_retries_pending", channel="webhook") >= 1, timeout=30
    )
    assert pending
    receiver.start()
    try:
        got = await eventually(lambda: receiver.accepted(), timeout=30)
        assert got[0].body["recipient"] == s.group and got[0].signature_ok
    finally:
        receiver.stop()


async def test_gone_disables_the_webhook_and_failures_end_in_alert_failed(
    stack: Stack, notifier: Notifier, receiver: WebhookReceiver
) -> None:
    receiver.script = lambda _id, _attempt: 410
    s = await scene(stack, hook(receiver), n_suppliers=2)
    first = match_id(s.need_id, s.suppliers[0])
    await publish(stack, match_event(s.need_id, s.suppliers[0], 0.8))
    failed_id = alert_id(s.group, first, "webhook")
    audit = await read_until(
        stack.kafka_bootstrap,
        ALERTS,
        lambda rs: failed_id in {b.get("data", {}).get("id") for b in bodies(rs)},
    )
    event = next(b for b in bodies(audit) if b.get("data", {}).get("id") == failed_id)
    assert event["type"] == "alert.failed" and "410" in event["data"]["error"]

    before = disabled(notifier)
    await publish(stack, match_event(s.need_id, s.suppliers[1], 0.8))
    await eventually(lambda: disabled(notifier) > before, timeout=30)
    assert len(receiver.for_recipient(s.group)) == 1  # the webhook was not called again


async def test_a_receiver_that_never_recovers_fails_after_the_retry_horizon(
    stack: Stack, notifier: Notifier, receiver: WebhookReceiver
) -> None:
    receiver.script = lambda _id, _attempt: 503
    s = await scene(stack, hook(receiver))
    await publish(stack, match_event(s.need_id, s.suppliers[0], 0.8))
    wanted = alert_id(s.group, match_id(s.need_id, s.suppliers[0]), "webhook")
    audit = await read_until(
        stack.kafka_bootstrap,
        ALERTS,
        lambda rs: any(b.get("data", {}).get("id") == wanted for b in bodies(rs)),
        timeout=60,
    )
    event = next(b for b in bodies(audit) if b.get("data", {}).get("id") == wanted)
    assert event["type"] == "alert.failed"
    assert event["data"]["attempts"] == len(receiver.for_recipient(s.group)) >= 3
    assert not receiver.accepted()


async def test_settings_arriving_after_the_match_still_deliver(
    stack: Stack, notifier: Notifier, receiver: WebhookReceiver
) -> None:
    group = group_event(hook(receiver))
    need = need_event(group.data.id)  # type: ignore[attr-defined]
    supplier = supplier_event()
    # The match first, then the need, then the group's settings: any order works.
    await publish(stack, match_event(need.data.id, supplier.data.id, 0.8))
    await publish(stack, supplier, need)
    await publish(stack, group)
    got = await eventually(lambda: receiver.accepted(), timeout=30)
    assert got[0].body["recipient"] == f"buyer_group:{group.data.id}"  # type: ignore[attr-defined]
    assert got[0].body["need"]["title"] == "Laddinfrastruktur för elbussar"


async def test_needs_and_their_matches_arriving_together_alert_every_match_once(
    stack: Stack, notifier: Notifier, receiver: WebhookReceiver
) -> None:
    # Need events and match events are applied by two consumers at once; every match must
    # reach the group whichever of the two commits first, and none twice.
    group = group_event(hook(receiver))
    suppliers = [supplier_event(name=f"Samtidig {i} AB") for i in range(5)]
    await publish(stack, group, *suppliers)
    principal = f"buyer_group:{group.data.id}"  # type: ignore[attr-defined]
    await known(stack, [principal])
    needs = [need_event(group.data.id) for _ in range(20)]  # type: ignore[attr-defined]
    matches = [match_event(n.data.id, s.data.id, 0.8) for n in needs for s in suppliers]
    await asyncio.gather(publish(stack, *needs), publish(stack, *matches))
    wanted = {m.data.id for m in matches}

    def delivered() -> list[str]:
        return [a.body["match"]["id"] for a in receiver.alerts(principal)]

    await eventually(lambda: wanted <= set(delivered()), timeout=60)
    got = Counter(delivered())
    assert set(got) == wanted and max(got.values()) == 1


async def test_email_has_plain_text_html_and_a_working_unsubscribe_link(
    stack: Stack, notifier: Notifier, smtp: SmtpServer
) -> None:
    address = f"inkop-{uuid.uuid4().hex[:8]}@kommun.se"
    s = await scene(stack, {"email": address, "language": "en"}, n_suppliers=2)
    await publish(stack, match_event(s.need_id, s.suppliers[0], 0.8))
    messages = await eventually(lambda: smtp.to(address), timeout=30)
    msg = messages[0]
    assert msg["Subject"] == "New match: Laddinfrastruktur för elbussar"
    plain = msg.get_body(("plain",))
    rich = msg.get_body(("html",))
    assert plain is not None and rich is not None
    text = plain.get_content()
    assert "Score: 0.80 out of 1" in text and "Battery chargers" in text
    assert "<li" in rich.get_content() and "Maturity: TRL 7 meets the required TRL 6" in text
    link = next(line for line in text.splitlines() if "/v1/unsubscribe?token=" in line)
    assert msg["List-Unsubscribe"] == f"<{link}>"

    async with httpx.AsyncClient() as client:
        r = await client.get(link)
        assert r.status_code == 200 and address in r.text
        assert (await client.get(link + "x")).status_code == 400
    before = disabled(notifier)
    await publish(stack, match_event(s.need_id, s.suppliers[1], 0.8))
    await eventually(lambda: disabled(notifier) > before, timeout=30)
    assert len(smtp.to(address)) == 1


async def test_swedish_email_by_default(stack: Stack, notifier: Notifier, smtp: SmtpServer) -> None:
    address = f"lev-{uuid.uuid4().hex[:8]}@laddbolaget.se"
    s = await scene(stack, {"min_score": 0.9}, email=address)  # the supplier wants e-mail
    await publish(stack, match_event(s.need_id, s.suppliers[0], 0.95))
    msg = (await eventually(lambda: smtp.to(address), timeout=30))[0]
    assert msg["Subject"] == "Ny matchning: Laddinfrastruktur för elbussar"
    assert msg.get_content_type() == "multipart/alternative"
    plain, rich = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and rich is not None
    text, html = plain.get_content(), rich.get_content()
    assert "Poäng: 0,95 av 1" in text
    # Every verdict in Swedish, regions by name, and links into the forum.
    for part in (text, re.sub(r"<[^>]+>|https?://\S+", " ", html)):
        for english in ("serves", "the need is in", "meets", "required", "in meaning", "Maturity"):
            assert english not in part, english
        assert "SE11" not in part
        assert "Region: leverantören verkar i Stockholm, behovet gäller Stockholms län" in part
        assert "Mognadsgrad: TRL 7 når upp till kravet TRL 6" in part
    assert '<html lang="sv">' in html
    need, supplier = s.need_id, s.suppliers[0]
    assert f'href="{FORUM}/needs/{need}"' in html  # a supplier is shown the need
    assert f'href="{FORUM}/needs/{need}/matches/{supplier}"' in html
    assert f"{FORUM}/needs/{need}/matches/{supplier}" in text


async def run_digests(notifier: Notifier, at: datetime) -> list[str]:
    async with httpx.AsyncClient() as client:
        r = await client.post(
            f"{notifier.url}/v1/digests/run",
            json={"at": at.isoformat()},
            headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
        )
    assert r.status_code == 200, r.text
    made: list[str] = r.json()["digests"]
    return made


async def test_daily_digest_gathers_the_days_matches_within_budget(
    stack: Stack, notifier: Notifier, receiver: WebhookReceiver
) -> None:
    s = await scene(stack, hook(receiver, mode="daily", min_score=0.5, digest_budget=3), n_suppliers=6)
    scores = [0.9, 0.6, 0.4, 0.8, 0.7, 0.55]  # 0.4 is below min_score; the budget keeps 3 of the other 5
    before = notifier.metric("innomatch_notifier_alerts_suppressed_total", reason="budget")
    matches = [match_event(s.need_id, sup, sc) for sup, sc in zip(s.suppliers, scores, strict=True)]
    await publish(stack, *matches)
    # The inbox is live: the matches at or above min_score show at once.
    await eventually(lambda: _at_least(inbox(notifier, s.group), 5), timeout=30)
    assert not receiver.for_recipient(s.group)  # no instant webhook for a daily recipient

    tomorrow = datetime.now(UTC) + timedelta(days=1, hours=1)
    # The run makes the digest of every daily recipient with alerts held, this test's group
    # among them (earlier modules' suppliers may have some too).
    made = await eventually(lambda: run_digests(notifier, tomorrow), timeout=30)
    assert await run_digests(notifier, tomorrow) == []  # a period's digest is made once

    got = await eventually(lambda: [r for r in receiver.for_recipient(s.group) if r.first], timeout=30)
    assert len(got) == 1
    digest = got[0].body
    assert digest["type"] == "digest" and got[0].delivery_id in made
    assert [a["match"]["score"] for a in digest["alerts"]] == [0.9, 0.8, 0.7]
    assert digest["suppressed"] == 2
    assert all(a["summary"] for a in digest["alerts"])
    after = notifier.metric("innomatch_notifier_alerts_suppressed_total", reason="budget")
    assert after - before >= 2  # this digest's two, and those of any other digest the run made
    assert notifier.metric("innomatch_notifier_digest_size_count") >= 1


async def test_switching_from_a_daily_digest_to_instant_sends_what_was_held(
    stack: Stack, notifier: Notifier, receiver: WebhookReceiver
) -> None:
    s = await scene(stack, hook(receiver, mode="daily"), n_suppliers=2)
    await publish(stack, *(match_event(s.need_id, sup, 0.8) for sup in s.suppliers))
    await eventually(lambda: _at_least(inbox(notifier, s.group), 2), timeout=30)
    assert not receiver.for_recipient(s.group)  # held for the daily digest

    gid = s.group.split(":", 1)[1]
    await publish(stack, group_event(hook(receiver, mode="instant"), version=2, gid=gid))
    got = await eventually(lambda: _alerts(receiver, s.group, 2), timeout=30)
    assert {a.body["match"]["supplier_id"] for a in got} == set(s.suppliers)
    assert all(a.carrier != "digest" for a in got)


def _alerts(receiver: WebhookReceiver, principal: str, n: int) -> list[ReceivedAlert] | None:
    """The alerts accepted for the principal, once there are n of them."""
    got = receiver.alerts(principal)
    return got if len(got) >= n else None


# Deliveries always end, and only at addresses that may be called.


async def audit_of(stack: Stack, alert: str) -> dict[str, Any]:
    records = await read_until(
        stack.kafka_bootstrap,
        ALERTS,
        lambda rs: any(b.get("data", {}).get("id") == alert for b in bodies(rs)),
        timeout=60,
    )
    event: dict[str, Any] = next(b for b in bodies(records) if b.get("data", {}).get("id") == alert)
    return event


def failed_webhooks(notifier: Notifier) -> float:
    return notifier.metric("innomatch_notifier_alerts_total", channel="webhook", outcome="failed")


async def test_a_server_with_an_oversized_header_ends_in_alert_failed_after_the_horizon(
    stack: Stack, notifier: Notifier
) -> None:
    answer = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 20_000 + b"\r\nContent-Length: 0\r\n\r\n"
    server, port = await raw_server(answer)
    before = failed_webhooks(notifier)
    try:
        s = await scene(stack, {"webhook_url": f"http://127.0.0.1:{port}/h", "webhook_secret": SECRET})
        await publish(stack, match_event(s.need_id, s.suppliers[0], 0.8))
        event = await audit_of(stack, alert_id(s.group, match_id(s.need_id, s.suppliers[0]), "webhook"))
    finally:
        server.close()
    assert event["type"] == "alert.failed"
    assert "ClientResponseError" in event["data"]["error"] and "8192 bytes" in event["data"]["error"]
    assert event["data"]["attempts"] >= 2  # retried until the horizon (6 s here), then given up
    await eventually(lambda: failed_webhooks(notifier) > before, timeout=10)


async def test_a_metadata_webhook_that_reached_the_notifier_is_never_called(
    stack: Stack, notifier: Notifier
) -> None:
    # The services refuse to save it (422); an event that carries it anyway ends at once.
    alerts = {"webhook_url": "http://169.254.169.254/latest/meta-data/", "webhook_secret": SECRET}
    s = await scene(stack, alerts)
    await publish(stack, match_event(s.need_id, s.suppliers[0], 0.8))
    event = await audit_of(stack, alert_id(s.group, match_id(s.need_id, s.suppliers[0]), "webhook"))
    assert event["type"] == "alert.failed" and event["data"]["attempts"] == 1
    assert "link-local or cloud metadata address (169.254.169.254)" in event["data"]["error"]


async def test_a_non_ascii_webhook_path_is_delivered_signed(
    stack: Stack, notifier: Notifier, receiver: WebhookReceiver
) -> None:
    s = await scene(stack, hook(receiver, webhook_url=receiver.url + "/h\u00e4ndelser"))
    await publish(stack, match_event(s.need_id, s.suppliers[0], 0.8))
    got = await eventually(lambda: receiver.accepted(), timeout=30)
    assert got[0].signature_ok and got[0].body["recipient"] == s.group


async def test_a_title_with_a_line_break_cannot_add_a_mail_header(
    stack: Stack, notifier: Notifier, smtp: SmtpServer
) -> None:
    address = f"inkop-{uuid.uuid4().hex[:8]}@kommun.se"
    group = group_event({"email": address, "language": "en"})
    need = need_event(group.data.id, title="Laddning\r\nBcc: everyone@example.se")  # type: ignore[attr-defined]
    supplier = supplier_event()
    await publish(stack, group, need, supplier)
    await known(stack, [f"buyer_group:{group.data.id}"], need.data.id)  # type: ignore[attr-defined]
    await publish(stack, match_event(need.data.id, supplier.data.id, 0.8))
    msg = (await eventually(lambda: smtp.to(address), timeout=30))[0]
    assert msg["Subject"] == "New match: Laddning Bcc: everyone@example.se"
    assert msg["Bcc"] is None


async def test_an_erased_supplier_stays_erased_and_leaves_no_name_in_the_groups_bodies(
    stack: Stack, notifier: Notifier, receiver: WebhookReceiver
) -> None:
    marker = uuid.uuid4().hex[:8]
    group = group_event(hook(receiver))
    need = need_event(group.data.id)  # type: ignore[attr-defined]
    registered = supplier_event(hook(receiver), name=f"Raderas {marker} AB")
    sid = registered.data.id
    principal = f"supplier:{sid}"
    await publish(stack, group, need, registered)
    await known(stack, [f"buyer_group:{group.data.id}", principal], need.data.id)  # type: ignore[attr-defined]
    await publish(stack, match_event(need.data.id, sid, 0.9))
    # The group's alert went out with the supplier's name, and its body is stored.
    await eventually(
        lambda: any(a.body.get("recipient") != principal for a in receiver.accepted()), timeout=30
    )
    conn = await asyncpg.connect(stack.database_url)
    try:

        async def bodies_naming_it() -> int:
            n: int = await conn.fetchval(
                "SELECT count(*) FROM notifier.deliveries WHERE payload::text LIKE $1", f"%{marker}%"
            )
            return n

        assert await bodies_naming_it() >= 1
        assert (await inbox_status(notifier, principal)) == 200

        removed = new_event(
            SupplierRemoved,
            source="/tests",
            subject=sid,
            data=SupplierRemovedState(id=sid, version=2, removed_at=datetime.now(UTC)),
        )
        await publish(stack, removed)
        await eventually(lambda: _gone(conn, principal), timeout=30)
        assert await bodies_naming_it() == 0
        assert (await inbox_status(notifier, principal)) == 401

        # A replay of its registration and a late update reach the notifier after the removal.
        late = new_event(
            SupplierUpdated,
            source="/tests",
            data=registered.data.model_copy(update={"version": 3, "name": f"Tillbaka {marker} AB"}),
        )
        await publish(stack, registered, late)

        async def consumed() -> bool:
            n = await conn.fetchval(
                "SELECT count(*) FROM notifier.inbox WHERE event_id = ANY($1::text[])",
                [late.id, registered.id],
            )
            return bool(n == 2)

        await eventually(consumed, timeout=30)
        assert not await conn.fetchval("SELECT 1 FROM notifier.recipients WHERE principal = $1", principal)
        assert await bodies_naming_it() == 0
    finally:
        await conn.close()


async def _gone(conn: asyncpg.Connection, principal: str) -> bool:
    erased = await conn.fetchval("SELECT 1 FROM notifier.erased_principals WHERE principal = $1", principal)
    kept = await conn.fetchval("SELECT 1 FROM notifier.recipients WHERE principal = $1", principal)
    return bool(erased and not kept)


async def inbox_status(notifier: Notifier, principal: str) -> int:
    async with httpx.AsyncClient() as client:
        r = await client.get(
            f"{notifier.url}/v1/inbox", headers={"Authorization": f"Bearer {token_for(principal)}"}
        )
    return r.status_code


async def test_a_supplier_judged_not_relevant_hears_no_more_of_the_need(
    stack: Stack, notifier: Notifier, receiver: WebhookReceiver
) -> None:
    """Both suppliers' alerts wait for the daily digest; the buyers judge one not relevant
    before it is made, and it is left out, also when the match changes afterwards."""
    s = await scene(stack, hook(receiver), n_suppliers=2, **hook(receiver, mode="daily"))
    kept, judged = s.suppliers
    await publish(stack, *(match_event(s.need_id, sup, 0.8) for sup in s.suppliers))
    await eventually(lambda: _at_least(inbox(notifier, f"supplier:{judged}"), 1), timeout=30)

    await publish(
        stack, match_event(s.need_id, judged, 0.8, version=2, status="judged", verdict=Verdict.not_relevant)
    )
    # The matcher's later events about the pair carry the verdict on.
    later = match_event(s.need_id, judged, 0.9, version=3, status="updated", verdict=Verdict.not_relevant)
    await publish(stack, later)

    async def applied() -> bool:
        conn = await asyncpg.connect(stack.database_url)
        try:
            version = await conn.fetchval(
                "SELECT version FROM notifier.matches WHERE id = $1", match_id(s.need_id, judged)
            )
        finally:
            await conn.close()
        return version == 3

    await eventually(applied, timeout=30, interval=0.1)
    tomorrow = datetime.now(UTC) + timedelta(days=1, hours=1)

    async def digests_made() -> list[str] | None:
        made = await run_digests(notifier, tomorrow)
        return made or None

    made = await eventually(digests_made, timeout=30)
    assert len(made) == 1, "only the supplier that was not judged gets a digest"
    got = await eventually(lambda: _alerts(receiver, f"supplier:{kept}", 1), timeout=30)
    assert got[0].carrier == "digest"
    await asyncio.sleep(1)
    assert not receiver.for_recipient(f"supplier:{judged}")
