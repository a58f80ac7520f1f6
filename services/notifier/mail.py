"""E-mail over SMTP (stdlib smtplib in a worker thread) and the signed unsubscribe links."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

from services.notifier.render import Mail


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    tls: bool  # smtps://: TLS from the start
    starttls: bool  # smtp://...?starttls=true
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SmtpServer:
        """smtp://[user:password@]host[:port][?starttls=true] or smtps://..."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("INNOMATCH_SMTP_URL must look like smtp://host:port or smtps://host:port")
        tls = parts.scheme == "smtps"
        query = parse_qs(parts.query)
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if tls else 25),
            tls=tls,
            starttls=query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes"),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


class PermanentMailError(Exception):
    """The server refused for good (5xx): retrying will not help."""


def one_line(text: str) -> str:
    """A header value from free text (a need's title): line breaks and other whitespace runs
    become one space. The email library refuses a value with CR or LF, so nothing can be
    injected, but the alert should still go out."""
    return " ".join(text.split())


def message(mail: Mail, *, sender: str, to: str, delivery_id: str, unsubscribe_url: str) -> EmailMessage:
    """The alert as a MIME message, every header set through the email library (which
    encodes non-ASCII text and refuses line breaks in a value)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = one_line(mail.subject)
    msg["Message-ID"] = make_msgid(idstring=delivery_id.replace(".", "-"), domain="innomatch")
    msg["Innomatch-Delivery-Id"] = delivery_id
    msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(mail.text)
    msg.add_alternative(mail.html, subtype="html")
    return msg


def _send(server: SmtpServer, msg: EmailMessage, timeout: float) -> None:
    client: smtplib.SMTP
    if server.tls:
        client = smtplib.SMTP_SSL(server.host, server.port, timeout=timeout)
    else:
        client = smtplib.SMTP(server.host, server.port, timeout=timeout)
    with client:
        if server.starttls:
            client.starttls()
        if server.username:
            client.login(server.username, server.password or "")
        try:
            client.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentMailError(str(exc)) from exc
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code >= 500:
                raise PermanentMailError(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
            raise


async def send(server: SmtpServer, msg: EmailMessage, timeout: float) -> None:
    await asyncio.to_thread(_send, server, msg, timeout)


# Unsubscribe links: the principal and address, signed, so the link works without a login
# and cannot be forged for someone else.


def _mac(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), b"unsubscribe:" + payload, hashlib.sha256).hexdigest()[:32]


def unsubscribe_token(secret: str, principal: str, email: str) -> str:
    payload = json.dumps({"p": principal, "e": email}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + _mac(secret, payload)


def read_unsubscribe_token(secret: str, token: str) -> tuple[str, str] | None:
    """(principal, email) of a token this service signed, else None."""
    encoded, _, mac = token.partition(".")
    try:
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        data = json.loads(payload)
        principal, email = str(data["p"]), str(data["e"])
    except (ValueError, KeyError, TypeError):
        return None
    if not hmac.compare_digest(mac, _mac(secret, payload)):
        return None
    return principal, email
