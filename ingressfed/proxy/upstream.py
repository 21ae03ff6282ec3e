"""Connections to backends: an asyncio protocol per connection and an idle pool per backend address.

An upstream connection knows nothing of exchanges or clients: it reports to whatever
``ports.UpstreamListener`` uses it, and in a tunnel passes bytes to a ``ports.TunnelPeer``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast

import httptools

from ingressfed.model import Backend
from ingressfed.proxy.clock import Clock
from ingressfed.proxy.ports import Pause, TunnelPeer, UpstreamListener

__all__ = ["UpstreamConnection", "UpstreamPool", "unconnected"]

log = logging.getLogger(__name__)

Address = tuple[str, int]


def unconnected(data: bytes) -> None:
    """The transport's write before there is a transport (every caller checks for one first)."""


def _never_closing() -> bool:
    return False


class UpstreamConnection(asyncio.Protocol, TunnelPeer):
    """One HTTP/1.1 connection to a backend; carries one exchange at a time (no upstream pipelining)."""

    __slots__ = (
        "_feed",
        "_is_closing",
        "_keep_alive",
        "_send",
        "_status_code",
        "address",
        "closed",
        "headers",
        "idle_since",
        "listener",
        "parser",
        "pool",
        "reason",
        "reused",
        "stack",
        "status",
        "transport",
        "tunnel",
    )

    def __init__(self, pool: UpstreamPool, address: Address) -> None:
        self.pool = pool
        self.address = address
        self.stack = pool.stack(address)  # where it waits while idle
        self.transport: asyncio.Transport | None = None
        # Bound once (as in proxy/http1.py): compiled, a method call on a third-party object looks
        # the method up in its type per call.
        self._send: Callable[[bytes], object] = unconnected
        self._is_closing: Callable[[], bool] = _never_closing
        self.parser = httptools.HttpResponseParser(self)
        self._feed: Callable[[bytes], None] = self.parser.feed_data
        self._status_code: Callable[[], int] = self.parser.get_status_code
        self._keep_alive: Callable[[], bool] = self.parser.should_keep_alive
        self.listener: UpstreamListener | None = None
        self.tunnel: TunnelPeer | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self.status = 0
        self.reason = b""
        self.headers: list[bytes] = []  # name, value, name, value, ...: no tuple per header

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)
        self._send = self.transport.write
        self._is_closing = self.transport.is_closing

    def data_received(self, data: bytes) -> None:
        tunnel = self.tunnel
        if tunnel is not None:
            tunnel.write(data)
            return
        listener = self.listener
        if listener is None:
            # An idle connection that speaks unasked is broken (or the server is closing it).
            self.close()
            return
        listener.upstream_read(self.pool.clock.now)
        # Writes to the client are held while this read is parsed: head and body leave in one send.
        downstream = listener.downstream
        downstream.cork()
        try:
            self._feed(data)
        except httptools.HttpParserUpgrade as upgrade:
            if self.listener is not None:
                self.listener.upstream_upgraded(data[upgrade.args[0] :])
        except httptools.HttpParserError as exc:
            current = self.listener
            self.close()
            if current is not None:
                current.upstream_failed(f"invalid response from backend: {exc}")
        finally:
            downstream.uncork()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        tunnel = self.tunnel
        if tunnel is not None:
            self.tunnel = None
            tunnel.close()
            return
        listener = self.listener
        if listener is not None:
            self.listener = None
            listener.upstream_lost()
        else:
            self.pool.discard(self)

    def pause_writing(self) -> None:
        self._pause_peer(True)

    def resume_writing(self) -> None:
        self._pause_peer(False)

    def _pause_peer(self, on: bool) -> None:
        if self.tunnel is not None:
            self.tunnel.set_paused(Pause.UPSTREAM, on)
        elif self.listener is not None:
            self.listener.pause_client(on)

    # httptools callbacks. No on_message_begin: a head's fields are reset once it is handed on, which
    # spares every response one callback from llhttp into Python.
    def on_status(self, reason: bytes) -> None:
        so_far = self.reason
        self.reason = so_far + reason if so_far else reason

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self.headers
        headers.append(name)
        headers.append(value)

    def on_headers_complete(self) -> None:
        self.status = self._status_code()
        headers, reason = self.headers, self.reason
        self.headers = []
        self.reason = b""
        if self.listener is not None:
            self.listener.response_head(self.status, reason, headers)

    def on_body(self, body: bytes) -> None:
        if self.listener is not None:
            self.listener.response_body(body)

    def on_message_complete(self) -> None:
        if self.headers:
            # A chunked body's trailer fields came through on_header: they end this response and
            # are not forwarded (the body is re-chunked); kept, they would open the next one.
            self.headers = []
        if self.listener is not None and self.status >= 200:
            self.listener.response_complete(self._keep_alive())

    # helpers
    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self._send(data)

    def set_reading(self, on: bool) -> None:
        if self.transport is not None and not self.closed:
            if on:
                self.transport.resume_reading()
            else:
                self.transport.pause_reading()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
        self.listener = None

    def abort(self) -> None:
        self.listener = None
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def set_paused(self, reason: int, on: bool) -> None:
        """As a tunnel peer: the client's socket buffer is full, stop reading the backend."""
        self.set_reading(not on)


class UpstreamPool:
    """Idle keep-alive connections per backend address (LIFO: the warmest connection first)."""

    def __init__(self, *, connect_timeout: float, clock: Clock, max_idle: int = 128) -> None:
        self.connect_timeout = connect_timeout
        self.clock = clock
        self.max_idle = max_idle
        # One list per address, never removed (close_all empties them in place): a connection
        # keeps its own (``stack``) and goes back to it without a lookup.
        self.idle: dict[Address, list[UpstreamConnection]] = {}
        # The last backend taken for, and its address's list: requests run in streaks to one
        # backend, whose __hash__ (a dataclass's) and (host, port) key cost more than the take.
        self._taken_for: Backend | None = None
        self._taken_from: list[UpstreamConnection] = []

    def stack(self, address: Address) -> list[UpstreamConnection]:
        return self.idle.setdefault(address, [])

    def take(self, backend: Backend) -> UpstreamConnection | None:
        if backend is self._taken_for:
            stack = self._taken_from
        else:
            stack = self.stack((backend.host, backend.port))
            self._taken_for = backend
            self._taken_from = stack
        while stack:
            conn = stack.pop()
            if not conn.closed and conn.transport is not None and not conn._is_closing():
                conn.reused = True
                return conn
        return None

    def put(self, conn: UpstreamConnection) -> None:
        conn.listener = None
        if conn.closed:
            return
        stack = conn.stack
        if len(stack) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = self.clock.now
        stack.append(conn)

    def discard(self, conn: UpstreamConnection) -> None:
        stack = conn.stack
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
            stack.clear()
