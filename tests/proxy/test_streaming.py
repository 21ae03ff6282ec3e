"""Bodies stream both ways with back-pressure (never buffered whole); WebSocket passthrough."""

from __future__ import annotations

import asyncio

import aiohttp

from ingressfed.proxy.http1 import ClientConnection
from ingressfed.proxy.settings import LimitSettings

from .conftest import US, BackendServer, eventually, running_proxy

MB = 1024 * 1024


async def test_large_response_streams_with_backpressure(backends: dict[str, BackendServer]) -> None:
    us = backends[US.name]
    routes = [_route(us)]
    async with running_proxy(backends, routes=routes) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"GET /stream?n=800&size=65536 HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert b"transfer-encoding: chunked" in head.lower()
        first = await asyncio.wait_for(reader.read(65536), 5)
        assert first  # the client has data while the backend is still held mid-stream
        assert not us.stream_finished.is_set()
        us.release.set()
        # The client reads nothing for a while: back-pressure must stop the backend well before 50 MB.
        await asyncio.sleep(0.5)
        assert not us.stream_finished.is_set()
        buffered = [
            c.transport.get_write_buffer_size()
            for c in proxy.engine.registry.clients
            if isinstance(c, ClientConnection) and c.transport
        ]
        assert max(buffered) < 4 * MB
        # Read the rest, counting the payload by decoding the chunk framing.
        payload = 0
        buffer = first
        async with asyncio.timeout(30):
            while True:
                while b"\r\n" not in buffer:
                    buffer += await reader.read(MB)
                line, _, buffer = buffer.partition(b"\r\n")
                size = int(line, 16)
                while len(buffer) < size + 2:
                    more = await reader.read(MB)
                    assert more
                    buffer += more
                payload += size
                buffer = buffer[size + 2 :]
                if size == 0:
                    break
        assert payload == 800 * 65536
        await asyncio.wait_for(us.stream_finished.wait(), 5)
        writer.close()


async def test_large_request_body_streams_to_backend(backends: dict[str, BackendServer]) -> None:
    us = backends[US.name]
    async with running_proxy(
        backends, routes=[_route(us)], limits=LimitSettings(max_body_bytes=100 * MB)
    ) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(
            b"POST /upload HTTP/1.1\r\nHost: app.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n" % (MB, b"a" * MB)
        )
        await writer.drain()
        # The backend sees the first megabyte before the client has sent the rest.
        await eventually(lambda: bool(us.upload_progress))
        chunk = b"%x\r\n%s\r\n" % (MB, b"b" * MB)
        for _ in range(29):
            writer.write(chunk)
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200 ")
        body = await asyncio.wait_for(reader.read(100), 5)
        assert body.endswith(str(30 * MB).encode())
        assert len(us.upload_progress) > 3  # arrived in many pieces, not one buffered blob
        writer.close()

        # Content-Length framed upload, through a client library.
        async with aiohttp.ClientSession() as http:

            async def gen():  # type: ignore[no-untyped-def]
                for _ in range(8):
                    yield b"c" * MB

            async with http.post(
                f"http://127.0.0.1:{proxy.port}/upload",
                data=gen(),
                headers={"Host": "app.example.com", "Content-Length": str(8 * MB)},
            ) as resp:
                assert resp.status == 200
                assert await resp.text() == str(8 * MB)


async def test_websocket_echo_through_the_proxy(backends: dict[str, BackendServer]) -> None:
    async with (
        running_proxy(backends, routes=[_route(backends[US.name])]) as proxy,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"http://127.0.0.1:{proxy.port}/ws", headers={"Host": "app.example.com"}) as ws,
    ):
        await ws.send_str("hello")
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.data == f"{US.name}:hello"
        blob = bytes(range(256)) * 512
        await ws.send_bytes(blob)
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.data == blob
    seen = backends[US.name].seen[-1]
    assert seen["method"] == "WS"
    assert seen["headers"]["Upgrade"].lower() == "websocket"


def _route(server: BackendServer):  # type: ignore[no-untyped-def]
    from ingressfed.model import Route

    return Route(host="app.example.com", path="/", backends=(server.backend(),))
