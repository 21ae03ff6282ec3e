"""The floor: the least a Python proxy on uvloop and httptools can do per request, for bench/proxy/run.py
``--with-floor``. It forwards the head it parsed to one backend over pooled keep-alive connections
and relays the response: no validation, no routing, no health, no limits, no error handling. What
ingressfed costs above it is the price of its features; what it costs above nginx is the language.
Never use it for anything else.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import httptools
import uvloop


class _Backend(asyncio.Protocol):
    def __init__(self, idle: list[_Backend]) -> None:
        self.idle = idle
        self.parser = httptools.HttpResponseParser(self)
        self.client: _Client | None = None
        self.transport: Any = None
        self.out: list[bytes] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_begin(self) -> None:
        self.out = [b"HTTP/1.1 %d OK\r\n" % self.parser.get_status_code()]

    def on_header(self, name: bytes, value: bytes) -> None:
        self.out.append(name + b": " + value + b"\r\n")

    def on_headers_complete(self) -> None:
        self.out.append(b"\r\n")

    def on_body(self, body: bytes) -> None:
        self.out.append(body)

    def on_message_complete(self) -> None:
        client, self.client = self.client, None
        if client is not None and not client.transport.is_closing():  # wrk stops mid-request
            client.transport.write(b"".join(self.out))
        self.idle.append(self)


class _Client(asyncio.Protocol):
    def __init__(self, backend: tuple[str, int], idle: list[_Backend]) -> None:
        self.backend = backend
        self.idle = idle
        self.parser = httptools.HttpRequestParser(self)
        self.transport: Any = None
        self.head: list[bytes] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_url(self, url: bytes) -> None:
        self.head = [self.parser.get_method() + b" " + url + b" HTTP/1.1\r\n"]

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head.append(name + b": " + value + b"\r\n")

    def on_message_complete(self) -> None:
        self.head.append(b"\r\n")
        request = b"".join(self.head)
        if self.idle:
            conn = self.idle.pop()
            conn.client = self
            conn.transport.write(request)
        else:
            asyncio.get_running_loop().create_task(self._connect(request))

    async def _connect(self, request: bytes) -> None:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: _Backend(self.idle), *self.backend)
        conn.client = self
        conn.transport.write(request)


async def serve(port: int, backend: int) -> None:
    idle: list[_Backend] = []
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Client(("127.0.0.1", backend), idle), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.backend))


if __name__ == "__main__":
    main()
