"""A small HTTP/1.1 client for webhook POSTs, with keep-alive connections per host.

Webhook delivery is the notifier's hot path: httpx costs about 2.5 ms of CPU per request on
our machines, which capped delivery near 150 alerts/s a core. This client does only what a
webhook POST needs: one request buffer written at once, the status line and headers read,
a short response body drained (never kept) so the connection can be reused, a timeout over
the whole exchange. No redirects are followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from urllib.parse import urlsplit

_MAX_DRAINED_BYTES = 64 * 1024
_MAX_HEADER_LINES = 100

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class ProtocolError(ConnectionError):
    """The server's answer is not HTTP/1.x as expected."""


class Http1Client:
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._idle: dict[tuple[str, int, bool], list[Connection]] = {}
        self._tls = ssl.create_default_context()

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> int:
        """POST body to url; return the status code. Raises OSError or TimeoutError."""
        parts = urlsplit(url)
        tls = parts.scheme == "https"
        host = parts.hostname or ""
        port = parts.port or (443 if tls else 80)
        key = (host, port, tls)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        authority = host if parts.port is None else f"{host}:{port}"
        if ":" in host:  # an IPv6 literal
            authority = f"[{host}]" if parts.port is None else f"[{host}]:{port}"
        lines = [f"POST {target} HTTP/1.1", f"Host: {authority}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        pooled = self._take(key)
        if pooled is not None:
            try:
                return await self._exchange(key, pooled, request)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass  # the server closed the idle connection: once more on a new one
        connection = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=self._tls if tls else None), self.timeout_s
        )
        return await self._exchange(key, connection, request)

    def _take(self, key: tuple[str, int, bool]) -> Connection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if not connection[0].at_eof():
                return connection
            connection[1].close()
        return None

    async def _exchange(self, key: tuple[str, int, bool], connection: Connection, request: bytes) -> int:
        reader, writer = connection
        try:
            status, reusable = await asyncio.wait_for(
                self._roundtrip(reader, writer, request), self.timeout_s
            )
        except BaseException:
            writer.close()
            raise
        if reusable:
            self._idle.setdefault(key, []).append(connection)
        else:
            writer.close()
        return status

    @staticmethod
    async def _roundtrip(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> tuple[int, bool]:
        writer.write(request)
        await writer.drain()
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionResetError("the server closed the connection without an answer")
        fields = status_line.split(b" ", 2)
        if len(fields) < 2 or not fields[0].startswith(b"HTTP/1.") or not fields[1].isdigit():
            raise ProtocolError(f"not an HTTP/1.x answer: {status_line[:80]!r}")
        status = int(fields[1])
        length: int | None = None
        chunked = False
        keep = fields[0] == b"HTTP/1.1"
        for _ in range(_MAX_HEADER_LINES):
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length" and value.isdigit():
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value:
                chunked = True
            elif name == b"connection":
                keep = value == b"keep-alive" or (keep and value != b"close")
        else:
            raise ProtocolError("too many response headers")
        # The body is read only to reuse the connection, and dropped.
        if chunked:
            return status, keep and await _drain_chunks(reader)
        if length is None:
            return status, False  # the body runs to the end of the connection
        if length > _MAX_DRAINED_BYTES:
            return status, False
        await reader.readexactly(length)
        return status, keep

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for _, writer in connections:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
        self._idle.clear()


async def _drain_chunks(reader: asyncio.StreamReader) -> bool:
    """Read a chunked body; False (do not reuse) when it is longer than we care to read."""
    total = 0
    while True:
        size_line = await reader.readline()
        try:
            size = int(size_line.split(b";")[0].strip(), 16)
        except ValueError as exc:
            raise ProtocolError("bad chunk size") from exc
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            return True
        total += size
        if total > _MAX_DRAINED_BYTES:
            return False
        await reader.readexactly(size + 2)
