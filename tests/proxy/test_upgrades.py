"""Upgrades on real sockets: h2c and unknown tokens are removed (never tunnelled), a WebSocket
handshake is tunnelled only after a valid 101, and nothing the client sends after a handshake
reaches the backend as HTTP when the backend refuses it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from ingressfed.model import Backend, Route

from .conftest import US, BackendServer, running_proxy

HOST = b"app.example.com"
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


@dataclass
class SwitchingBackend:
    """Answers 101 to any request with an Upgrade header (what a careless h2c server does), then
    echoes raw bytes; ``refuse`` answers 403 instead; ``bad_accept`` sends a wrong accept."""

    heads: list[bytes] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    refuse: bool = False
    bad_accept: bool = False
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                fields = {
                    line.partition(b":")[0].strip().lower(): line.partition(b":")[2].strip()
                    for line in head.split(b"\r\n")[1:]
                    if line
                }
                if b"upgrade" in fields and not self.refuse:
                    key = fields.get(b"sec-websocket-key", b"")
                    accept = base64.b64encode(
                        hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
                    )
                    writer.write(
                        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %b\r\n"
                        b"Sec-WebSocket-Accept: %b\r\n\r\n"
                        % (fields[b"upgrade"], b"wrong" if self.bad_accept else accept)
                    )
                    while data := await reader.read(65536):
                        self.raw.append(data)
                        writer.write(data)
                    return
                status = b"403 Forbidden" if b"upgrade" in fields else b"200 OK"
                writer.write(b"HTTP/1.1 %b\r\nContent-Length: 2\r\n\r\nok" % status)
                await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def switching_backend(**options: bool) -> AsyncIterator[SwitchingBackend]:
    backend = SwitchingBackend(**options)
    server = await asyncio.start_server(backend.handle, "127.0.0.1", 0)
    backend.port = int(server.sockets[0].getsockname()[1])
    try:
        yield backend
    finally:
        server.close()


def _routes(port: int) -> list[Route]:
    return [Route(host=HOST.decode(), backends=(Backend(cluster=US.name, host="127.0.0.1", port=port),))]


async def _read_all(reader: asyncio.StreamReader, *, within: float = 2.0) -> bytes:
    chunks = []
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        async with asyncio.timeout(within):
            while chunk := await reader.read(65536):
                chunks.append(chunk)
    return b"".join(chunks)


SMUGGLED = (
    b"GET /private/admin HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 4\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
)


async def test_h2c_upgrade_is_removed_and_what_follows_is_parsed_as_http(
    backends: dict[str, BackendServer],
) -> None:
    async with switching_backend() as backend, running_proxy(backends, routes=_routes(backend.port)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(
            b"GET /public HTTP/1.1\r\nHost: app.example.com\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n" + SMUGGLED
        )
        answer = await _read_all(reader)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"HTTP/1.1 101" not in answer
    assert b"HTTP/1.1 400 Bad Request" in answer  # the smuggling vector, now parsed and refused
    assert len(backend.heads) == 1
    seen = backend.heads[0].lower()
    assert b"upgrade" not in seen and b"http2-settings" not in seen
    assert backend.raw == []


async def test_unknown_upgrade_token_is_removed(backends: dict[str, BackendServer]) -> None:
    async with switching_backend() as backend, running_proxy(backends, routes=_routes(backend.port)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(
            b"GET /a HTTP/1.1\r\nHost: app.example.com\r\nConnection: Upgrade\r\nUpgrade: foo/2\r\n\r\n"
            b"GET /b HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
        )
        answer = await _read_all(reader, within=1.0)
        writer.close()
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert [h.split(b" ")[1] for h in backend.heads] == [b"/a", b"/b"]
    assert all(b"upgrade" not in h.lower() for h in backend.heads)


def _handshake(path: bytes = b"/ws") -> bytes:
    return (
        b"GET %b HTTP/1.1\r\nHost: app.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Key: %b\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, KEY)
    )


async def test_bytes_after_a_refused_handshake_never_reach_the_backend(
    backends: dict[str, BackendServer],
) -> None:
    async with (
        switching_backend(refuse=True) as backend,
        running_proxy(backends, routes=_routes(backend.port)) as proxy,
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(_handshake() + SMUGGLED)
        answer = await _read_all(reader)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert b"Connection: close" in answer
    assert len(backend.heads) == 1  # /private/admin was held by the proxy, then dropped with the connection


async def test_websocket_tunnel_carries_bytes_sent_before_the_101(backends: dict[str, BackendServer]) -> None:
    async with switching_backend() as backend, running_proxy(backends, routes=_routes(backend.port)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(_handshake() + b"early frame")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
        async with asyncio.timeout(2):
            echoed = await reader.readexactly(len(b"early frame"))
        writer.write(b" later")
        async with asyncio.timeout(2):
            echoed += await reader.readexactly(len(b" later"))
        writer.close()
    assert echoed == b"early frame later"


async def test_101_with_a_wrong_accept_is_502(backends: dict[str, BackendServer]) -> None:
    async with (
        switching_backend(bad_accept=True) as backend,
        running_proxy(backends, routes=_routes(backend.port)) as proxy,
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(_handshake() + b"frame")
        answer = await _read_all(reader)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 502 ")
    assert backend.raw == []


async def test_invalid_handshake_is_400_and_not_forwarded(backends: dict[str, BackendServer]) -> None:
    async with switching_backend() as backend, running_proxy(backends, routes=_routes(backend.port)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(_handshake().replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8"))
        answer = await _read_all(reader)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert backend.heads == []
