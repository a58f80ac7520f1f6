"""Calling a subscriber's webhook: signed JSON, bounded in time and size, and only to an
address that passed the webhook rules.

aiohttp's client does the HTTP (pooled keep-alive connections, TLS verified against the URL's
host name). Its connector gets `VettedResolver`, which hands it only addresses that pass
`services.infra.webhooks.refusal`, so the address connected to is the one judged: a name that
resolves to a forbidden address by the time of the call (DNS rebinding) is refused, not
called. A host that is an IP address never reaches the resolver, so `WebhookClient.post`
judges it first. No redirects are followed, no proxy is taken from the environment, no
cookies are kept, response headers are capped at 8 KiB a line and 100 lines, and at most
64 KiB of a body is read, then dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import time
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from services.infra.settings import Settings
from services.infra.webhooks import WebhookRefused, check_url_form, refusal

_MAX_BODY_BYTES = 64 * 1024
_MAX_HEADER_LINE = 8 * 1024
_MAX_HEADERS = 100


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
    status: int | None  # None when no HTTP answer came (refused, timed out, reset, garbled)
    error: str | None = None
    refused: bool = False  # the address may not be called: retrying will not help

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class VettedResolver(AbstractResolver):
    """Resolves with `base` and returns the addresses only if every one of them passes the
    webhook rules; otherwise raises WebhookRefused and nothing is connected to."""

    def __init__(self, *, allow_private: bool, base: AbstractResolver | None = None) -> None:
        self.allow_private = allow_private
        self._base = base
        self._owned = base is None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._base is None:
            self._base = DefaultResolver()
        found = await self._base.resolve(host, port, family)
        for result in found:
            why = refusal(ipaddress.ip_address(result["host"]), allow_private=self.allow_private)
            if why:
                raise WebhookRefused(f"{host} resolves to {why}")
        return found

    async def close(self) -> None:
        if self._owned and self._base is not None:
            await self._base.close()


class WebhookClient:
    """One aiohttp session for all webhook calls of a process."""

    def __init__(
        self, settings: Settings, *, limit: int = 100, resolver: AbstractResolver | None = None
    ) -> None:
        self.settings = settings
        self.resolver = VettedResolver(allow_private=settings.webhook_allow_private, base=resolver)
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Made in the running loop, on first use.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=self.resolver, limit=self._limit),
                timeout=aiohttp.ClientTimeout(total=self.settings.notifier_webhook_timeout_s),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),  # a receiver's cookies are never sent back
                trust_env=False,
                max_line_size=_MAX_HEADER_LINE,
                max_field_size=_MAX_HEADER_LINE,
                max_headers=_MAX_HEADERS,
                skip_auto_headers=("Accept-Encoding",),
            )
        return self._session

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> int:
        """POST body to url; return the status code. Raises WebhookRefused when the address
        may not be called, and whatever the call raises (aiohttp.ClientError, TimeoutError,
        ValueError for a URL it cannot send to...)."""
        check_url_form(url, self.settings)
        session = self._open()
        async with session.post(url, data=body, headers=headers, allow_redirects=False) as response:
            # Read a short body so the connection can be reused; a longer one is cut off and
            # the connection closed with it.
            read = 0
            while read <= _MAX_BODY_BYTES:
                chunk = await response.content.readany()
                if not chunk:
                    break
                read += len(chunk)
            return response.status

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self.resolver.close()


async def post(client: WebhookClient, url: str, secret: str, body: bytes, delivery_id: str) -> Answer:
    """Sign and send one delivery. Never raises (except cancellation): every failure is an
    Answer with the reason, so it counts toward the retry horizon."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Innomatch-Notifier/1",
        "Innomatch-Delivery-Id": delivery_id,
        "Innomatch-Signature": signature(secret, body, int(time.time())),
    }
    try:
        status = await client.post(url, headers, body)
    except WebhookRefused as exc:
        return Answer(None, f"webhook refused: {exc}"[:500], refused=exc.permanent)
    except Exception as exc:
        return Answer(None, _describe(exc))
    return Answer(status, None if 200 <= status < 300 else f"HTTP {status}")


def _describe(exc: BaseException) -> str:
    """The reason recorded in alert.failed. aiohttp's errors name the URL, whose path may be
    a receiver's secret (many webhooks are), so only their message is kept."""
    if isinstance(exc, aiohttp.ClientResponseError):
        text = f"{exc.status}, {exc.message}"
    elif isinstance(exc, aiohttp.ClientConnectorError):
        text = f"cannot connect to {exc.host}:{exc.port}: {exc.os_error.strerror or exc.os_error}"
    elif isinstance(exc, aiohttp.InvalidURL):
        text = "the URL cannot be sent to"
    else:
        text = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {text}"[:500]
