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
import contextlib
import errno
import logging
import socket
from collections.abc import Callable, Sequence
from types import TracebackType

from ingressfed.dnsserver.answer import DEFAULT_MAX_UDP, answer
from ingressfed.dnsserver.index import ZoneIndex, build_index
from ingressfed.dnsserver.transfer import Journal, TransferPolicy, flat_view, notify, respond
from ingressfed.dnsserver.udp import UdpReader, udp_reader
from ingressfed.dnsserver.zone import ZoneData, next_serial
from ingressfed.model import Change

__all__ = ["DnsServer"]

log = logging.getLogger(__name__)

_BIND_ATTEMPTS = 8
# More changes than this in one go are rendered as a new index in a worker thread.
_INCREMENTAL_MAX = 2000


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
        transfer: TransferPolicy | None = None,
        udp_batching: bool = True,
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
        # recvmmsg/sendmmsg where the C library has them (False: one system call per datagram).
        self.udp_batching = udp_batching
        self.failures = _Failures()
        self.queries = 0  # answered over UDP and TCP, for the exit log line of each worker process
        # Called with every update_soon's arguments before it is applied (dnsServer.workers: the
        # primary passes each change on to the worker processes).
        self.update_listeners: list[Callable[[ZoneData, Sequence[Change] | None, int | None], None]] = []
        self._udp: UdpReader | None = None
        self._tcp: asyncio.Server | None = None
        self.tcp_connections: set[_TcpProtocol] = set()  # open ones, for the limit and for close()
        self._pending: ZoneData | None = None
        # Changes that came while a zone was being rendered, to follow in place after it.
        self._queued: list[tuple[ZoneData, Sequence[Change], int | None]] = []
        self._builder: asyncio.Task[None] | None = None
        # Zone transfers out (None: AXFR/IXFR are REFUSED like any other refused query).
        self.transfer = transfer
        self.journal = Journal(transfer.journal) if transfer is not None else None
        if self.journal is not None:
            self.journal.record(index)
        self._notifying: set[asyncio.Task[object]] = set()

    def swap(self, index: ZoneIndex, *, journaled: bool = False) -> None:
        """Serve ``index`` from the next query on (``journaled``: the journal already has it)."""
        old = self.index
        self.index = index
        log.info("zone %s: serial %d -> %d", index.data.zone, old.serial, index.serial)
        changed = index.serial != old.serial
        if self.journal is not None and not journaled:
            changed = self.journal.record(index) and changed
        if changed:
            self._notify(index)

    def _notify(self, index: ZoneIndex) -> None:
        if self.transfer is None or not self.transfer.notify or self.journal is None:
            return
        current = self.journal.current
        if current is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a synchronous caller): secondaries find the change on refresh
        task = loop.create_task(notify(self.transfer, index.origin, current.soa))
        self._notifying.add(task)
        task.add_done_callback(self._notifying.discard)

    def transfer_response(self, data: bytes, peer: str, *, tcp: bool) -> list[bytes] | None:
        """The reply to a zone transfer request or a signed query; None when it is neither."""
        if self.transfer is None or self.journal is None:
            return None
        try:
            return respond(self.journal, self.transfer, data, peer, origin=self.index.origin, tcp=tcp)
        except Exception:
            self.failures.record("transfer")
            return None

    def update(self, data: ZoneData) -> None:
        """Serve ``data`` from now on, with the current index's settings (answer mode, geo).

        Renders on the caller's thread (roughly 0.3 ms per record set); for
        large zones prefer :meth:`update_soon`.
        """
        self.swap(self._rebuild(data))

    def update_soon(
        self, data: ZoneData, changes: Sequence[Change] | None = None, *, base_serial: int | None = None
    ) -> None:
        """Like :meth:`update`, but renders in a worker thread while queries go on being
        answered from the old index; bursts of changes coalesce into one rebuild of the
        newest zone. Call from the event loop (e.g. as a provider subscriber).

        With ``changes`` (what turned the zone being served into ``data``, whose serial
        is then the next one) and no rebuild under way, the current index follows them
        in place at once, re-rendering only the names they touch. ``base_serial`` names
        the serial the changes start from when the new serial is not simply the next."""
        for listener in self.update_listeners:
            listener(data, changes, base_serial)
        if changes is not None:
            if self._building():
                # Followed in place once the zone being rendered is served, rather than
                # rendering again: at 100k+ sets a render outlasts the gap between changes.
                queued = sum(len(c) for _, c, _ in self._queued) + len(changes)
                if queued <= _INCREMENTAL_MAX:
                    self._queued.append((data, changes, base_serial))
                    return
            elif self._applies(data, changes, base_serial):
                try:
                    self._apply(data, changes)
                    return
                except Exception:  # a half-applied index is replaced by a full render of ``data``
                    log.exception(
                        "zone %s: could not follow serial %d in place; rendering it whole",
                        data.zone,
                        data.serial,
                    )
        self._queued.clear()  # ``data`` holds them
        self._pending = data
        if self._builder is None or self._builder.done():
            self._builder = asyncio.get_running_loop().create_task(self._build_pending())

    def _building(self) -> bool:
        return self._pending is not None or (self._builder is not None and not self._builder.done())

    def _applies(self, data: ZoneData, changes: Sequence[Change], base_serial: int | None) -> bool:
        cur = self.index.data
        follows = (
            cur.serial == base_serial if base_serial is not None else data.serial == next_serial(cur.serial)
        )
        return len(changes) <= _INCREMENTAL_MAX and follows and data.zone == cur.zone and data.soa == cur.soa

    def _apply(self, data: ZoneData, changes: Sequence[Change]) -> None:
        index = self.index
        old_serial = index.serial
        names = {rs.name for c in changes for rs in (c.old, c.new) if rs is not None}
        before = flat_view(index, names) if self.journal is not None else frozenset()
        dirty = index.apply(changes, data)
        if self.journal is not None:
            self.journal.record_delta(index, before, flat_view(index, names))
        log.info(
            "zone %s: serial %d -> %d in place (%d changes, %d names re-rendered)",
            data.zone,
            old_serial,
            index.serial,
            len(changes),
            len(dirty),
        )
        self._notify(index)

    async def settled(self) -> None:
        """Wait until every zone passed to :meth:`update_soon` is being served."""
        while self._builder is not None and not self._builder.done():
            await asyncio.shield(self._builder)

    async def _build_pending(self) -> None:
        while self._pending is not None:
            data, self._pending = self._pending, None
            try:
                index = await asyncio.to_thread(self._rebuild_journaled, data)
            except Exception:  # keep serving the last good zone
                log.exception("could not render zone %s serial %d", data.zone, data.serial)
                if self._pending is None and self._queued:
                    self._pending = self._queued[-1][0]  # the newest zone, whole
                    self._queued.clear()
                continue
            self.swap(index, journaled=self.journal is not None)
            if self._pending is None:
                self._follow_queued()

    def _follow_queued(self) -> None:
        """Follow in place the changes that came while the zone just swapped in was rendered;
        render the newest zone whole when they do not continue it."""
        queued, self._queued = self._queued, []
        for data, changes, base_serial in queued:
            if not self._applies(data, changes, base_serial):
                self._pending = queued[-1][0]
                return
            try:
                self._apply(data, changes)
            except Exception:
                log.exception(
                    "zone %s: could not follow serial %d in place; rendering it whole", data.zone, data.serial
                )
                self._pending = queued[-1][0]
                return

    def _rebuild_journaled(self, data: ZoneData) -> ZoneIndex:
        index = self._rebuild(data)
        if self.journal is not None:
            # Off the event loop too: the transfer view is a walk over the whole zone.
            self.journal.record(index)
        return index

    def _rebuild(self, data: ZoneData) -> ZoneIndex:
        cur = self.index
        return build_index(
            data, answers=cur.mode, locator=cur.locator, default_order=cur.default_order, draw=cur.draw
        )

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
            udp = udp_reader(
                self, _udp_socket(self.host, wanted, reuse_port=self.reuse_port), batching=self.udp_batching
            )
            port = udp.port
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
            udp.start(loop)
            self._udp = udp
            self._tcp = tcp
            self.port = port
            log.info("DNS server for %s on %s port %d (udp, tcp)", self.index.data.zone, self.host, port)
            return

    async def close(self) -> None:
        for task in list(self._notifying):
            task.cancel()
        if self._notifying:
            await asyncio.wait(list(self._notifying))
        if self._builder is not None:
            self._builder.cancel()
            await asyncio.wait([self._builder])
            self._builder = None
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            for conn in list(self.tcp_connections):
                conn.close()
            await self._tcp.wait_closed()
            self._tcp = None


def _udp_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, addr = info[0]
    sock = socket.socket(family, kind, proto)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            # Same as asyncio does for the TCP listener: "::" means IPv6 only on both.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        # Bursts from many resolvers must queue in the kernel rather than be dropped.
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, opt, 4 * 1024 * 1024)
        sock.bind(addr)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


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
        if len(srv.tcp_connections) >= srv.max_tcp_connections:
            log.warning("too many TCP connections (%d); refusing one", len(srv.tcp_connections))
            transport.close()
            return
        srv.tcp_connections.add(self)
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
            srv.queries += 1
            replies = [resp] if resp is not None else []
            if resp is not None and len(resp) > 3 and resp[3] & 0x0F == 5 and srv.transfer is not None:
                replies = srv.transfer_response(query, self._peer, tcp=True) or replies
            if replies and self._transport is not None and not self._transport.is_closing():
                self._transport.write(b"".join(len(r).to_bytes(2, "big") + r for r in replies))
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
        self._server.tcp_connections.discard(self)
        self._transport = None
