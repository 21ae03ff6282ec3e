"""The request lifecycle pinned on real sockets: answers given while the client is still sending its
body, a backend closing mid-body, pipelined requests after an error, and the "request body finished"
rule in both the pool-reuse and the close-after-failure decisions (without it, a connection carrying
half a request body would be reused, or a client connection kept whose next bytes are that body)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from ingressfed.model import Backend, Route
from ingressfed.proxy.settings import LimitSettings

from .conftest import US, BackendServer, running_proxy

HOST = b"app.example.com"


@dataclass
class Seen:
    connection: int
    method: str
    path: str
    body: bytes


@dataclass
class ScriptedBackend:
    """A raw HTTP/1.1 backend that, like most servers, reads (drains) a request body even after
    answering early. Paths: ``/early`` answers on the head, then drains the body; ``/cut`` reads
    10 body bytes and closes; anything else reads the body and answers 200."""

    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *lines = head.decode("latin-1").split("\r\n")
                method, path, _ = request_line.split(" ")
                length = 0
                chunked = False
                for line in lines:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                    elif name.strip().lower() == "transfer-encoding":
                        chunked = True
                if path == "/cut":
                    await reader.readexactly(10)
                    self.seen.append(Seen(number, method, path, b""))
                    writer.close()
                    return
                if path == "/early":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly")
                    await writer.drain()
                body = await (_chunked_body(reader) if chunked else reader.readexactly(length))
                self.seen.append(Seen(number, method, path, body))
                if path != "/early":
                    answer = f"{method} {path} {len(body)}".encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(answer), answer))
                    await writer.drain()
        writer.close()


async def _chunked_body(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
    await reader.readuntil(b"\r\n")
    return b"".join(parts)


@contextlib.asynccontextmanager
async def scripted_backend() -> AsyncIterator[ScriptedBackend]:
    backend = ScriptedBackend()
    server = await asyncio.start_server(backend.handle, "127.0.0.1", 0)
    backend.port = int(server.sockets[0].getsockname()[1])
    try:
        yield backend
    finally:
        server.close()


def _dead_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again: connecting is refused


def _routes(port: int, *, dead: int | None = None) -> list[Route]:
    routes = [Route(host=HOST.decode(), backends=(Backend(cluster=US.name, host="127.0.0.1", port=port),))]
    if dead is not None:
        routes.append(
            Route(
                host=HOST.decode(),
                path="/dead",
                backends=(Backend(cluster=US.name, host="127.0.0.1", port=dead),),
            )
        )
    return routes


async def _read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head, await reader.readexactly(length)


async def _closed(reader: asyncio.StreamReader, *, within: float = 2.0) -> bool:
    """True when the proxy closes the connection (EOF or reset) without sending anything more."""
    try:
        async with asyncio.timeout(within):
            return await reader.read(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def test_early_413_for_content_length_closes_before_the_body(
    backends: dict[str, BackendServer],
) -> None:
    async with (
        scripted_backend() as backend,
        running_proxy(
            backends, routes=_routes(backend.port), limits=LimitSettings(max_body_bytes=100)
        ) as proxy,
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"POST / HTTP/1.1\r\nHost: %b\r\nContent-Length: 1000\r\n\r\n" % HOST)
        head, _ = await _read_response(reader)
        assert head.startswith(b"HTTP/1.1 413 ")
        assert b"Connection: close" in head
        assert await _closed(reader)
        writer.close()
    assert backend.seen == []


async def test_early_413_mid_chunked_body_aborts_the_upstream_connection(
    backends: dict[str, BackendServer],
) -> None:
    async with (
        scripted_backend() as backend,
        running_proxy(
            backends, routes=_routes(backend.port), limits=LimitSettings(max_body_bytes=100)
        ) as proxy,
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(
            b"POST /up HTTP/1.1\r\nHost: %b\r\nTransfer-Encoding: chunked\r\n\r\n32\r\n%b\r\n"
            % (HOST, b"a" * 50)
        )
        await asyncio.sleep(0.1)  # the head and the first chunk are forwarded
        writer.write(b"64\r\n%b\r\n" % (b"b" * 100))  # 150 bytes: over the limit, body unfinished
        head, _ = await _read_response(reader)
        assert head.startswith(b"HTTP/1.1 413 ")
        assert await _closed(reader)
        writer.close()
        # The half-sent request is never completed on that backend connection, and the next request
        # is not written behind it.
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"GET /after HTTP/1.1\r\nHost: %b\r\n\r\n" % HOST)
        head, body = await _read_response(reader)
        writer.close()
    assert head.startswith(b"HTTP/1.1 200 ")
    assert body == b"GET /after 0"
    assert [s.path for s in backend.seen] == ["/after"]


async def test_early_502_while_the_body_is_still_coming_closes_the_client_connection(
    backends: dict[str, BackendServer],
) -> None:
    async with (
        scripted_backend() as backend,
        running_proxy(backends, routes=_routes(backend.port, dead=_dead_port())) as proxy,
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"POST /dead HTTP/1.1\r\nHost: %b\r\nContent-Length: 60\r\n\r\n0123456789" % HOST)
        head, _ = await _read_response(reader)
        assert head.startswith(b"HTTP/1.1 502 ")
        # 50 body bytes are still owed: the connection cannot carry another request.
        assert b"Connection: close" in head
        assert await _closed(reader)
        writer.close()
    assert backend.seen == []


async def test_backend_closing_mid_body_is_502_and_closes(backends: dict[str, BackendServer]) -> None:
    async with scripted_backend() as backend, running_proxy(backends, routes=_routes(backend.port)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"PUT /cut HTTP/1.1\r\nHost: %b\r\nContent-Length: 100\r\n\r\n%b" % (HOST, b"x" * 20))
        head, _ = await _read_response(reader)
        assert head.startswith(b"HTTP/1.1 502 ")
        assert b"Connection: close" in head
        assert await _closed(reader)
        writer.close()
    assert [s.path for s in backend.seen] == ["/cut"]


async def test_upstream_that_answered_before_the_body_ended_is_not_reused(
    backends: dict[str, BackendServer],
) -> None:
    async with scripted_backend() as backend, running_proxy(backends, routes=_routes(backend.port)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"POST /early HTTP/1.1\r\nHost: %b\r\nContent-Length: 30\r\n\r\n" % HOST)
        head, body = await _read_response(reader)
        assert head.startswith(b"HTTP/1.1 200 ") and body == b"early"
        writer.write(b"y" * 30)  # the body, after the answer
        writer.write(b"GET /next HTTP/1.1\r\nHost: %b\r\n\r\n" % HOST)
        async with asyncio.timeout(3):
            head, body = await _read_response(reader)
        writer.close()
    assert head.startswith(b"HTTP/1.1 200 ")
    assert body == b"GET /next 0"
    # /early is never completed (its late body stays in the proxy); /next came on a new connection.
    assert [(s.path, s.connection, s.body) for s in backend.seen] == [("/next", 2, b"")]


async def test_pipelined_requests_after_a_502_are_served_in_order(
    backends: dict[str, BackendServer],
) -> None:
    async with (
        scripted_backend() as backend,
        running_proxy(backends, routes=_routes(backend.port, dead=_dead_port())) as proxy,
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(
            b"GET /dead HTTP/1.1\r\nHost: %b\r\n\r\n"
            b"GET /one HTTP/1.1\r\nHost: %b\r\n\r\n"
            b"POST /two HTTP/1.1\r\nHost: %b\r\nContent-Length: 3\r\n\r\nabc" % (HOST, HOST, HOST)
        )
        first, _ = await _read_response(reader)
        second, second_body = await _read_response(reader)
        third, third_body = await _read_response(reader)
        writer.close()
    assert first.startswith(b"HTTP/1.1 502 ") and b"Connection: close" not in first
    assert second.startswith(b"HTTP/1.1 200 ") and second_body == b"GET /one 0"
    assert third.startswith(b"HTTP/1.1 200 ") and third_body == b"POST /two 3"


async def test_pipelined_requests_after_a_rejection_are_not_served(
    backends: dict[str, BackendServer],
) -> None:
    async with scripted_backend() as backend, running_proxy(backends, routes=_routes(backend.port)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(
            b"GET /one HTTP/1.1\r\nHost: %b\r\n\r\n"
            b"GET /two HTTP/1.1\r\nHost: %b\r\nHost: other.example.com\r\n\r\n"
            b"GET /three HTTP/1.1\r\nHost: %b\r\n\r\n" % (HOST, HOST, HOST)
        )
        first, first_body = await _read_response(reader)
        second, _ = await _read_response(reader)
        assert await _closed(reader)
        writer.close()
    assert first.startswith(b"HTTP/1.1 200 ") and first_body == b"GET /one 0"
    assert second.startswith(b"HTTP/1.1 400 ") and b"Connection: close" in second
    assert [s.path for s in backend.seen] == ["/one"]


async def test_pipelined_requests_after_a_404_are_not_served(backends: dict[str, BackendServer]) -> None:
    async with scripted_backend() as backend, running_proxy(backends, routes=_routes(backend.port)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(
            b"GET /one HTTP/1.1\r\nHost: %b\r\n\r\n"
            b"GET /two HTTP/1.1\r\nHost: unknown.example.org\r\n\r\n"
            b"GET /three HTTP/1.1\r\nHost: %b\r\n\r\n" % (HOST, HOST)
        )
        first, _ = await _read_response(reader)
        second, _ = await _read_response(reader)
        assert await _closed(reader)
        writer.close()
    assert first.startswith(b"HTTP/1.1 200 ")
    assert second.startswith(b"HTTP/1.1 404 ")
    assert [s.path for s in backend.seen] == ["/one"]
