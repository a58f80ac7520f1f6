"""Sign-in mails: over SMTP (INNOMATCH_SMTP_URL, as the notifier reads it) and, in
development mode, also into an outbox kept in memory that the dev-only page /dev/mail shows.

smtp://[user:password@]host[:port][?starttls=true] or smtps://...; stdlib smtplib in a worker
thread, one connection per mail (sign-in mails are rare).
"""

from __future__ import annotations

import asyncio
import smtplib
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True)
class SentMail:
    to: str
    subject: str
    body: str
    sent_at: datetime


class Mailer:
    def __init__(self, smtp_url: str | None, sender: str, keep_outbox: bool, timeout_s: float = 10.0) -> None:
        self._smtp_url = smtp_url
        self._sender = sender
        self._timeout_s = timeout_s
        # Development only: the last mails, newest first, for /dev/mail.
        self.outbox: deque[SentMail] | None = deque(maxlen=50) if keep_outbox else None

    @property
    def can_send(self) -> bool:
        return self._smtp_url is not None or self.outbox is not None

    async def send(self, to: str, subject: str, body: str) -> None:
        if self.outbox is not None:
            self.outbox.appendleft(SentMail(to, subject, body, datetime.now(UTC)))
        if self._smtp_url:
            message = EmailMessage()
            message["From"] = self._sender
            message["To"] = to
            message["Subject"] = subject
            message.set_content(body)
            await asyncio.to_thread(self._deliver, self._smtp_url, message)

    def _deliver(self, url: str, message: EmailMessage) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("INNOMATCH_SMTP_URL must look like smtp://host:port or smtps://host:port")
        tls = parts.scheme == "smtps"
        port = parts.port or (465 if tls else 25)
        client: smtplib.SMTP
        if tls:
            client = smtplib.SMTP_SSL(parts.hostname, port, timeout=self._timeout_s)
        else:
            client = smtplib.SMTP(parts.hostname, port, timeout=self._timeout_s)
        with client:
            if not tls and parse_qs(parts.query).get("starttls", ["false"])[0].lower() == "true":
                client.starttls()
            if parts.username:
                client.login(unquote(parts.username), unquote(parts.password or ""))
            client.send_message(message)
