"""Connections to backends: an asyncio protocol per connection and an idle pool per backend address."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, cast

import httptools

if TYPE_CHECKING:
    from ingressfed.proxy.http1 import ClientConnection, Exchange

__all__ = ["UpstreamConnection", "UpstreamPool"]

log = logging.getLogger(__name__)

Address = tuple[str, int]


class UpstreamConnection(asyncio.Protocol):
    """One HTTP/1.1 connection to a backend; carries one exchange at a time (no upstream pipelining)."""

    __slots__ = (
        "address",
        "closed",
        "exchange",
        "headers",
        "idle_since",
        "parser",
        "pool",
        "reason",
        "reused",
        "status",
        "transport",
        "tunnel",
    )

    def __init__(self, pool: UpstreamPool, address: Address) -> None:
        self.pool = pool
        self.address = address
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: Exchange | None = None
        self.tunnel: ClientConnection | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        tunnel = self.tunnel
        if tunnel is not None:
            tunnel.write(data)
            return
        exchange = self.exchange
        if exchange is None:
            # An idle connection that speaks unasked is broken (or the server is closing it).
            self.close()
            return
        exchange.upstream_active = self.pool.clock[0]
        client = exchange.client
        client.cork()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            if self.exchange is not None:
                self.exchange.upstream_upgraded(self, data[upgrade.args[0] :])
        except httptools.HttpParserError as exc:
            current = self.exchange
            self.close()
            if current is not None:
                current.upstream_failed(self, f"invalid response from backend: {exc}")
        finally:
            client.uncork()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        tunnel = self.tunnel
        if tunnel is not None:
            self.tunnel = None
            tunnel.close()
            return
        exchange = self.exchange
        if exchange is not None:
            self.exchange = None
            exchange.upstream_lost(self)
        else:
            self.pool.discard(self)

    def pause_writing(self) -> None:
        peer = self.tunnel if self.tunnel is not None else (self.exchange.client if self.exchange else None)
        if peer is not None:
            peer.set_paused(peer.PAUSE_UPSTREAM, True)

    def resume_writing(self) -> None:
        peer = self.tunnel if self.tunnel is not None else (self.exchange.client if self.exchange else None)
        if peer is not None:
            peer.set_paused(peer.PAUSE_UPSTREAM, False)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.headers = []
        self.reason = b""

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if self.exchange is not None:
            self.exchange.response_head(self)

    def on_body(self, body: bytes) -> None:
        if self.exchange is not None:
            self.exchange.response_body(body)

    def on_message_complete(self) -> None:
        if self.exchange is not None:
            self.exchange.response_complete(self)

    # helpers
    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
        self.exchange = None

    def abort(self) -> None:
        self.exchange = None
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class UpstreamPool:
    """Idle keep-alive connections per backend address (LIFO: the warmest connection first)."""

    def __init__(self, *, connect_timeout: float, clock: list[float], max_idle: int = 128) -> None:
        self.connect_timeout = connect_timeout
        self.clock = clock  # shared coarse clock, [now]; avoids a syscall per event
        self.max_idle = max_idle
        self.idle: dict[Address, list[UpstreamConnection]] = {}
        self.busy: set[UpstreamConnection] = set()

    def take(self, address: Address) -> UpstreamConnection | None:
        stack = self.idle.get(address)
        while stack:
            conn = stack.pop()
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                conn.reused = True
                return conn
        return None

    def put(self, conn: UpstreamConnection) -> None:
        conn.exchange = None
        if conn.closed:
            return
        stack = self.idle.setdefault(conn.address, [])
        if len(stack) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = self.clock[0]
        stack.append(conn)

    def discard(self, conn: UpstreamConnection) -> None:
        stack = self.idle.get(conn.address)
        if stack and conn in stack:
            stack.remove(conn)

    async def connect(self, address: Address) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.connect_timeout):
            _, protocol = await loop.create_connection(lambda: UpstreamConnection(self, address), *address)
        return protocol

    def sweep(self, *, now: float, idle_timeout: float) -> None:
        for stack in self.idle.values():
            while stack and now - stack[0].idle_since > idle_timeout:
                stack.pop(0).close()

    def close_all(self) -> None:
        for stack in self.idle.values():
            for conn in stack:
                conn.close()
        self.idle.clear()
