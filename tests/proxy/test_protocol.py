"""HTTP/1.1 corners against raw backends: close-delimited bodies, read timeout, HEAD, HTTP/1.0,
pipelining with bodies, 100-continue."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from ingressfed.model import Backend, Route
from ingressfed.proxy.settings import TimeoutSettings

from .conftest import US, BackendServer, raw_exchange, running_proxy

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_backend(handler: Handler) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()


def _routes(port: int) -> list[Route]:
    return [Route(host="app.example.com", backends=(Backend(cluster=US.name, host="127.0.0.1", port=port),))]


async def test_close_delimited_backend_body_is_rechunked(backends: dict[str, BackendServer]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart one, ")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"part two")
        writer.close()

    async with raw_backend(handler) as port, running_proxy(backends, routes=_routes(port)) as proxy:
        answer = await raw_exchange(
            proxy.port, b"GET / HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n"
        )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body == b"a\r\npart one, \r\n8\r\npart two\r\n0\r\n\r\n"


async def test_silent_backend_is_504(backends: dict[str, BackendServer]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            await reader.read()  # silent until the proxy gives up and closes
        writer.close()

    async with (
        raw_backend(handler) as port,
        running_proxy(backends, routes=_routes(port), timeouts=TimeoutSettings(read=0.5)) as proxy,
    ):
        answer = await raw_exchange(
            proxy.port, b"GET / HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n"
        )
    assert answer.startswith(b"HTTP/1.1 504 ")


async def test_head_http10_and_pipelined_bodies(backends: dict[str, BackendServer]) -> None:
    async with running_proxy(backends, routes=_routes(backends[US.name].port)) as proxy:
        answer = await raw_exchange(
            proxy.port,
            b"HEAD /h HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
            b"POST /p1 HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 5\r\n\r\nhello"
            b"POST /p2 HTTP/1.1\r\nHost: app.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\n\r\n"
            b"GET /last HTTP/1.0\r\nHost: app.example.com\r\n\r\n",
        )
    assert answer.count(b"HTTP/1.1 200 OK") == 4
    assert answer.endswith(b"}")  # the HTTP/1.0 response ends the connection
    seen = backends[US.name].seen
    assert [(r["method"], r["path"], r["body"]) for r in seen] == [
        ("HEAD", "/h", b""),
        ("POST", "/p1", b"hello"),
        ("POST", "/p2", b"abc"),
        ("GET", "/last", b""),
    ]


async def test_expect_100_continue_is_relayed(backends: dict[str, BackendServer]) -> None:
    async with running_proxy(backends, routes=_routes(backends[US.name].port)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(
            b"POST /c HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert interim.startswith(b"HTTP/1.1 100 ")
        writer.write(b"body")
        final = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert final.startswith(b"HTTP/1.1 200 ")
        writer.close()
    assert backends[US.name].seen[-1]["body"] == b"body"


async def test_idle_keep_alive_client_is_closed(backends: dict[str, BackendServer]) -> None:
    async with running_proxy(
        backends, routes=_routes(backends[US.name].port), timeouts=TimeoutSettings(idle=0.3)
    ) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200 ")
        # after the response the connection stays open until the idle timeout closes it
        rest = await asyncio.wait_for(reader.read(), 5)
        assert rest.endswith(b"}")
        assert reader.at_eof()
        writer.close()


async def test_stale_pooled_connection_is_retried_on_a_fresh_one(backends: dict[str, BackendServer]) -> None:
    """The backend drops every kept-alive connection when its second request arrives, as a server
    whose keep-alive timeout races the proxy would."""
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
        writer.transport.abort()

    async with raw_backend(handler) as port, running_proxy(backends, routes=_routes(port)) as proxy:
        request = b"GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
        answer = await raw_exchange(
            proxy.port, request + b"GET / HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n"
        )
        assert answer.count(b"HTTP/1.1 200 OK") == 2
        assert connections == 2
        assert proxy.health()[US.name] is True  # a stale connection is not the backend's failure


async def test_half_closed_client_still_gets_its_response(backends: dict[str, BackendServer]) -> None:
    async with running_proxy(backends, routes=_routes(backends[US.name].port)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"GET /half HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
        writer.write_eof()
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200 ")  # and read() returned: the proxy closed after it


async def test_response_headers_the_backend_connection_header_names_are_removed(
    backends: dict[str, BackendServer],
) -> None:
    # RFC 9110 7.6.1: what a Connection header names is hop-by-hop, whatever its case, on as
    # many Connection headers as the backend sends; the rest of the head is forwarded as it was.
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nX-Secret: 1\r\nConnection: x-secret, keep-alive\r\n"
            b"X-Kept: 2\r\nCONNECTION: X-Other\r\nx-other: 3\r\nKeep-Alive: timeout=5\r\n"
            b"Content-Length: 2\r\n\r\nok"
        )
        await writer.drain()
        writer.close()

    async with raw_backend(handler) as port, running_proxy(backends, routes=_routes(port)) as proxy:
        answer = await raw_exchange(
            proxy.port, b"GET / HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n"
        )
    head, _, body = answer.partition(b"\r\n\r\n")
    names = [line.split(b":")[0].lower() for line in head.split(b"\r\n")[1:]]
    assert body == b"ok"
    assert b"x-kept" in names and b"content-length" in names
    assert not {b"x-secret", b"x-other", b"keep-alive"} & set(names)
    assert names.count(b"connection") == 1  # ours: Connection: close


async def test_trailers_of_a_chunked_response_do_not_reach_the_next_response(
    backends: dict[str, BackendServer],
) -> None:
    # llhttp reports a chunked body's trailer fields through the same callback as header fields:
    # they belong to the response they end, never to the next one on the pooled connection.
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Leak\r\n\r\n"
            b"2\r\nok\r\n0\r\nX-Leak: from-the-first\r\n\r\n"
        )
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo")
        await writer.drain()
        await reader.read()
        writer.close()

    async with raw_backend(handler) as port, running_proxy(backends, routes=_routes(port)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            writer.write(b"GET /1 HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
            first = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 5)
            writer.write(b"GET /2 HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n")
            second = await asyncio.wait_for(reader.read(), 5)
        finally:
            writer.close()
    assert first.endswith(b"2\r\nok\r\n0\r\n\r\n")
    head, _, body = second.partition(b"\r\n\r\n")
    assert body == b"two" and connections == 1
    assert b"x-leak" not in head.lower()
