"""Sending: one claim over its channel (a signed webhook POST or an e-mail), and how it
went. A send never raises: whatever goes wrong is an outcome the recorder writes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final, Literal

from services.infra.logs import get_logger
from services.infra.settings import Settings
from services.notifier import mail, policy, render, webhook
from services.notifier.delivery.claimer import Claim
from services.notifier.metrics import NotifierMetrics
from services.notifier.policy import DeliveryState

log = get_logger(__package__ or __name__)

# A failed try that is tried again later (until the retry horizon), not a state of its own.
RETRY: Final = "retry"


@dataclass(frozen=True)
class Outcome:
    state: DeliveryState | Literal["retry"]  # delivered, failed, skipped or RETRY
    error: str | None = None
    disable_webhook: str | None = None  # the URL that answered 410 Gone
    attempted: bool = True


class Sender:
    def __init__(self, settings: Settings, metrics: NotifierMetrics, client: webhook.WebhookClient) -> None:
        self.settings = settings
        self.metrics = metrics
        self.client = client
        self.smtp = mail.SmtpServer.parse(settings.smtp_url) if settings.smtp_url else None
        self.public_url = (settings.notifier_public_url or settings.url_of("notifier")).rstrip("/")
        self.secret = settings.token_secret.get_secret_value()

    async def send(self, claim: Claim) -> Outcome:
        recipient = claim.recipient
        channel: policy.Channel = "webhook" if claim.channel == "webhook" else "email"
        if recipient is None or not recipient.configured(channel, smtp=self.smtp is not None):
            return Outcome(DeliveryState.SKIPPED, "not_configured", attempted=False)
        if recipient.turned_off(channel):
            self.metrics.suppress("disabled")
            return Outcome(DeliveryState.SKIPPED, "disabled", attempted=False)
        try:
            if channel == "webhook":
                return await self._post(claim, recipient)
            return await self._mail(claim, recipient)
        except Exception as exc:
            # Whatever went wrong (a body that cannot be rendered, a header the mail library
            # refuses, a bug) counts as a failed try: retried until the horizon, then
            # alert.failed with this reason. Never a row claimed again forever, unseen.
            log.warning("delivery_error", delivery=claim.id, channel=claim.channel, error=repr(exc)[:500])
            return Outcome(RETRY, f"{type(exc).__name__}: {exc}"[:500])

    async def _post(self, claim: Claim, recipient: policy.Recipient) -> Outcome:
        url, secret = recipient.alerts.webhook_url, recipient.alerts.webhook_secret
        assert url is not None and secret is not None
        body = json.dumps(claim.payload, ensure_ascii=False, separators=(",", ":")).encode()
        answer = await webhook.post(self.client, url, secret, body, claim.delivery_key)
        if answer.ok:
            return Outcome(DeliveryState.DELIVERED)
        if answer.refused:
            return Outcome(DeliveryState.FAILED, answer.error)
        if answer.status is not None and not policy.retryable_status(answer.status):
            return Outcome(DeliveryState.FAILED, "410 Gone: the webhook is turned off", disable_webhook=url)
        return Outcome(RETRY, answer.error)

    async def _mail(self, claim: Claim, recipient: policy.Recipient) -> Outcome:
        assert self.smtp is not None and recipient.alerts.email is not None
        to = recipient.alerts.email
        token = mail.unsubscribe_token(self.secret, claim.principal, to)
        link = f"{self.public_url}/v1/unsubscribe?token={token}"
        content = render.mail(claim.payload, recipient.alerts.language, link, self.settings.forum_url)
        msg = mail.message(
            content,
            sender=self.settings.notifier_email_from,
            to=to,
            delivery_id=claim.delivery_key,
            unsubscribe_url=link,
        )
        try:
            await mail.send(self.smtp, msg, self.settings.notifier_smtp_timeout_s)
        except mail.PermanentMailError as exc:
            return Outcome(DeliveryState.FAILED, f"refused by the mail server: {exc}"[:500])
        return Outcome(DeliveryState.DELIVERED)
