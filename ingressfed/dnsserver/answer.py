"""Query bytes in, response bytes out: every decision the server makes, no I/O.

``answer(index, query, client_ip)`` returns the response to send, or None
to drop the packet (too short to carry an ID, or itself a response).

The hot path parses only what a plain query carries (header, one question,
optionally one OPT record) by hand and splices the client's ID and question
into a response rendered in advance by :class:`~ingressfed.dnsserver.index.ZoneIndex`.
Anything unusual (several questions, records in the answer or authority
sections, compressed question names, EDNS version > 0, malformed options)
goes through dnspython, which decides between FORMERR, NOTIMP, BADVERS and
a normal answer; both paths end in the same ``_respond``.
"""

from __future__ import annotations

import logging
from typing import Literal

import dns.edns
import dns.exception
import dns.message
import dns.opcode
import dns.rdataclass
import dns.rdatatype

from ingressfed.dnsserver.index import RCODE_FORMERR, RCODE_NOTIMP, RCODE_REFUSED, Entry, Prepared, ZoneIndex

__all__ = ["DEFAULT_MAX_UDP", "EDNS_PAYLOAD", "answer"]

log = logging.getLogger(__name__)

# What we advertise and the largest UDP answer we send (DNS flag day 2020:
# avoids IP fragmentation); larger answers are truncated and retried over TCP.
EDNS_PAYLOAD = 1232
DEFAULT_MAX_UDP = 1232
_PLAIN_UDP = 512
_ECS = 8
_BADVERS = 16
_QD1_AN0_NS0 = b"\x00\x01\x00\x00\x00\x00"
_AR0 = b"\x00\x00"
_AR1 = b"\x00\x01"
_CLASS_IN = b"\x00\x01"
_OPT_HEAD = b"\x00\x00\x29" + EDNS_PAYLOAD.to_bytes(2, "big")
_OPT_PLAIN = (_OPT_HEAD + b"\x00\x00\x00\x00\x00\x00", _OPT_HEAD + b"\x00\x00\x80\x00\x00\x00")

# An ECS option as the query sent it: (family, source prefix, address bytes).
Ecs = tuple[int, int, bytes]


def answer(
    index: ZoneIndex,
    data: bytes,
    client_ip: str,
    *,
    tcp: bool = False,
    max_udp: int = DEFAULT_MAX_UDP,
    memo: dict[bytes, bytes] | None = None,
) -> bytes | None:
    """The response to ``data`` from ``client_ip`` (None: send nothing).

    ``memo``, when given, maps a query without its ID to the response without
    its ID for answers that do not depend on the client; the caller owns it
    and must use one per index and transport (and bound its size).
    """
    n = len(data)
    if n < 12:
        return None  # no room for an ID: nothing to answer
    if memo is not None:
        tail = memo.get(data[2:])
        if tail is not None:
            return data[:2] + tail
    b2 = data[2]
    if b2 & 0x80:
        return None  # a response; answering it could start a loop
    if b2 & 0x78:
        return _slow(index, data, client_ip, tcp, max_udp, memo)  # another opcode: NOTIMP
    if data[4:10] != _QD1_AN0_NS0:
        return _slow(index, data, client_ip, tcp, max_udp, memo)
    i = 12
    while True:
        if i >= n:
            return _slow(index, data, client_ip, tcp, max_udp, memo)
        ln = data[i]
        if ln == 0:
            break
        if ln > 63:
            return _slow(index, data, client_ip, tcp, max_udp, memo)
        i += ln + 1
    end = i + 1
    qend = end + 4
    if qend > n or end - 12 > 255 or data[end + 2 : qend] != _CLASS_IN:
        return _slow(index, data, client_ip, tcp, max_udp, memo)
    ar = data[10:12]
    if ar == _AR0:
        if qend != n:
            return _slow(index, data, client_ip, tcp, max_udp, memo)
        payload = -1
        do = 0
        ecs = None
    elif ar == _AR1:
        # OPT: root owner (one zero byte), type 41, class = payload, ttl = ext-rcode/version/flags.
        o = qend
        if n < o + 11 or data[o] != 0 or data[o + 1] != 0 or data[o + 2] != 41 or data[o + 6] != 0:
            return _slow(index, data, client_ip, tcp, max_udp, memo)
        rdlen = (data[o + 9] << 8) | data[o + 10]
        if o + 11 + rdlen != n:
            return _slow(index, data, client_ip, tcp, max_udp, memo)
        payload = (data[o + 3] << 8) | data[o + 4]
        do = data[o + 7] & 0x80
        ecs = None
        if rdlen:
            parsed = _options(data, o + 11, n)
            if parsed is False:
                return _slow(index, data, client_ip, tcp, max_udp, memo)
            ecs = parsed
    else:
        return _slow(index, data, client_ip, tcp, max_udp, memo)
    return _respond(
        index, data, data[12:qend], data[12:end].lower(), data[end:end + 2], payload, do, ecs,
        client_ip, tcp, max_udp, memo,
    )  # fmt: skip


def _options(data: bytes, i: int, n: int) -> Ecs | Literal[False] | None:
    """The ECS option among the EDNS options (None: none; False: let dnspython judge)."""
    ecs: Ecs | None = None
    while i < n:
        if i + 4 > n:
            return False
        code = (data[i] << 8) | data[i + 1]
        length = (data[i + 2] << 8) | data[i + 3]
        i += 4
        if i + length > n:
            return False
        if code == _ECS:
            if ecs is not None:
                return False
            parsed = _ecs(data[i : i + length])
            if parsed is None:
                return False
            ecs = parsed
        i += length
    return ecs


def _ecs(opt: bytes) -> Ecs | None:
    """Validate an ECS option (RFC 7871 section 6); None when malformed."""
    if len(opt) < 4:
        return None
    family = (opt[0] << 8) | opt[1]
    source, scope = opt[2], opt[3]
    addr = opt[4:]
    width = 32 if family == 1 else 128 if family == 2 else 0
    if not width or source > width or scope != 0 or len(addr) != (source + 7) // 8:
        return None
    if source % 8 and addr and addr[-1] & (0xFF >> (source % 8)):
        return None  # bits set beyond the source prefix
    return (family, source, addr)


# Positional parameters: this runs for every query and keyword passing costs measurably.
def _respond(  # noqa: PLR0917
    index: ZoneIndex,
    data: bytes,
    question: bytes,
    qname_lower: bytes,
    qtype: bytes,
    payload: int,
    do: int,
    ecs: Ecs | None,
    client_ip: str,
    tcp: bool,
    max_udp: int,
    memo: dict[bytes, bytes] | None,
) -> bytes:
    entry: Entry | None = index.table.get(qname_lower + qtype)
    if entry is None:
        entry = index.miss(qname_lower, (qtype[0] << 8) | qtype[1])
    scope = 0
    per_client = entry.geo
    if per_client:
        entry, scope = _locate(index, entry, ecs, client_ip)
    assert isinstance(entry, Prepared)
    k = (data[2] & 1) | ((data[3] & 0x10) >> 3)
    if payload < 0:
        tail = entry.headers[k] + question + entry.body
        if not tcp and len(tail) + 2 > _PLAIN_UDP:
            tail = entry.tc_headers[k] + question
    else:
        opt = _OPT_PLAIN[1 if do else 0] if ecs is None else _ecs_opt(do, ecs, scope)
        k |= 4
        limit = 65535 if tcp else min(max(payload, _PLAIN_UDP), max_udp)
        if 12 + len(question) + len(entry.body) + len(opt) > limit:
            tail = entry.tc_headers[k] + question + opt
        else:
            tail = entry.headers[k] + question + entry.body + opt
    if memo is not None and not per_client:
        memo[data[2:]] = tail
    return data[:2] + tail


def _locate(index: ZoneIndex, entry: Entry, ecs: Ecs | None, client_ip: str) -> tuple[Prepared, int]:
    """The client's variant of a geo answer, and the ECS scope it is valid for."""
    assert not isinstance(entry, Prepared)
    locator = index.locator
    if locator is None:
        return entry.for_location(None), 0
    trusts = locator.trusts_ecs_from
    if ecs is not None and ecs[1] > 0 and (trusts is None or trusts(client_ip)):
        return entry.for_location(locator.for_subnet(ecs[0], ecs[2])), ecs[1]
    # Decided by the resolver's own address: to an ECS-speaking resolver the
    # answer is not specific to the subnet it asked about.
    return entry.for_location(locator.for_ip(client_ip)), 0


def _ecs_opt(do: int, ecs: Ecs, scope: int) -> bytes:
    family, source, addr = ecs
    option = family.to_bytes(2, "big") + bytes((source, scope)) + addr
    rdata = _ECS.to_bytes(2, "big") + len(option).to_bytes(2, "big") + option
    flags = b"\x80\x00" if do else b"\x00\x00"
    return _OPT_HEAD + b"\x00\x00" + flags + len(rdata).to_bytes(2, "big") + rdata


def _error(data: bytes, rcode: int, *, question: bytes = b"", edns: int = -1) -> bytes:
    """An error reply: ID and opcode echoed, RD copied, the question when given,
    and OPT when the query had one (``edns``: its DO flag, or -1 for no OPT)."""
    head = bytes((0x80 | (data[2] & 0x79), rcode & 0x0F, 0, 1 if question else 0, 0, 0, 0, 0))
    if edns < 0:
        return data[:2] + head + b"\x00\x00" + question
    return data[:2] + head + b"\x00\x01" + question + _OPT_PLAIN[1 if edns else 0]


def _edns_of(data: bytes) -> int:
    """The DO flag of the OPT record in a packet dnspython could not parse (-1: no OPT found).

    Walks the sections by the header counts; names end at a zero label or a
    pointer. Anything out of bounds reads as "no OPT"."""
    n = len(data)
    qd, an, ns, ar = (int.from_bytes(data[i : i + 2], "big") for i in (4, 6, 8, 10))

    def skip_name(i: int) -> int:
        while i < n:
            ln = data[i]
            if ln & 0xC0 == 0xC0:
                return i + 2
            if ln == 0:
                return i + 1
            i += ln + 1
        return n + 1

    i = 12
    for _ in range(qd):
        # Stop at the end: the counts are the sender's (up to 65535 each), and walking them past
        # the data cost milliseconds per hostile packet.
        if i >= n:
            return -1
        i = skip_name(i) + 4
    for k in range(an + ns + ar):
        i = skip_name(i)
        if i + 10 > n:
            return -1
        if k >= an + ns and data[i : i + 2] == b"\x00\x29":
            return 1 if data[i + 6] & 0x80 else 0
        i += 10 + int.from_bytes(data[i + 8 : i + 10], "big")
    return -1


def _slow(  # noqa: PLR0917
    index: ZoneIndex,
    data: bytes,
    client_ip: str,
    tcp: bool,
    max_udp: int,
    memo: dict[bytes, bytes] | None,
) -> bytes | None:
    if len(data) >= 12 and data[2] & 0x78:
        # Another opcode (NOTIFY, UPDATE, ...): not ours to parse, whatever its sections hold.
        return _error(data, RCODE_NOTIMP, edns=_edns_of(data))
    try:
        msg = dns.message.from_wire(data, ignore_trailing=False)
    except dns.message.ShortHeader:
        return None
    except dns.message.UnknownTSIGKey:
        return _error(data, RCODE_REFUSED, edns=_edns_of(data))  # we hold no TSIG keys
    except Exception:  # any parse failure of a packet with a header is FORMERR, never a crash
        return _error(data, RCODE_FORMERR, edns=_edns_of(data))
    edns = -1 if msg.edns < 0 else (1 if msg.ednsflags & 0x8000 else 0)
    if len(msg.question) != 1 or msg.answer:
        return _error(data, RCODE_FORMERR, edns=edns)
    q = msg.question[0]
    if msg.authority and q.rdtype != dns.rdatatype.IXFR:  # IXFR carries the client's SOA there
        return _error(data, RCODE_FORMERR, edns=edns)
    question = (
        (q.name.to_wire() or b"") + int(q.rdtype).to_bytes(2, "big") + int(q.rdclass).to_bytes(2, "big")
    )
    payload = -1
    do = 0
    ecs: Ecs | None = None
    if msg.edns >= 0:
        if msg.edns > 0:
            return _badvers(data, question, msg.ednsflags)
        payload = msg.payload
        do = msg.ednsflags & 0x8000
        for option in msg.options:
            if isinstance(option, dns.edns.ECSOption):
                parsed = _ecs(option.to_wire() or b"")
                if parsed is None or ecs is not None:  # RFC 7871 section 7.1.1: one, well formed
                    return _error(data, RCODE_FORMERR, edns=edns)
                ecs = parsed
    if q.rdclass != dns.rdataclass.IN:
        return _error(data, RCODE_REFUSED, question=question, edns=edns)
    if len(question) > 4 + 255:
        return _error(data, RCODE_FORMERR, edns=edns)
    qname_lower = question[:-4].lower()
    return _respond(
        index, data, question, qname_lower, question[-4:-2], payload, do, ecs, client_ip, tcp, max_udp, memo
    )


def _badvers(data: bytes, question: bytes, ednsflags: int) -> bytes:
    # RFC 6891: answer version 0 with extended RCODE BADVERS (16 = 1 << 4 | 0).
    flags = b"\x80\x00" if ednsflags & 0x8000 else b"\x00\x00"
    opt = _OPT_HEAD + bytes((_BADVERS >> 4, 0)) + flags + b"\x00\x00"
    head = bytes((0x80 | (data[2] & 0x01), data[3] & 0x10)) + b"\x00\x01\x00\x00\x00\x00\x00\x01"
    return data[:2] + head + question + opt
