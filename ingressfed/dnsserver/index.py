"""Pre-rendered answers for one version of the zone.

Answering a query in Python with a full DNS library costs tens of
microseconds; looking up ready-made wire bytes costs well under one. So when
the zone changes we render every response the zone can give once: for each
name and each record type it holds (plus ANY, SOA, NS and a "type not here"
answer per name) the answer, authority and additional sections, and the
header words for every flag variant. At query time only the ID and the
client's own question (its original letter case) are spliced in.

An index is immutable after construction; the server swaps the whole object
when the zone changes, so a query sees either the old zone or the new one.

Answers that depend on who asks (``answers: geo`` and a name served by
several clusters) are rendered lazily per client location and cached on the
entry, so they cost one extra dictionary lookup once warm.

A name whose routed sets are weighted shares (``Routing.weighted``: a Service's
``steering: weighted``) answers each query with one share, drawn in proportion
to the weights whoever asks and in either answer mode; the entry caches one
rendering per (location, share), so a draw costs one random number.
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from geo.select import Candidate, rank
from ingressfed.dnsserver.zone import ZoneData
from ingressfed.model import Change, Location, RecordSet, RecordType

__all__ = [
    "RCODE_FORMERR",
    "RCODE_NOERROR",
    "RCODE_NOTIMP",
    "RCODE_NXDOMAIN",
    "RCODE_REFUSED",
    "RCODE_SERVFAIL",
    "AnswerMode",
    "Entry",
    "GeoEntry",
    "Locator",
    "Prepared",
    "Shares",
    "ZoneIndex",
    "build_index",
    "draw_share",
    "record_problem",
]

log = logging.getLogger(__name__)

RCODE_NOERROR = 0
RCODE_FORMERR = 1
RCODE_SERVFAIL = 2
RCODE_NXDOMAIN = 3
RCODE_NOTIMP = 4
RCODE_REFUSED = 5

_QT_ANY = 255
_QT_AXFR = 252
_QT_IXFR = 251
_QT_MAILB = 253
_QT_MAILA = 254
_QT_OPT = 41
_MAX_CHAIN = 8
_FLAG_QR = 0x80
_FLAG_AA = 0x04
_FLAG_TC = 0x02
_GEO_CACHE = 4096
_QT_PLACEHOLDER = 65280
_LAZY_SIZE = 65536
_TYPES = {
    RecordType.A: dns.rdatatype.A,
    RecordType.AAAA: dns.rdatatype.AAAA,
    RecordType.CNAME: dns.rdatatype.CNAME,
    RecordType.TXT: dns.rdatatype.TXT,
    RecordType.NS: dns.rdatatype.NS,
    RecordType.SOA: dns.rdatatype.SOA,
}
# RFC 8482: ANY gets one RRset; this is the preference among what a name has.
_ANY_ORDER = (
    dns.rdatatype.CNAME,
    dns.rdatatype.A,
    dns.rdatatype.AAAA,
    dns.rdatatype.TXT,
    dns.rdatatype.SOA,
    dns.rdatatype.NS,
)


_STORED = frozenset({*map(int, _TYPES.values()), _QT_ANY})


class AnswerMode(StrEnum):
    GEO = "geo"  # per-cluster variants: the nearest healthy cluster's values
    ALL = "all"  # per-cluster variants: the union of all of them


# Parsed values by (type, text form), filled while an index is built (many sets share values,
# and each value is parsed to check it and again to render it).
_Parsed = dict[tuple[int, str], dns.rdata.Rdata]


def record_problem(
    zone: str, rs: RecordSet, parsed: _Parsed | None = None, *, name_parsed: bool = False
) -> str | None:
    """Why ``rs`` cannot be served in ``zone`` (None when it can); ``parsed`` keeps the values
    parsed, ``name_parsed``: the caller parsed the name already."""
    zone = zone.rstrip(".").lower()
    where = f"record set {rs.name} {rs.type.value}"
    if rs.name != zone and not rs.name.endswith("." + zone):
        return f"{where}: name is outside zone {zone}"
    try:
        if not name_parsed:
            dns.name.from_text(rs.name + ".")
    except dns.exception.DNSException as exc:
        return f"{where}: invalid name ({exc})"
    if rs.type in (RecordType.SOA, RecordType.NS):
        return f"{where}: SOA and NS are managed by the embedded server itself"
    if not 0 <= rs.ttl <= 0x7FFFFFFF:
        return f"{where}: ttl {rs.ttl} out of range 0..2147483647"
    if not rs.values:
        return f"{where}: no values"
    if rs.type is RecordType.CNAME and len(rs.values) != 1:
        return f"{where}: a CNAME set holds exactly one target, got {len(rs.values)}"
    if rs.type is RecordType.CNAME and rs.name == zone:
        return f"{where}: no CNAME at the zone apex (SOA and NS live there)"
    rdtype = _TYPES[rs.type]
    for v in rs.values:
        text = v + "." if rs.type is RecordType.CNAME else v
        if parsed is not None and (rdtype, text) in parsed:
            continue
        try:
            rd = dns.rdata.from_text(dns.rdataclass.IN, rdtype, text)
        except (dns.exception.DNSException, ValueError) as exc:
            return f"{where}: invalid value {v!r} ({exc})"
        if parsed is not None:
            parsed[(rdtype, text)] = rd
    if rs.routing is not None and rs.set_identifier is None:
        return f"{where}: routing given without set_identifier"
    return None


class Locator:
    """Client address -> location, cached per address prefix.

    Shared across index versions (locations do not change with the zone).
    IPv4 clients are cached per /24, which is finer than any city database
    distinguishes in practice.
    """

    def __init__(
        self,
        locate: Callable[[str], Location | None],
        *,
        trusts_ecs_from: Callable[[str], bool] | None = None,
        cache_size: int = 65536,
    ) -> None:
        self._locate = locate
        # None: EDNS Client Subnet is believed from every resolver.
        self.trusts_ecs_from = trusts_ecs_from
        self._cache: dict[Any, Location | None] = {}
        self._size = cache_size

    def for_ip(self, ip: str) -> Location | None:
        key = ip.rpartition(".")[0] if "." in ip and ":" not in ip else ip
        try:
            return self._cache[key]
        except KeyError:
            pass
        loc = self._lookup(ip)
        self._store(key, loc)
        return loc

    def for_subnet(self, family: int, address: bytes) -> Location | None:
        key = (family, address)
        try:
            return self._cache[key]
        except KeyError:
            pass
        width = 4 if family == 1 else 16
        ip = str(ipaddress.ip_address(address.ljust(width, b"\x00")))
        loc = self._lookup(ip)
        self._store(key, loc)
        return loc

    def _lookup(self, ip: str) -> Location | None:
        try:
            return self._locate(ip)
        except Exception:  # a broken database must not break DNS: answer as for an unknown client
            log.exception("geo lookup failed", extra={"ip": ip})
            return None

    def _store(self, key: Any, loc: Location | None) -> None:
        if len(self._cache) >= self._size:
            self._cache.clear()
        self._cache[key] = loc


class Prepared:
    """One response without its ID and question.

    ``headers[k]`` are the 10 bytes after the ID (flags and the four counts)
    for flag variant ``k = RD | CD << 1 | EDNS << 2`` of the query;
    ``tc_headers`` the same for the truncated form (question only).
    """

    __slots__ = ("body", "geo", "headers", "rcode", "tc_headers")

    geo: bool

    def __init__(self, *, aa: bool, rcode: int, counts: tuple[int, int, int], body: bytes) -> None:
        self.headers, self.tc_headers = _headers(aa, rcode, counts)
        self.body = body
        self.rcode = rcode
        self.geo = False


@functools.lru_cache(maxsize=4096)
def _headers(
    aa: bool, rcode: int, counts: tuple[int, int, int]
) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    an, ns, ar = counts
    hi = _FLAG_QR | (_FLAG_AA if aa else 0)
    heads: list[bytes] = []
    tcs: list[bytes] = []
    for k in range(8):
        rd, cd, edns = k & 1, (k >> 1) & 1, (k >> 2) & 1
        lo = (0x10 if cd else 0) | (rcode & 0x0F)
        heads.append(bytes((hi | rd, lo, 0, 1)) + _u16(an) + _u16(ns) + _u16(ar + edns))
        tcs.append(bytes((hi | _FLAG_TC | rd, lo, 0, 1, 0, 0, 0, 0)) + _u16(edns))
    return tuple(heads), tuple(tcs)


# A weighted name's shares: (set identifier, weight), by set identifier.
Shares = tuple[tuple[str, int], ...]


def _bounds(shares: Shares) -> tuple[int, ...]:
    total = 0
    out: list[int] = []
    for _, weight in shares:
        total += weight
        out.append(total)
    return tuple(out)


def draw_share(shares: Shares, draw: float, bounds: tuple[int, ...] | None = None) -> str:
    """The share a uniform ``draw`` in [0, 1) lands on, in proportion to the weights
    (``bounds``: the running totals of the weights, when the caller keeps them). Pure."""
    bounds = _bounds(shares) if bounds is None else bounds
    return shares[min(bisect.bisect_right(bounds, draw * bounds[-1]), len(shares) - 1)][0]


class GeoEntry:
    """An answer that depends on the client's location, or on a per-query draw among weighted
    shares (``shares`` non-empty); rendered per (location, share) and cached."""

    __slots__ = ("_bounds", "_by_location", "_cache", "_index", "geo", "qname", "qtype", "shares")

    geo: bool

    def __init__(
        self, index: ZoneIndex, qname: bytes, qtype: int, shares: Shares = (), *, by_location: bool = True
    ) -> None:
        self._index = index
        # False: only the draw matters (a weighted name not also answered by location).
        self._by_location = by_location
        self.qname = qname
        self.qtype = qtype
        self.shares = shares
        self._bounds = _bounds(shares)
        self._cache: dict[tuple[Location | None, str | None], Prepared] = {}
        self.geo = True

    def for_location(self, loc: Location | None) -> Prepared:
        pick = draw_share(self.shares, self._index.draw(), self._bounds) if self.shares else None
        if not self._by_location:
            loc = None
        try:
            return self._cache[(loc, pick)]
        except KeyError:
            pass
        prepared = self._index.render(self.qname, self.qtype, loc, pick=pick)
        prepared.geo = True
        if len(self._cache) >= _GEO_CACHE:
            self._cache.clear()
        self._cache[(loc, pick)] = prepared
        return prepared


def _wire(name: dns.name.Name) -> bytes:
    wire = name.to_wire()
    assert wire is not None  # without a file argument dnspython returns the bytes
    return wire


def _u16(v: int) -> bytes:
    return v.to_bytes(2, "big")


@dataclass(frozen=True, slots=True)
class _Choice:
    """The record sets of one type at one name."""

    plain: tuple[RecordSet, ...]
    routed: tuple[RecordSet, ...]

    @property
    def varies(self) -> bool:
        return len({rs.set_identifier for rs in self.routed}) > 1

    @property
    def shares(self) -> Shares:
        """The weighted shares when every routed set is one (else ``()``: answered by location)."""
        if not self.routed or not all(rs.routing is not None and rs.routing.weighted for rs in self.routed):
            return ()
        weights = {rs.set_identifier or "": rs.routing.weight for rs in self.routed if rs.routing is not None}
        return tuple(sorted(weights.items()))


# Types whose data holds names that may be compressed (RFC 1035 section 4.1.4,
# RFC 3597 section 4): the names come first, then fixed-size fields.
_NAMES_IN_DATA = {
    dns.rdatatype.CNAME: ("target",),
    dns.rdatatype.NS: ("target",),
    dns.rdatatype.SOA: ("mname", "rname"),
}


class _RR:
    """An RRset with its records already in wire form (owner aside).

    ``rdatas[i]`` is ``(names, rest)``: the lower-case wire names the record
    data starts with (compressed when written into a message) and the bytes
    after them; ``head`` is type, class and TTL.
    """

    __slots__ = ("head", "owner", "rdatas", "target")

    def __init__(self, rrset: dns.rrset.RRset) -> None:
        self.owner = _wire(rrset.name).lower()
        # For a CNAME: the (lower-case wire) name it points to.
        self.target = _wire(rrset[0].target).lower() if rrset.rdtype == dns.rdatatype.CNAME else b""
        self.head = _u16(rrset.rdtype) + _u16(rrset.rdclass) + rrset.ttl.to_bytes(4, "big")
        fields = _NAMES_IN_DATA.get(rrset.rdtype, ())
        rdatas = []
        for rd in rrset:
            names = tuple(_wire(getattr(rd, f)).lower() for f in fields)
            data = rd.to_wire()
            assert data is not None
            rdatas.append((names, data[sum(map(len, names)) :]))
        self.rdatas = tuple(rdatas)


class _Writer:
    """Appends records to a message body, compressing every name (RFC 1035 section 4.1.4).

    ``start`` is the body's offset in the message; the question name (at
    offset 12) seeds the table, so a body fits after any question with the
    same name in any letter case.
    """

    __slots__ = ("out", "start", "table")

    def __init__(self, qname: bytes, start: int) -> None:
        self.out = bytearray()
        self.start = start
        self.table: dict[bytes, int] = {}
        self._remember(qname, 12)

    def _remember(self, name: bytes, at: int, upto: int = 256) -> None:
        """Note where each suffix of ``name`` (written at ``at``) starts, for labels before ``upto``."""
        i = 0
        while name[i] and i < upto and at + i < 0x4000:
            self.table.setdefault(name[i:], at + i)
            i += name[i] + 1

    def name(self, name: bytes) -> None:
        i = 0
        table = self.table
        while name[i]:
            ptr = table.get(name[i:])
            if ptr is not None:
                self._remember(name, self.start + len(self.out), i)
                self.out += name[:i]
                self.out += (0xC000 | ptr).to_bytes(2, "big")
                return
            i += name[i] + 1
        self._remember(name, self.start + len(self.out))
        self.out += name

    def rrset(self, rr: _RR) -> int:
        out = self.out
        for names, rest in rr.rdatas:
            self.name(rr.owner)
            out += rr.head
            at = len(out)
            out += b"\x00\x00"
            for n in names:
                self.name(n)
            out += rest
            out[at : at + 2] = _u16(len(out) - at - 2)
        return len(rr.rdatas)


Entry = Prepared | GeoEntry


class ZoneIndex:
    """Everything needed to answer queries for one version of one zone."""

    def __init__(
        self,
        data: ZoneData,
        *,
        answers: AnswerMode = AnswerMode.GEO,
        locator: Locator | None = None,
        default_order: Sequence[str] = (),
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.data = data
        # Uniform numbers in [0, 1) for weighted answers (a seam: tests pass a seeded generator's).
        self.draw = draw
        self.serial = data.serial
        self.mode = answers
        self.locator = locator
        self.default_order = tuple(default_order)
        self.origin = dns.name.from_text(data.zone + ".")
        self.origin_wire = _wire(self.origin)
        # Names as lower-case wire bytes: hashing and comparing dnspython names
        # would dominate the time to build an index.
        self._nodes: dict[bytes, dict[int, _Choice]] = {}
        self._names: dict[bytes, dns.name.Name] = {}
        # RRsets that do not depend on the client, built once per index.
        self._static: dict[tuple[bytes, int], _RR] = {}
        self._parsed: _Parsed | None = {}  # only while the index is built (memory)
        self._load(data.records)
        self._soa = _RR(self._soa_rrset(data))
        self._neg_soa = _RR(self._soa_rrset(data, ttl=min(data.soa.ttl, data.soa.minimum)))
        self._ns = _RR(self._ns_rrset())
        # key: lower-case wire qname + 2-byte qtype. Positive answers that do not
        # carry the SOA, rendered up front; a change re-renders only what it touches.
        self.table: dict[bytes, Entry] = {}
        # Answers rendered on first use: those carrying the SOA (NODATA, CNAME chains
        # ending in NXDOMAIN, the apex), whose serial changes with every version, and
        # types nobody stores here. Emptied on every change.
        self._lazy: dict[bytes, Entry] = {}
        # Bumped on every in-place change (caches keyed by the index must check it).
        self.version = 0
        self.refused = Prepared(aa=False, rcode=RCODE_REFUSED, counts=(0, 0, 0), body=b"")
        self.notimp = Prepared(aa=False, rcode=RCODE_NOTIMP, counts=(0, 0, 0), body=b"")
        self.formerr = Prepared(aa=False, rcode=RCODE_FORMERR, counts=(0, 0, 0), body=b"")
        # NXDOMAIN bodies by question length: the zone is always the question's
        # suffix, so the SOA owner is a pointer at a place fixed by the length alone.
        self._nx: dict[int, Prepared] = {}
        self._prerender()
        self._parsed = None

    # --- construction -------------------------------------------------

    def _load(self, records: Iterable[RecordSet]) -> None:
        grouped: dict[tuple[bytes, int], tuple[list[RecordSet], list[RecordSet]]] = {}
        for rs in (*records, *_glue_sets(self.data)):
            wire = self._admit(rs)
            if wire is None:
                continue
            plain, routed = grouped.setdefault((wire, _TYPES[rs.type]), ([], []))
            (plain if rs.set_identifier is None else routed).append(rs)
        origin = self.origin_wire
        self._nodes[origin] = {}
        self._names[origin] = self.origin
        # name -> the names whose CNAME points at it (their answers include its data)
        self._sources: dict[bytes, set[bytes]] = {}
        # name -> how many nodes sit directly below it (an empty node with none is removed)
        self._children: dict[bytes, int] = {}
        for (name, rdtype), (plain, routed) in grouped.items():
            self._ensure_node(name)[rdtype] = _Choice(tuple(plain), tuple(routed))
            if rdtype == dns.rdatatype.CNAME:
                self._link(name, (*plain, *routed))
        for name in self._nodes:
            self._warn_cname_beside_data(name)

    def _admit(self, rs: RecordSet) -> bytes | None:
        """The lower-case wire name of a set the index can serve (None: skipped, logged)."""
        try:
            dname: dns.name.Name | None = dns.name.from_text(rs.name + ".")
        except dns.exception.DNSException:
            dname = None  # record_problem says why
        problem = record_problem(self.data.zone, rs, self._parsed, name_parsed=dname is not None)
        if problem is not None or dname is None:
            log.warning("skipping record set: %s", problem, extra={"zone": self.data.zone, "record": rs.name})
            return None
        wire = _wire(dname).lower()
        self._names[wire] = dname
        return wire

    def _ensure_node(self, name: bytes, created: list[bytes] | None = None) -> dict[int, _Choice]:
        """The node at ``name``, creating it and every missing ancestor down to the apex (empty
        non-terminals exist: NODATA, not NXDOMAIN); names created are appended to ``created``."""
        node = self._nodes.get(name)
        if node is not None:
            return node
        node = self._nodes[name] = {}
        if created is not None:
            created.append(name)
        origin_len = len(self.origin_wire)
        child = name
        while len(child) > origin_len:
            parent = child[child[0] + 1 :]
            self._children[parent] = self._children.get(parent, 0) + 1
            if parent in self._nodes:
                break
            self._nodes[parent] = {}
            if created is not None:
                created.append(parent)
            child = parent
        return node

    def _prune(self, name: bytes) -> list[bytes]:
        """Remove ``name`` and then its ancestors while they hold nothing; the names removed."""
        removed = []
        origin = self.origin_wire
        while name != origin and not self._nodes.get(name, True) and not self._children.get(name):
            del self._nodes[name]
            self._children.pop(name, None)
            removed.append(name)
            parent = name[name[0] + 1 :]
            self._children[parent] -= 1
            name = parent
        return removed

    def _link(self, name: bytes, cnames: Iterable[RecordSet], *, add: bool = True) -> None:
        for rs in cnames:
            for target in rs.values:
                t = _wire(dns.name.from_text(target + ".")).lower()
                if add:
                    self._sources.setdefault(t, set()).add(name)
                else:
                    self._sources.get(t, set()).discard(name)

    def _warn_cname_beside_data(self, name: bytes) -> None:
        node = self._nodes.get(name, {})
        if dns.rdatatype.CNAME in node and len(node) > 1:
            log.warning(
                "CNAME beside other data at %s; serving only the CNAME",
                self._names[name],
                extra={"zone": self.data.zone},
            )

    def _types(self, name: bytes, node: Mapping[int, _Choice]) -> set[int]:
        """The types served at a node (a CNAME hides anything beside it)."""
        types: set[int] = {int(dns.rdatatype.CNAME)} if dns.rdatatype.CNAME in node else set(node)
        if name == self.origin_wire:
            types |= {int(dns.rdatatype.SOA), int(dns.rdatatype.NS)}
        return types

    def _soa_rrset(self, data: ZoneData, *, ttl: int | None = None) -> dns.rrset.RRset:
        s = data.soa
        text = (
            f"{s.nameservers[0]}. {s.hostmaster}. {data.serial} {s.refresh} {s.retry} {s.expire} {s.minimum}"
        )
        return dns.rrset.from_text(self.origin, s.ttl if ttl is None else ttl, "IN", "SOA", text)

    def _ns_rrset(self) -> dns.rrset.RRset:
        return dns.rrset.from_text_list(
            self.origin, self.data.soa.ttl, "IN", "NS", [n + "." for n in self.data.soa.nameservers]
        )

    def _prerender(self) -> None:
        for wire in self._nodes:
            self._render_name(wire)

    def _render_name(self, wire: bytes) -> None:
        """Put the up-front answers for every type at ``wire`` in ``table``."""
        node = self._nodes[wire]
        types = self._types(wire, node)
        if dns.rdatatype.CNAME in types:
            # The answer for a type the CNAME's target holds differs from "other".
            types |= set(_TYPES.values())
        table = self.table
        for rdtype in types | {_QT_ANY}:
            entry, with_soa = self._entry(wire, rdtype)
            if not with_soa:
                table[wire + _u16(rdtype)] = entry

    def _unrender_name(self, wire: bytes) -> None:
        table = self.table
        for rdtype in (*_TYPES.values(), _QT_ANY):
            table.pop(wire + _u16(rdtype), None)
            self._static.pop((wire, rdtype), None)

    def _entry(self, qname: bytes, qtype: int) -> tuple[Entry, bool]:
        """The entry for (name, type), and whether it carries the SOA (so changes with the serial)."""
        prepared, geo, with_soa, shares = self._render_full(qname, qtype, None)
        if geo or shares:
            return GeoEntry(self, qname, qtype, shares, by_location=geo), with_soa
        return prepared, with_soa

    # --- changes ------------------------------------------------------

    def apply(self, changes: Iterable[Change], data: ZoneData) -> set[bytes]:
        """Follow ``changes`` in place (``data`` is the zone after them, same SOA settings),
        re-rendering only the names whose answers they touch; the names re-rendered.

        Not thread-safe: call it where queries are answered (the event loop), so each
        query sees the zone before or after the whole change."""
        if data.soa != self.data.soa or data.zone != self.data.zone:
            raise ValueError("apply: the SOA settings changed; build a new index")
        self.data = data
        self.serial = data.serial
        self._soa = _RR(self._soa_rrset(data))
        self._neg_soa = _RR(self._soa_rrset(data, ttl=min(data.soa.ttl, data.soa.minimum)))
        touched: set[bytes] = set()
        for change in changes:
            if change.old is not None:
                touched |= self._remove(change.old)
            if change.new is not None:
                touched |= self._add(change.new)
        dirty = set(touched)
        frontier = list(touched)
        for _hop in range(_MAX_CHAIN):  # names whose CNAME chains lead here answer with our data
            frontier = [src for name in frontier for src in self._sources.get(name, ()) if src not in dirty]
            if not frontier:
                break
            dirty.update(frontier)
        ns_names = {_wire(dns.name.from_text(n + ".")).lower() for n in data.soa.nameservers}
        if dirty & ns_names:
            dirty.add(self.origin_wire)  # the NS answer carries their addresses
        for name in dirty:
            self._unrender_name(name)
            if name in self._nodes:
                self._render_name(name)
        self._lazy = {}
        self._nx = {}
        self.version += 1
        return dirty

    def _remove(self, rs: RecordSet) -> set[bytes]:
        wire = _wire(dns.name.from_text(rs.name + ".")).lower()
        node = self._nodes.get(wire)
        rdtype = _TYPES.get(rs.type)
        if node is None or rdtype is None or rdtype not in node:
            return set()
        choice = node[rdtype]
        plain = tuple(x for x in choice.plain if x.key != rs.key)
        routed = tuple(x for x in choice.routed if x.key != rs.key)
        if rdtype == dns.rdatatype.CNAME:
            self._link(wire, (*choice.plain, *choice.routed), add=False)
            self._link(wire, (*plain, *routed))
        if plain or routed:
            node[rdtype] = _Choice(plain, routed)
        else:
            del node[rdtype]
        self._static.pop((wire, rdtype), None)
        return {wire, *self._prune(wire)}

    def _add(self, rs: RecordSet) -> set[bytes]:
        wire = self._admit(rs)
        if wire is None:
            return set()
        created: list[bytes] = []
        node = self._ensure_node(wire, created)
        rdtype = _TYPES[rs.type]
        choice = node.get(rdtype, _Choice((), ()))
        plain = tuple(x for x in choice.plain if x.key != rs.key)
        routed = tuple(x for x in choice.routed if x.key != rs.key)
        if rs.set_identifier is None:
            plain += (rs,)
        else:
            routed += (rs,)
        node[rdtype] = _Choice(plain, routed)
        if rdtype == dns.rdatatype.CNAME:
            self._link(wire, (rs,))
        self._warn_cname_beside_data(wire)
        self._static.pop((wire, rdtype), None)
        return {wire, *created}

    # --- rendering ----------------------------------------------------

    def render(self, qname: bytes, qtype: int, loc: Location | None, *, pick: str | None = None) -> Prepared:
        """The answer to (``qname`` as lower-case wire bytes, ``qtype``) for a client at ``loc``;
        ``pick``: the weighted share drawn for this query (None: the heaviest)."""
        return self._render_full(qname, qtype, loc, pick)[0]

    def _rrset(
        self, name: bytes, rdtype: int, loc: Location | None, pick: str | None = None
    ) -> tuple[_RR, bool, Shares]:
        """The RRset served at (name, type) for a client at ``loc`` (and weighted share ``pick``);
        whether it depends on ``loc``; the weighted shares it is drawn from (``()``: none)."""
        if name == self.origin_wire and rdtype == dns.rdatatype.SOA:
            return self._soa, False, ()
        if name == self.origin_wire and rdtype == dns.rdatatype.NS:
            return self._ns, False, ()
        cached = self._static.get((name, rdtype))
        if cached is not None:
            return cached, False, ()
        rrset, geo, shares = self._dns_rrset(name, rdtype, loc, pick)
        rr = _RR(rrset)
        if not geo and not shares:
            self._static[(name, rdtype)] = rr
        return rr, geo, shares

    def _dns_rrset(
        self, name: bytes, rdtype: int, loc: Location | None, pick: str | None = None
    ) -> tuple[dns.rrset.RRset, bool, Shares]:
        choice = self._nodes[name][rdtype]
        sets = list(choice.plain)
        geo = False
        shares = choice.shares if choice.varies else ()
        if shares:
            # Only the drawn share's values (as Route53 and Cloud DNS answer weighted sets): a
            # "drawn first" order would not survive resolvers and clients that shuffle RRsets.
            # No draw (the entry being built, a zone transfer): the heaviest share.
            ids = [sid for sid, _ in shares]
            drawn = pick if pick in ids else min(shares, key=lambda s: (-s[1], s[0]))[0]
            sets += [rs for rs in choice.routed if rs.set_identifier == drawn]
        elif choice.routed:
            if self.mode is AnswerMode.GEO and choice.varies:
                chosen = self._nearest(choice.routed, loc)
                sets += [rs for rs in choice.routed if rs.set_identifier == chosen]
                geo = True
            elif rdtype == dns.rdatatype.CNAME:
                # A name has one CNAME target; "all" cannot union them.
                chosen = self._nearest(choice.routed, None)
                sets += [rs for rs in choice.routed if rs.set_identifier == chosen]
            else:
                sets += choice.routed
        ttl = min(rs.ttl for rs in sets)
        values = sorted({v for rs in sets for v in rs.values})
        if rdtype == dns.rdatatype.CNAME:
            values = [values[0] + "."]
        parsed = self._parsed
        if parsed is not None and all((rdtype, v) in parsed for v in values):
            rrset = dns.rrset.from_rdata_list(self._names[name], ttl, [parsed[(rdtype, v)] for v in values])
        else:
            rrset = dns.rrset.from_text_list(
                self._names[name], ttl, "IN", dns.rdatatype.RdataType.make(rdtype), values
            )
        return rrset, geo, shares

    def transfer_rrsets(self, names: Iterable[str] | None = None) -> list[dns.rrset.RRset]:
        """Every RRset of the zone but the SOA (or those at ``names`` only), as a zone transfer
        carries it: geo-dependent sets as a client of unknown location gets them (secondaries
        answer everyone alike); weighted names as their heaviest share (a transfer must not change
        with a draw, and for a canary split the heaviest share is the safe one)."""
        if names is None:
            wires: Iterable[bytes] = self._nodes
            out = [self._ns_rrset()]
        else:
            wires = {_wire(dns.name.from_text(n + ".")).lower() for n in names}
            out = [self._ns_rrset()] if self.origin_wire in wires else []
        for name in wires:
            for rdtype in self._nodes.get(name, ()):
                out.append(self._dns_rrset(name, rdtype, None)[0])
        return out

    def soa_rrset(self) -> dns.rrset.RRset:
        return self._soa_rrset(self.data)

    def _nearest(self, routed: Sequence[RecordSet], loc: Location | None) -> str | None:
        candidates: dict[str, Candidate] = {}
        for rs in routed:
            sid = rs.set_identifier or ""
            r = rs.routing
            candidates.setdefault(
                sid,
                Candidate(
                    name=sid,
                    location=r.location if r else None,
                    healthy=True,
                    weight=r.weight if r else 100,
                ),
            )
        # defaultOrder names clusters; a set per edge is identified by the edge's name and carries
        # its cluster in ``routing``: an unlocated client gets the edge of the first listed cluster.
        cluster_of = {rs.set_identifier or "": rs.routing.cluster for rs in routed if rs.routing is not None}
        order_names = [sid for c in self.default_order for sid in sorted(cluster_of) if cluster_of[sid] == c]
        order = rank(loc, list(candidates.values()), default_order=order_names or self.default_order)
        return order[0] if order else None

    def _render_full(
        self, qname: bytes, qtype: int, loc: Location | None, pick: str | None = None
    ) -> tuple[Prepared, bool, bool, Shares]:
        """The answer; whether it depends on ``loc``; whether it carries the SOA; the weighted
        shares it was drawn from (the first weighted name on its chain; ``()``: none)."""
        answer: list[_RR] = []
        authority: list[_RR] = []
        additional: list[_RR] = []
        rcode = RCODE_NOERROR
        geo = False
        shares: Shares = ()
        name = qname
        seen: set[bytes] = set()
        for _hop in range(_MAX_CHAIN):
            seen.add(name)
            node = self._nodes.get(name)
            if node is None:
                if self._wire_in_zone(name):
                    rcode = RCODE_NXDOMAIN
                    authority.append(self._neg_soa)
                # else: the chain left our zone; the resolver follows it.
                break
            types = self._types(name, node)
            if qtype == _QT_ANY:
                any_type = next(t for t in _ANY_ORDER if t in types) if types else None
                if any_type is None:
                    authority.append(self._neg_soa)
                else:
                    rrset, g, w = self._rrset(name, any_type, loc, pick)
                    answer.append(rrset)
                    geo |= g
                    shares = shares or w
                break
            if qtype in types:
                rrset, g, w = self._rrset(name, qtype, loc, pick)
                answer.append(rrset)
                geo |= g
                shares = shares or w
                if qtype == dns.rdatatype.NS:
                    additional += self._glue(loc)
                break
            if dns.rdatatype.CNAME in types:
                rrset, g, w = self._rrset(name, dns.rdatatype.CNAME, loc, pick)
                answer.append(rrset)
                geo |= g
                shares = shares or w
                target = rrset.target
                if target in seen:
                    break  # a loop: answer with what we have, the resolver gives up
                name = target
                continue
            authority.append(self._neg_soa)  # NODATA
            break
        with_soa = any(rr is self._neg_soa or rr is self._soa for rr in (*answer, *authority))
        return self._prepare(qname, (answer, authority, additional), rcode), geo, with_soa, shares

    def _glue(self, loc: Location | None) -> list[_RR]:
        out: list[_RR] = []
        for ns in self.data.soa.nameservers:
            n = _wire(dns.name.from_text(ns + ".")).lower()
            node = self._nodes.get(n)
            if node is None:
                continue
            for t in (dns.rdatatype.A, dns.rdatatype.AAAA):
                if t in node:
                    out.append(self._rrset(n, t, loc)[0])
        return out

    def _prepare(
        self, qname: bytes, sections: tuple[list[_RR], list[_RR], list[_RR]], rcode: int
    ) -> Prepared:
        # The body follows the question (12-byte header, name, type, class): every
        # question this body answers has the same name up to letter case, so
        # pointers into the question and into the body itself stay valid.
        writer = _Writer(qname, 12 + len(qname) + 4)
        counts = [sum(writer.rrset(rr) for rr in section) for section in sections]
        body = bytes(writer.out)
        if len(body) + len(qname) + 16 > 65535:
            log.error("answer for %r exceeds 65535 bytes; serving SERVFAIL", qname)
            return Prepared(aa=False, rcode=RCODE_SERVFAIL, counts=(0, 0, 0), body=b"")
        return Prepared(aa=True, rcode=rcode, counts=(counts[0], counts[1], counts[2]), body=body)

    def nxdomain_for(self, qname_lower: bytes) -> Prepared:
        """NXDOMAIN for an in-zone name: the SOA owner points into the question."""
        n = len(qname_lower)
        found = self._nx.get(n)
        if found is None:
            found = self._prepare(qname_lower, ([], [self._neg_soa], []), RCODE_NXDOMAIN)
            self._nx[n] = found
        return found

    # --- lookups used by the answering code ---------------------------

    def miss(self, qname_lower: bytes, qtype: int) -> Entry:
        """The entry for a query ``table`` has no key for."""
        if qtype in (_QT_AXFR, _QT_IXFR):
            return self.refused  # no zone transfers: the zone is fed, not transferred
        if qtype in (_QT_MAILA, _QT_MAILB):
            return self.notimp
        if qtype == _QT_OPT:
            return self.formerr
        if qname_lower in self._nodes:
            if qtype not in _STORED:
                # Every type nobody stores here gets the same body (only the question, which
                # is spliced in, differs): one entry, however many types a client tries.
                qtype = _QT_PLACEHOLDER
            key = qname_lower + _u16(qtype)
            entry = self._lazy.get(key)
            if entry is None:
                if len(self._lazy) >= _LAZY_SIZE:
                    self._lazy.clear()
                entry = self._lazy[key] = self._entry(qname_lower, qtype)[0]
            return entry
        return self.nxdomain_for(qname_lower) if self._wire_in_zone(qname_lower) else self.refused

    def _wire_in_zone(self, qname_lower: bytes) -> bool:
        # Walk label by label: a plain suffix test could match inside a label.
        origin = self.origin_wire
        i = 0
        n = len(qname_lower)
        while i < n:
            if qname_lower[i:] == origin:
                return True
            i += qname_lower[i] + 1
        return False


def _glue_sets(data: ZoneData) -> list[RecordSet]:
    """The configured addresses of in-zone nameservers as A/AAAA record sets."""
    out = []
    for name, addresses in data.soa.glue:
        for rtype in (RecordType.A, RecordType.AAAA):
            wanted = tuple(a for a in addresses if (":" in a) == (rtype is RecordType.AAAA))
            if wanted:
                out.append(RecordSet(name, rtype, data.soa.ttl, wanted))
    return out


def build_index(
    data: ZoneData,
    *,
    answers: AnswerMode | str = AnswerMode.GEO,
    locator: Locator | None = None,
    default_order: Sequence[str] = (),
    draw: Callable[[], float] = random.random,
) -> ZoneIndex:
    """Render ``data`` into an immutable index (CPU-bound; milliseconds per thousand names)."""
    return ZoneIndex(
        data, answers=AnswerMode(answers), locator=locator, default_order=default_order, draw=draw
    )
