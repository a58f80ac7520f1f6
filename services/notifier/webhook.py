"""Calling a subscriber's webhook: signed JSON, a timeout, and no response body kept."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from dataclasses import dataclass

from services.notifier.http1 import Http1Client


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """Innomatch-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body" with the secret>."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(
    secret: str, body: bytes, header: str, *, tolerance_s: float = 300, now: float | None = None
) -> bool:
    """What a receiver does: check the signature and that it is recent (no replays)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance_s:
        return False
    expected = signature(secret, body, timestamp).split(",v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


@dataclass(frozen=True)
class Answer:
    status: int | None  # None when no HTTP answer came (refused, timed out, reset)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


async def post(client: Http1Client, url: str, secret: str, body: bytes, delivery_id: str) -> Answer:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Innomatch-Notifier/1",
        "Innomatch-Delivery-Id": delivery_id,
        "Innomatch-Signature": signature(secret, body, int(time.time())),
    }
    try:
        status = await client.post(url, headers, body)
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
        return Answer(None, f"{type(exc).__name__}: {exc}"[:500])
    return Answer(status, None if 200 <= status < 300 else f"HTTP {status}")
