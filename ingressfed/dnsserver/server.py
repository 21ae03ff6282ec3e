"""Sockets only: UDP and TCP listeners that move bytes to and from :func:`answer`.

Every decision lives in :mod:`ingressfed.dnsserver.answer`; this module reads
datagrams and length-prefixed TCP messages, calls it with the *current* index
and writes what it returns. The index is swapped as one attribute, so each
query is answered entirely from the old zone or entirely from the new one.

TCP connections carry any number of queries; a connection that completes no
query for ``tcp_idle_timeout`` seconds is closed (that also ends slow
"one byte at a time" senders), and at most ``max_tcp_connections`` are open.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from types import TracebackType

from ingressfed.dnsserver.answer import DEFAULT_MAX_UDP, answer
from ingressfed.dnsserver.index import ZoneIndex

__all__ = ["DnsServer"]

log = logging.getLogger(__name__)

_BIND_ATTEMPTS = 8


class _Failures:
    """Logs unexpected exceptions without letting a packet flood flood the log too."""

    def __init__(self) -> None:
        self.count = 0

    def record(self, where: str) -> None:
        self.count += 1
        if self.count <= 10 or self.count % 1000 == 0:
            log.exception("unexpected error answering a %s query (%d so far)", where, self.count)


class DnsServer:
    """An authoritative server for one zone on ``host:port`` (UDP and TCP).

    Use as ``async with DnsServer(index, host=..., port=...) as srv`` and call
    :meth:`swap` with a new index whenever the zone changes. ``port=0`` picks a
    free port that is the same for UDP and TCP (see :attr:`port`).
    ``reuse_port`` lets several processes share the address (SO_REUSEPORT).
    """

    def __init__(
        self,
        index: ZoneIndex,
        *,
        host: str = "127.0.0.1",
        port: int = 5353,
        max_udp: int = DEFAULT_MAX_UDP,
        tcp_idle_timeout: float = 10.0,
        max_tcp_connections: int = 256,
        reuse_port: bool = False,
    ) -> None:
        if not 512 <= max_udp <= 65535:
            raise ValueError(f"max_udp: got {max_udp}, expected 512..65535")
        self.index = index
        self.host = host
        self.port = port
        self.max_udp = max_udp
        self.tcp_idle_timeout = tcp_idle_timeout
        self.max_tcp_connections = max_tcp_connections
        self.reuse_port = reuse_port
        self.failures = _Failures()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: set[_TcpProtocol] = set()

    def swap(self, index: ZoneIndex) -> None:
        """Serve ``index`` from the next query on."""
        old = self.index
        self.index = index
        log.info("zone %s: serial %d -> %d", index.data.zone, old.serial, index.serial)

    async def __aenter__(self) -> DnsServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        wanted = self.port
        for attempt in range(_BIND_ATTEMPTS):
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self),
                local_addr=(self.host, wanted),
                reuse_port=self.reuse_port or None,
            )
            port = udp.get_extra_info("sockname")[1]
            try:
                tcp = await loop.create_server(
                    lambda: _TcpProtocol(self),
                    host=self.host,
                    port=port,
                    reuse_address=True,
                    reuse_port=self.reuse_port or None,
                    backlog=512,
                )
            except OSError as exc:
                udp.close()
                # With port 0 the kernel's free UDP port may be taken for TCP: try another.
                if wanted != 0 or exc.errno != errno.EADDRINUSE or attempt == _BIND_ATTEMPTS - 1:
                    raise
                continue
            self._udp = udp
            self._tcp = tcp
            self.port = port
            _enlarge_buffers(udp.get_extra_info("socket"))
            log.info("DNS server for %s on %s port %d (udp, tcp)", self.index.data.zone, self.host, port)
            return

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            for conn in list(self._connections):
                conn.close()
            await self._tcp.wait_closed()
            self._tcp = None


def _enlarge_buffers(sock: socket.socket | None) -> None:
    # Bursts from many resolvers must queue in the kernel rather than be dropped.
    if sock is None:
        return
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, 4 * 1024 * 1024)
        except OSError:
            log.debug("could not enlarge socket buffer %s", opt)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self._server = server
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        srv = self._server
        try:
            resp = answer(srv.index, data, str(addr[0]), max_udp=srv.max_udp)
        except Exception:
            srv.failures.record("UDP")
            return
        if resp is not None and self._transport is not None:
            self._transport.sendto(resp, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors for earlier replies (client gone): nothing to do.
        log.debug("UDP error: %s", exc)


class _TcpProtocol(asyncio.Protocol):
    def __init__(self, server: DnsServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._peer = ""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        srv = self._server
        if len(srv._connections) >= srv.max_tcp_connections:
            log.warning("too many TCP connections (%d); refusing one", len(srv._connections))
            transport.close()
            return
        srv._connections.add(self)
        peer = transport.get_extra_info("peername")
        self._peer = str(peer[0]) if peer else ""
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self._server.tcp_idle_timeout, self.close)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        srv = self._server
        answered = False
        while len(buf) >= 2:
            size = (buf[0] << 8) | buf[1]
            if len(buf) < 2 + size:
                break
            query = bytes(buf[2 : 2 + size])
            del buf[: 2 + size]
            try:
                resp = answer(srv.index, query, self._peer, tcp=True)
            except Exception:
                srv.failures.record("TCP")
                resp = None
            answered = True
            if resp is not None and self._transport is not None and not self._transport.is_closing():
                self._transport.write(len(resp).to_bytes(2, "big") + resp)
        if answered:
            # Only complete queries count as activity: a trickle of partial bytes times out.
            self._arm()

    def pause_writing(self) -> None:
        # The client is not reading its answers: stop reading its queries.
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._server._connections.discard(self)
        self._transport = None
