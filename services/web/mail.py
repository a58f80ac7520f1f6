"""Sign-in mails over SMTP (INNOMATCH_SMTP_URL, as the notifier reads it). In development
mode the forum also keeps each mail in its database for the page /dev/mail (handlers.py).

smtp://[user:password@]host[:port][?starttls=true] or smtps://...; stdlib smtplib in a worker
thread, one connection per mail (sign-in mails are rare).
"""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit


class Mailer:
    def __init__(self, smtp_url: str | None, sender: str, timeout_s: float = 10.0) -> None:
        self._smtp_url = smtp_url
        self._sender = sender
        self._timeout_s = timeout_s

    async def send(self, to: str, subject: str, body: str) -> None:
        """Send over SMTP; without INNOMATCH_SMTP_URL, nothing is sent."""
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
