"""The notifier's webhook client against real servers on local sockets: signed deliveries,
the vetted address being the one connected to, and servers that answer badly. Every failure
comes back as an Answer with a reason (it counts toward the retry horizon), never as an
exception."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from services.infra.settings import Settings
from services.notifier import webhook
from services.notifier.webhook import WebhookClient
from tests.receivers import FixedDns, raw_server

SECRET = "receiver-secret-0123456789"
DEV = Settings(mode="development", webhook_allow_private=True, notifier_webhook_timeout_s=2)
STRICT = Settings(mode="development", webhook_allow_private=False, notifier_webhook_timeout_s=2)


@dataclass
class Seen:
    method: str
    path: str
    host: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Hook:
    port: int
    seen: list[Seen] = field(default_factory=list)

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    """An aiohttp server that records every request and answers by path."""
    box: list[Hook] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        box[0].seen.append(
            Seen(request.method, request.raw_path, request.host, dict(request.headers), await request.read())
        )
        if request.path == "/redirect":
            return web.Response(status=302, headers={"Location": box[0].url("/elsewhere")})
        if request.path == "/big":
            return web.Response(body=b"x" * (4 * 1024 * 1024))
        return web.Response(status=202, text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    box.append(Hook(port))
    try:
        yield box[0]
    finally:
        await runner.cleanup()


async def with_client(
    settings: Settings, use: Callable[[WebhookClient], Awaitable[None]], resolver: FixedDns | None = None
) -> None:
    client = WebhookClient(settings, resolver=resolver)
    try:
        await use(client)
    finally:
        await client.aclose()


async def test_a_delivery_is_signed_and_keeps_its_headers(hook: Hook) -> None:
    body = b'{"type":"alert","alert_id":"a"}'

    async def use(client: WebhookClient) -> None:
        answer = await webhook.post(client, hook.url(), SECRET, body, "a.1")
        assert answer.ok and answer.status == 202
        again = await webhook.post(client, hook.url("/h\u00e4ndelser?x=1"), SECRET, body, "a.1")
        assert again.ok  # a non-ASCII path is sent percent-encoded

    await with_client(DEV, use)
    first, second = hook.seen
    assert first.method == "POST" and first.path == "/hook" and first.body == body
    assert first.headers["Innomatch-Delivery-Id"] == "a.1"
    assert webhook.verify(SECRET, body, first.headers["Innomatch-Signature"])
    assert first.headers["Content-Type"] == "application/json"
    assert second.path == "/h%C3%A4ndelser?x=1"


async def test_redirects_are_not_followed_and_long_bodies_not_read(hook: Hook) -> None:
    async def use(client: WebhookClient) -> None:
        assert (await webhook.post(client, hook.url("/redirect"), SECRET, b"{}", "r.1")).status == 302
        assert (await webhook.post(client, hook.url("/big"), SECRET, b"{}", "b.1")).status == 200

    await with_client(DEV, use)
    assert [s.path for s in hook.seen] == ["/redirect", "/big"]


async def test_a_name_that_resolves_to_a_forbidden_address_is_refused_at_connect(hook: Hook) -> None:
    # localhost resolves (by the system's resolver) to a loopback address: refused when
    # private addresses are not allowed, although a server is listening there.
    async def strict(client: WebhookClient) -> None:
        answer = await webhook.post(client, hook.url(host="localhost"), SECRET, b"{}", "l.1")
        assert answer.status is None and answer.refused
        assert "localhost resolves to a loopback or private address" in (answer.error or "")
        literal = await webhook.post(client, hook.url(), SECRET, b"{}", "l.2")
        assert literal.refused and "points at a loopback or private address" in (literal.error or "")

    await with_client(STRICT, strict)
    assert hook.seen == []

    # With private addresses allowed (development), a name is connected to at the address
    # the resolver vetted; one that resolves to a metadata address never is.
    dns = FixedDns({"hooks.test": ["127.0.0.1"], "metadata.test": ["169.254.169.254"]})

    async def lenient(client: WebhookClient) -> None:
        assert (await webhook.post(client, hook.url(host="hooks.test"), SECRET, b"{}", "h.1")).ok
        answer = await webhook.post(client, hook.url(host="metadata.test"), SECRET, b"{}", "m.1")
        assert answer.refused and "169.254.169.254" in (answer.error or "")
        nat64 = await webhook.post(client, "http://[64:ff9b::a9fe:a9fe]/latest", SECRET, b"{}", "m.2")
        assert nat64.refused and "never allowed" in (nat64.error or "")

    await with_client(DEV, lenient, resolver=dns)
    assert [s.host for s in hook.seen] == [f"hooks.test:{hook.port}"]


BAD_ANSWERS = {
    "oversized header": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 20_000 + b"\r\nContent-Length: 0\r\n\r\n",
    "too many headers": b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 500 + b"Content-Length: 0\r\n\r\n",
    "not HTTP": b"SMTP ready\r\n\r\n",
    "closed without an answer": b"",
    "bad status": b"HTTP/1.1 2xx OK\r\n\r\n",
}


@pytest.mark.parametrize("case", sorted(BAD_ANSWERS))
async def test_a_server_that_answers_badly_is_a_failed_try_with_a_reason(case: str) -> None:
    server, port = await raw_server(BAD_ANSWERS[case])

    async def use(client: WebhookClient) -> None:
        answer = await webhook.post(client, f"http://127.0.0.1:{port}/s3cr3t-path", SECRET, b"{}", "x.1")
        assert answer.status is None and not answer.refused and answer.error, answer
        assert "s3cr3t" not in answer.error  # the reason is published; the path may be a secret

    try:
        await with_client(DEV, use)
    finally:
        server.close()


async def test_a_silent_server_times_out_and_a_closed_port_is_refused_in_time() -> None:
    server, port = await raw_server(None)

    async def use(client: WebhookClient) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        answer = await webhook.post(client, f"http://127.0.0.1:{port}/", SECRET, b"{}", "t.1")
        assert answer.status is None and "Timeout" in (answer.error or "")
        assert loop.time() - started < 4
        server.close()
        await server.wait_closed()
        closed = await webhook.post(client, f"http://127.0.0.1:{port}/", SECRET, b"{}", "t.2")
        assert closed.status is None and not closed.refused and closed.error

    await with_client(DEV, use)
