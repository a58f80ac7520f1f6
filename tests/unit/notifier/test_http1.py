"""The webhook HTTP client against small real servers on local sockets."""

import asyncio

import pytest

from services.notifier.http1 import Http1Client, ProtocolError

ANSWERS = {
    b"/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"/length": b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok",
    b"/close": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    b"/gone": b"HTTP/1.1 410 Gone\r\nContent-Length: 4\r\n\r\ngone",
    b"/garbage": b"SMTP ready\r\n\r\n",
}


async def serve() -> tuple[asyncio.Server, list[bytes], list[int]]:
    requests: list[bytes] = []
    connections = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections[0] += 1
        while True:
            head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
            if not head:
                break
            length = next(
                int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")
            )
            requests.append(head + await reader.readexactly(length))
            path = head.split(b" ")[1].split(b"?")[0]
            writer.write(ANSWERS[path])
            await writer.drain()
            if path in (b"/close", b"/garbage"):
                break
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, requests, connections


async def test_statuses_bodies_and_connection_reuse() -> None:
    server, requests, connections = await serve()
    port = server.sockets[0].getsockname()[1]
    client = Http1Client(timeout_s=5)
    base = f"http://127.0.0.1:{port}"
    try:
        assert await client.post(f"{base}/chunked", {"X-A": "1"}, b'{"a":1}') == 200
        assert await client.post(f"{base}/length?x=1", {}, b"{}") == 202
        assert await client.post(f"{base}/gone", {}, b"{}") == 410
        assert connections[0] == 1  # kept alive across the three
        assert await client.post(f"{base}/close", {}, b"{}") == 200
        assert await client.post(f"{base}/length", {}, b"{}") == 202
        assert connections[0] == 2  # the server closed it, so a new one
        with pytest.raises(ProtocolError):
            await client.post(f"{base}/garbage", {}, b"{}")
    finally:
        await client.aclose()
        server.close()
    first = requests[0]
    assert first.startswith(b"POST /chunked HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"Content-Length: 7\r\n" in first and b"X-A: 1\r\n" in first and first.endswith(b'{"a":1}')
    assert requests[1].startswith(b"POST /length?x=1 ")


async def test_refused_and_silent_servers_fail_in_time() -> None:
    client = Http1Client(timeout_s=0.5)
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)  # accepts, never answers
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TimeoutError):
            await client.post(f"http://127.0.0.1:{port}/", {}, b"{}")
    finally:
        server.close()
    with pytest.raises(OSError):
        await client.post(f"http://127.0.0.1:{port}/", {}, b"{}")
