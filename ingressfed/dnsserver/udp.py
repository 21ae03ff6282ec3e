"""UDP listeners: datagrams in, :func:`~ingressfed.dnsserver.answer.answer` out.

Two readers with the same behaviour; :func:`udp_reader` picks one.

- :class:`MmsgReader` (Linux): ``recvmmsg``/``sendmmsg`` through ``ctypes``
  move up to ``_BATCH`` datagrams per system call. The answer to a repeated
  question (the memo, keyed by the query without its ID) is written into the
  very buffer the query arrived in, after the ID that is already there, and
  the reply goes back to the address the kernel stored beside it: no Python
  objects for the client's address, no per-datagram system call. The
  address is only turned into a string when the answer depends on it (geo
  answers, zone transfers) or the memo has no answer yet.
- :class:`RecvfromReader` (anywhere): ``recvfrom``/``sendto`` per datagram.

Both drain up to ``_BURST`` datagrams per wake-up and treat a full send
buffer as a lost datagram (the client retries).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import socket
import sys
from typing import TYPE_CHECKING, Protocol

from ingressfed.dnsserver.answer import answer
from ingressfed.dnsserver.index import ZoneIndex

if TYPE_CHECKING:
    from ingressfed.dnsserver.server import DnsServer

__all__ = ["MmsgReader", "RecvfromReader", "UdpReader", "batching_available", "udp_reader"]

log = logging.getLogger(__name__)

_BURST = 256
_BATCH = 64
# Queries longer than this are cut by the kernel and then fail to parse (FORMERR).
_MAX_QUERY = 4096
_MEMO_SIZE = 65536
_RCODE_REFUSED = 5
_AGAIN = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR})


class UdpReader(Protocol):
    port: int
    send_drops: int

    def start(self, loop: object) -> None: ...

    def close(self) -> None: ...


class _Memo:
    """Answers by query bytes (ID aside) for the index they came from."""

    def __init__(self) -> None:
        self.table: dict[bytes, bytes] = {}
        self._index: ZoneIndex | None = None
        self._version = -1

    def for_index(self, index: ZoneIndex) -> dict[bytes, bytes]:
        if index is not self._index or index.version != self._version or len(self.table) > _MEMO_SIZE:
            self.table = {}
            self._index = index
            self._version = index.version
        return self.table


def _reply(srv: DnsServer, index: ZoneIndex, data: bytes, ip: str, memo: dict[bytes, bytes]) -> bytes | None:
    """The reply to one datagram the memo did not answer (None: send nothing)."""
    try:
        resp = answer(index, data, ip, max_udp=srv.max_udp, memo=memo)
    except Exception:
        srv.failures.record("UDP")
        return None
    if resp is not None and len(resp) > 3 and resp[3] & 0x0F == _RCODE_REFUSED and srv.transfer is not None:
        # Transfer requests and signed queries are refused by ``answer``: the server's to judge.
        replies = srv.transfer_response(data, ip, tcp=False)
        if replies:
            return replies[0]
    return resp


class RecvfromReader:
    """One ``recvfrom`` and one ``sendto`` per datagram, straight on the socket
    when the loop says it is readable (no transport or protocol callbacks)."""

    def __init__(self, server: DnsServer, sock: socket.socket) -> None:
        self._server = server
        self._sock = sock
        self.port = int(sock.getsockname()[1])
        self._loop: object | None = None
        self.send_drops = 0
        self._memo = _Memo()

    def start(self, loop: object) -> None:
        self._loop = loop
        loop.add_reader(self._sock.fileno(), self._ready)  # type: ignore[attr-defined]

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())  # type: ignore[attr-defined]
            self._loop = None
        self._sock.close()

    def _ready(self) -> None:
        sock = self._sock
        srv = self._server
        recvfrom = sock.recvfrom
        sendto = sock.sendto
        index = srv.index
        memo = self._memo.for_index(index)
        cached = memo.get
        for n in range(_BURST):
            try:
                data, addr = recvfrom(_MAX_QUERY)
            except (BlockingIOError, InterruptedError):
                srv.queries += n
                return
            except OSError as exc:
                # e.g. ECONNREFUSED left by an ICMP error for an earlier reply: the client is gone.
                log.debug("UDP receive error: %s", exc)
                continue
            tail = cached(data[2:])
            resp = data[:2] + tail if tail is not None else _reply(srv, index, data, addr[0], memo)
            if resp is not None:
                try:
                    sendto(resp, addr)
                except (BlockingIOError, InterruptedError):
                    self.send_drops += 1
                except OSError as exc:
                    log.debug("UDP send error to %s: %s", addr, exc)
        srv.queries += _BURST


class _MsgHdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _MsgHdr), ("msg_len", ctypes.c_uint)]


class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


_HDR = ctypes.sizeof(_MMsgHdr)
_IOV = ctypes.sizeof(_IoVec)
_NAME = 32  # room for a sockaddr_in6 (28 bytes), 8-aligned
_LEN_AT = _MMsgHdr.msg_len.offset
_IOV_LEN_AT = _IoVec.iov_len.offset


def _libc_calls() -> tuple[object, object] | None:
    """``recvmmsg`` and ``sendmmsg`` from the C library, or None where there are none."""
    if not sys.platform.startswith("linux") or ctypes.sizeof(ctypes.c_size_t) != 8:
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        recv = libc.recvmmsg
        send = libc.sendmmsg
    except (OSError, AttributeError):
        return None
    recv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
    recv.restype = ctypes.c_int
    send.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    send.restype = ctypes.c_int
    return recv, send


_CALLS = _libc_calls()


def batching_available() -> bool:
    return _CALLS is not None


class MmsgReader:
    """Up to ``_BATCH`` datagrams per ``recvmmsg`` and their replies per ``sendmmsg``.

    All buffers live in one pinned ``bytearray`` (the arena): ``_BATCH``
    slots that receive a query and then hold its reply, the receive and send
    message headers and I/O vectors, and the client addresses. The kernel
    writes each client's address beside its query; the send header of the
    same slot points at it, so replies need no address handling at all."""

    def __init__(self, server: DnsServer, sock: socket.socket) -> None:
        assert _CALLS is not None
        self._recvmmsg, self._sendmmsg = _CALLS
        self._server = server
        self._sock = sock
        self._fd = sock.fileno()
        self._family = sock.family
        self.port = int(sock.getsockname()[1])
        self._loop: object | None = None
        self.send_drops = 0
        self._memo = _Memo()
        self._slot = max(_MAX_QUERY, server.max_udp)
        n = _BATCH
        self._bufs = 0
        self._rhdr = n * self._slot
        self._shdr = self._rhdr + n * _HDR
        self._riov = self._shdr + n * _HDR
        self._siov = self._riov + n * _IOV
        self._names = self._siov + n * _IOV
        size = self._names + n * _NAME
        self._arena = bytearray(size)
        self._base = ctypes.addressof(ctypes.c_char.from_buffer(self._arena))
        self._mv = memoryview(self._arena)
        self._u32 = self._mv.cast("I")
        self._u64 = self._mv.cast("Q")
        namelen = 28 if self._family == socket.AF_INET6 else 16
        base = self._base
        for i in range(n):
            buf = base + self._bufs + i * self._slot
            name = base + self._names + i * _NAME
            for hdr, iov, length in ((self._rhdr, self._riov, _MAX_QUERY), (self._shdr, self._siov, 0)):
                h = _MMsgHdr.from_buffer(self._arena, hdr + i * _HDR)
                h.msg_hdr.msg_name = name
                h.msg_hdr.msg_namelen = namelen
                h.msg_hdr.msg_iov = base + iov + i * _IOV
                h.msg_hdr.msg_iovlen = 1
                v = _IoVec.from_buffer(self._arena, iov + i * _IOV)
                v.iov_base = buf
                v.iov_len = length
                del h, v  # no exported views may outlive set-up (the arena stays resizable-free anyway)
        # Word positions of each slot's received length and reply length.
        self._len_words = [(self._rhdr + i * _HDR + _LEN_AT) // 4 for i in range(n)]
        self._send_len_words = [(self._siov + i * _IOV + _IOV_LEN_AT) // 8 for i in range(n)]

    def start(self, loop: object) -> None:
        self._loop = loop
        loop.add_reader(self._fd, self._ready)  # type: ignore[attr-defined]

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._fd)  # type: ignore[attr-defined]
            self._loop = None
        self._sock.close()

    def _peer(self, i: int) -> str:
        at = self._names + i * _NAME
        raw = bytes(self._mv[at : at + _NAME])
        if self._family == socket.AF_INET6:
            return socket.inet_ntop(socket.AF_INET6, raw[8:24])
        return socket.inet_ntop(socket.AF_INET, raw[4:8])

    def _ready(self) -> None:
        srv = self._server
        index = srv.index
        memo = self._memo.for_index(index)
        cached = memo.get
        mv = self._mv
        u32 = self._u32
        u64 = self._u64
        recvmmsg = self._recvmmsg
        fd = self._fd
        rhdr = self._base + self._rhdr
        len_words = self._len_words
        send_len_words = self._send_len_words
        slot = self._slot
        total = 0
        for _ in range(_BURST // _BATCH):
            k: int = recvmmsg(fd, rhdr, _BATCH, socket.MSG_DONTWAIT, None)  # type: ignore[operator]
            if k < 0:
                err = ctypes.get_errno()
                if err in _AGAIN:
                    break
                # e.g. ECONNREFUSED left by an ICMP error for an earlier reply: the client is gone.
                log.debug("UDP receive error: %s", errno.errorcode.get(err, err))
                continue
            total += k
            first = 0  # the first slot of the run of replies not yet sent
            for i in range(k):
                n = u32[len_words[i]]
                at = i * slot
                tail = cached(bytes(mv[at + 2 : at + n]))
                if tail is not None:
                    end = at + 2 + len(tail)
                    mv[at + 2 : end] = tail
                    u64[send_len_words[i]] = end - at
                    continue
                resp = _reply(srv, index, bytes(mv[at : at + n]), self._peer(i), memo)
                if resp is not None and len(resp) <= slot:
                    mv[at : at + len(resp)] = resp
                    u64[send_len_words[i]] = len(resp)
                    continue
                # No reply from this slot (or one too long for it): send the run before it.
                self._send(first, i)
                first = i + 1
                if resp is not None:
                    self._send_one(resp, i)
            self._send(first, k)
            if k < _BATCH:
                break
        srv.queries += total

    def _send(self, first: int, end: int) -> None:
        """Send the replies in slots ``first`` to ``end - 1``."""
        sendmmsg = self._sendmmsg
        while first < end:
            sent: int = sendmmsg(  # type: ignore[operator]
                self._fd, self._base + self._shdr + first * _HDR, end - first, socket.MSG_DONTWAIT
            )
            if sent > 0:
                first += sent
                continue
            err = ctypes.get_errno()
            if err in _AGAIN:
                self.send_drops += end - first  # send buffer full: like lost datagrams, clients retry
                return
            log.debug("UDP send error to %s: %s", self._peer(first), errno.errorcode.get(err, err))
            first += 1

    def _send_one(self, resp: bytes, i: int) -> None:
        at = self._names + i * _NAME
        raw = bytes(self._mv[at : at + _NAME])
        port = int.from_bytes(raw[2:4], "big")
        addr: tuple[str, int] | tuple[str, int, int, int] = (self._peer(i), port)
        if self._family == socket.AF_INET6:
            addr = (
                self._peer(i),
                port,
                int.from_bytes(raw[4:8], "big"),
                int.from_bytes(raw[24:28], sys.byteorder),
            )
        try:
            self._sock.sendto(resp, addr)
        except (BlockingIOError, InterruptedError):
            self.send_drops += 1
        except OSError as exc:
            log.debug("UDP send error to %s: %s", addr, exc)


def udp_reader(server: DnsServer, sock: socket.socket, *, batching: bool = True) -> UdpReader:
    """The batched reader where the C library has ``recvmmsg``, else the portable one."""
    if batching and _CALLS is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        return MmsgReader(server, sock)
    return RecvfromReader(server, sock)
