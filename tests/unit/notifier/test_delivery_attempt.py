"""A send that raises, whatever the exception, is a failed try with its reason: the sender
returns it as an outcome the recorder writes, so it counts toward the retry horizon and ends
as alert.failed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from services.contracts.events import AlertSettings
from services.infra.metrics import Metrics
from services.infra.settings import Settings
from services.notifier import policy, webhook
from services.notifier.delivery import Claim, Sender
from services.notifier.metrics import NotifierMetrics


def sender(**settings: Any) -> Sender:
    config = Settings(mode="development", webhook_allow_private=True, **settings)
    return Sender(config, NotifierMetrics(Metrics("notifier")), webhook.WebhookClient(config))


def claim(channel: str, alerts: dict[str, Any], payload: dict[str, Any]) -> Claim:
    return Claim(
        id="d",
        kind=policy.DeliveryKind.ALERT,
        principal="buyer_group:g",
        channel=channel,
        delivery_key="d.1",
        payload=payload,
        attempts=0,
        first_attempt_at=datetime.now(UTC),
        event_time=None,
        token=uuid.uuid4(),
        recipient=policy.Recipient("buyer_group:g", AlertSettings.model_validate(alerts)),
    )


async def test_a_mail_that_cannot_be_rendered_is_a_failed_try() -> None:
    s = sender(smtp_url="smtp://127.0.0.1:9")
    outcome = await s.send(claim("email", {"email": "a@kommun.se"}, {"type": "alert"}))
    assert outcome.state == "retry" and outcome.attempted
    assert outcome.error and outcome.error.startswith("KeyError")


async def test_a_mail_server_that_is_not_there_is_a_failed_try() -> None:
    s = sender(smtp_url="smtp://127.0.0.1:9", notifier_smtp_timeout_s=2)
    payload = {"type": "digest", "alerts": [], "suppressed": 0}
    outcome = await s.send(claim("email", {"email": "a@kommun.se"}, payload))
    assert outcome.state == "retry" and outcome.error and "Connection refused" in outcome.error


async def test_a_webhook_url_the_client_cannot_send_to_is_a_failed_try() -> None:
    s = sender()
    try:
        for url in ("http://127.0.0.1:99999/h", "http://bad_host_name..x/h"):
            alerts = {"webhook_url": url, "webhook_secret": "s" * 20}
            outcome = await s.send(claim("webhook", alerts, {"type": "alert"}))
            assert outcome.state == "retry" and outcome.error, (url, outcome)
    finally:
        await s.client.aclose()
