"""Killing the notifier (SIGKILL) in the middle of deliveries loses no alert and makes no
second accepted delivery: every alert was recorded before it was sent, a recorded success
is never sent again, and a resend after the restart carries the same Innomatch-Delivery-Id
and the same alerts. The alerts go in batches of two, so the kill also lands between a
batch being formed and its outcome being recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest

from services.contracts.events import alert_id, match_id
from services.contracts.topics import ALERTS
from tests.conftest import Stack
from tests.e2e.test_notifier_alerts import SECRET, Notifier, hook, match_event, publish, scene
from tests.kafka_helpers import bodies, eventually, read_until
from tests.receivers import WebhookReceiver, alerts_in

pytestmark = pytest.mark.e2e

ALERTS_SENT = 16


async def delivered_keys(stack: Stack, keys: set[str]) -> set[str]:
    """Which of these delivery ids the notifier has recorded as delivered."""
    conn = await asyncpg.connect(stack.database_url)
    try:
        rows = await conn.fetch(
            "SELECT delivery_key FROM notifier.deliveries WHERE state = 'delivered' "
            "AND delivery_key = ANY($1::text[])",
            sorted(keys),
        )
    finally:
        await conn.close()
    return {r["delivery_key"] for r in rows}


@pytest.fixture
def notifier(stack: Stack) -> Iterator[Notifier]:
    # Two at a time, each held by the receiver: the kill lands with deliveries half done.
    process = Notifier(
        stack,
        INNOMATCH_NOTIFIER_CONCURRENCY="2",
        INNOMATCH_NOTIFIER_LEASE_S="2",
        INNOMATCH_NOTIFIER_BATCH_MAX="2",
    ).start()
    yield process
    process.stop()


async def test_kill_during_delivery_then_restart_loses_nothing_and_repeats_nothing(
    stack: Stack, notifier: Notifier
) -> None:
    receiver = WebhookReceiver(SECRET, hold_s=0.3).start()
    try:
        s = await scene(stack, hook(receiver), n_suppliers=ALERTS_SENT)
        await publish(stack, *(match_event(s.need_id, sup, 0.8) for sup in s.suppliers))
        wanted = {alert_id(s.group, match_id(s.need_id, sup), "webhook") for sup in s.suppliers}

        # Kill while the receiver holds a delivery unanswered, after some were accepted.
        await eventually(lambda: len(receiver.alerts()) >= 4, timeout=60)
        receiver.pause()
        await eventually(lambda: receiver.in_flight > 0, timeout=30)
        notifier.kill()
        receiver.resume()
        assert len(receiver.alerts()) < ALERTS_SENT
        answered_before_kill = set(receiver.answered_ok())
        recorded = await delivered_keys(stack, answered_before_kill)
        sent_in = {r.delivery_id: {a["alert_id"] for a in alerts_in(r.body)} for r in receiver.received}
        await asyncio.sleep(0.5)  # let the receiver notice the dropped connections
        notifier.start()

        await eventually(lambda: len(receiver.alerts()) == ALERTS_SENT, timeout=90)
        alerts = receiver.alerts()
        # Every alert accepted once, most of them two to a batch.
        assert sorted(a.body["alert_id"] for a in alerts) == sorted(wanted)
        assert "batch" in {a.carrier for a in alerts}
        # A resend carries what the first try carried.
        assert all(
            {a["alert_id"] for a in alerts_in(r.body)} == sent_in.get(r.delivery_id, set())
            for r in receiver.received
            if r.delivery_id in sent_in
        )
        # A success that was recorded is never sent again. The only repeat allowed is a send the
        # receiver had answered while the kill came before the notifier committed that answer:
        # it goes again with the same delivery id, so the receiver accepts it once.
        answered = receiver.answered_ok()
        twice = {d for d, n in answered.items() if n > 1}
        assert recorded, "the kill should come after some deliveries were recorded"
        assert not twice & recorded
        assert twice <= answered_before_kill - recorded
        assert max(answered.values()) <= 2
        assert any(r.status == 0 for r in receiver.received), "the kill should cut a delivery short"

        audit = await read_until(
            stack.kafka_bootstrap,
            ALERTS,
            lambda rs: wanted <= {b.get("data", {}).get("id") for b in bodies(rs)},
            timeout=60,
        )
        delivered = [b for b in bodies(audit) if b.get("data", {}).get("id") in wanted]
        assert {b["type"] for b in delivered} == {"alert.delivered"}
        assert len({b["id"] for b in delivered}) == ALERTS_SENT  # one audit event per alert
    finally:
        receiver.stop()
