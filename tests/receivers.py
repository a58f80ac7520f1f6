"""Real receivers for alert tests: a webhook HTTP server that verifies signatures and an
SMTP server (aiosmtpd), each on a free local port in a thread of its own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiosmtpd.controller import Controller

from services.infra.devstack import free_port
from services.notifier.webhook import verify


@dataclass
class Received:
    delivery_id: str
    body: dict[str, Any]
    signature_ok: bool
    status: int  # what the receiver answered (0: the sender hung up before the answer)
    first: bool  # the first 2xx answer for this delivery id: the alert was accepted here
    at: float = field(default_factory=time.monotonic)  # when the request arrived in full


@dataclass(frozen=True)
class ReceivedAlert:
    """One alert in an accepted delivery: alone, or one of a batch or a digest."""

    delivery_id: str
    carrier: str  # the body's type: alert, batch or digest
    body: dict[str, Any]  # the alert itself
    signature_ok: bool
    at: float  # when its delivery arrived


def alerts_in(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The alerts a webhook body carries, in its order."""
    if body.get("type") in ("batch", "digest"):
        return list(body["alerts"])
    return [body]


@dataclass
class WebhookReceiver:
    """POST /<anything>: checks Innomatch-Signature with `secret`, answers from `script`.

    `script(delivery_id, attempt)` gives the status to answer (default 200). A receiver that
    follows the contract accepts a delivery id once: a repeat is answered 200, not counted.
    `hold_s` delays every answer; `pause()` holds every answer until `resume()`, so a test can
    kill the sender while a delivery is certainly in flight.
    """

    secret: str
    script: Callable[[str, int], int] = lambda _id, _attempt: 200
    hold_s: float = 0.0
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    in_flight: int = 0  # requests being held (hold_s or paused) right now
    _accepted: set[str] = field(default_factory=set)
    _tries: Counter[str] = field(default_factory=Counter)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _answering: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._answering.set()

    def pause(self) -> None:
        """Hold every answer from now on (requests still arrive) until `resume`."""
        self._answering.clear()

    def resume(self) -> None:
        self._answering.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/innomatch"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver would
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls between header and body

            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                delivery_id = self.headers.get("Innomatch-Delivery-Id", "")
                ok = verify(receiver.secret, body, self.headers.get("Innomatch-Signature", ""))
                with receiver._lock:
                    receiver.in_flight += 1
                time.sleep(receiver.hold_s)
                receiver._answering.wait(120)
                with receiver._lock:
                    receiver.in_flight -= 1
                if _peer_gone(self.connection):
                    receiver._record(delivery_id, body, ok, 0)
                    return
                status = receiver._answer(delivery_id, body, ok)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.resume()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _answer(self, delivery_id: str, body: bytes, ok: bool) -> int:
        with self._lock:
            status = self.script(delivery_id, self._tries[delivery_id] + 1) if ok else 401
            self._record_locked(delivery_id, body, ok, status)
            return status

    def _record(self, delivery_id: str, body: bytes, ok: bool, status: int) -> None:
        with self._lock:
            self._record_locked(delivery_id, body, ok, status)

    def _record_locked(self, delivery_id: str, body: bytes, ok: bool, status: int) -> None:
        self._tries[delivery_id] += 1
        first = 200 <= status < 300 and delivery_id not in self._accepted
        if first:
            self._accepted.add(delivery_id)
        self.received.append(Received(delivery_id, json.loads(body or b"{}"), ok, status, first))

    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.first]

    def alerts(self, principal: str | None = None) -> list[ReceivedAlert]:
        """Every alert of the accepted deliveries (to `principal`, if given)."""
        return [
            ReceivedAlert(r.delivery_id, str(r.body.get("type")), alert, r.signature_ok, r.at)
            for r in self.accepted()
            if principal is None or r.body.get("recipient") == principal
            for alert in alerts_in(r.body)
        ]

    def answered_ok(self) -> Counter[str]:
        """How many 2xx answers each delivery id got (more than 1: sent again after success)."""
        with self._lock:
            return Counter(r.delivery_id for r in self.received if 200 <= r.status < 300)

    def for_recipient(self, principal: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.body.get("recipient") == principal]


def _peer_gone(conn: socket.socket) -> bool:
    """True when the sender closed the connection (a killed process) before the answer."""
    readable, _, _ = select.select([conn], [], [], 0)
    if not readable:
        return False
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class _Collect:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        return "250 Message accepted for delivery"


class SmtpServer:
    """A local SMTP server that keeps every message it accepts."""

    def __init__(self) -> None:
        self.port = free_port()
        self._handler = _Collect()
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        return list(self._handler.messages)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._controller.stop()


class FixedDns(AbstractResolver):
    """A resolver that answers from a table, as a DNS server under someone's control would."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.table[host]
        ]

    async def close(self) -> None:
        pass


async def raw_server(answer: bytes | None) -> tuple[asyncio.Server, int]:
    """A TCP server that reads a request and writes `answer` (None: never answers)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if answer is None:
            await asyncio.sleep(30)
        else:
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]
