"""Name compression: every name in a response points at an earlier copy when there is one.

Checked two ways: against dnspython's own compressed rendering of the same
message (no outside tool needed), and against a real Knot serving the same
zone (the sizes Knot sends are the yardstick the issue measured).
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import pytest

from ingressfed.dnsserver.answer import answer
from ingressfed.dnsserver.index import build_index
from ingressfed.dnsserver.server import DnsServer
from ingressfed.dnsserver.zone import ZoneData, zone_data_from_records
from ingressfed.model import RecordType
from tests.dnsserver.conftest import MID, RECORDS, ZONE, rs
from tests.fakes.bind import knotd

T = RecordType
STATIC = [r for r in RECORDS if r.set_identifier is None and r.name != f"zl.{ZONE}"] + [
    rs("mid-alias", T.CNAME, f"mid.{ZONE}"),
    rs("deep.er.name", T.CNAME, f"mid-alias.{ZONE}"),
]
CASES = [
    (f"mid-alias.{ZONE}", "A"),
    (f"deep.er.name.{ZONE}", "A"),
    (f"chain1.{ZONE}", "A"),
    (f"alias.{ZONE}", "AAAA"),
    (f"missing.{ZONE}", "A"),
    (f"x.a.b.c.{ZONE}", "A"),
    (f"www.{ZONE}", "TXT"),
    (ZONE, "NS"),
    (ZONE, "SOA"),
    (f"txt.{ZONE}", "TXT"),
    (f"ext.{ZONE}", "A"),
    (f"dangling.{ZONE}", "A"),
    (f"MiD-AliaS.{ZONE.upper()}", "A"),
]


def _data() -> ZoneData:
    return zone_data_from_records(ZONE, STATIC, serial=7)


def zone_text(data: ZoneData) -> str:
    s = data.soa
    lines = [
        f"$ORIGIN {data.zone}.",
        f"@ {s.ttl} IN SOA {s.nameservers[0]}. {s.hostmaster}. {data.serial} "
        f"{s.refresh} {s.retry} {s.expire} {s.minimum}",
        *(f"@ {s.ttl} IN NS {n}." for n in s.nameservers),
    ]
    for r in data.records:
        for v in r.values:
            lines.append(f"{r.name}. {r.ttl} IN {r.type.value} {v + '.' if r.type is T.CNAME else v}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("qname", "qtype"), CASES)
@pytest.mark.parametrize("edns", [False, True])
def test_no_name_is_written_twice(qname: str, qtype: str, edns: bool) -> None:
    index = build_index(_data())
    q = dns.message.make_query(qname, qtype, use_edns=0 if edns else False, payload=4096)
    wire = answer(index, q.to_wire(), "127.0.0.1", tcp=True)
    assert wire is not None
    parsed = dns.message.from_wire(wire)
    # dnspython compresses every owner name and every name in CNAME/NS/SOA data.
    again = parsed.to_wire(max_size=65535)
    assert len(wire) <= len(again), (qname, qtype, len(wire), len(again))
    assert parsed.question[0].name.to_text() == qname + "."  # the client's own letter case


def test_cname_to_forty_addresses_fits_one_datagram() -> None:
    index = build_index(_data())
    q = dns.message.make_query(f"mid-alias.{ZONE}", "A", use_edns=0, payload=1232)
    wire = answer(index, q.to_wire(), "127.0.0.1")
    assert wire is not None
    r = dns.message.from_wire(wire)
    assert not r.flags & dns.flags.TC
    assert {rd.to_text() for rrset in r.answer for rd in rrset if rrset.rdtype == 1} == set(MID)
    assert len(wire) < 750  # uncompressed it was 1313 bytes


def _ask(port: int, qname: str, qtype: str) -> bytes:
    """The raw response bytes over TCP (sizes as sent, not as re-rendered)."""
    w = dns.message.make_query(qname, qtype, use_edns=0, payload=4096).to_wire()
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(len(w).to_bytes(2, "big") + w)
        return _read(s, int.from_bytes(_read(s, 2), "big"))


def _read(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        assert chunk, "connection closed early"
        buf += chunk
    return buf


def _records(m: dns.message.Message) -> set[tuple[str, int, str]]:
    return {(str(r.name).lower(), r.rdtype, rd.to_text().lower()) for r in m.answer for rd in r}


async def test_response_sizes_no_larger_than_knot(tmp_path: Path) -> None:
    data = _data()
    async with DnsServer(build_index(data), host="127.0.0.1", port=0) as ours:
        with knotd(tmp_path / "knot", zone=ZONE, zone_text=zone_text(data)) as knot:
            for qname, qtype in CASES:
                mine = await asyncio.to_thread(_ask, ours.port, qname, qtype)
                theirs = await asyncio.to_thread(_ask, knot.port, qname, qtype)
                m, k = dns.message.from_wire(mine), dns.message.from_wire(theirs)
                assert m.rcode() == k.rcode(), (qname, qtype)
                assert _records(m) == _records(k), (qname, qtype)
                assert len(mine) <= len(theirs), (qname, qtype, len(mine), len(theirs))
