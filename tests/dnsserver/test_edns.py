"""EDNS rules and size limits, checked on ``answer`` itself (no sockets, no outside tools).

RFC 6891 section 6.1.1: a reply to a query with OPT carries OPT, whatever the
RCODE. RFC 7871 section 7.1.1: one ECS option at most, SCOPE PREFIX-LENGTH 0
in queries, otherwise FORMERR. Payload sizes below 512 are read as 512
(RFC 6891 section 6.2.5); TCP answers are never truncated.
"""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import pytest

from ingressfed.dnsserver.answer import answer
from ingressfed.dnsserver.index import ZoneIndex
from ingressfed.model import RecordType
from tests.dnsserver.conftest import BIG, MID, RECORDS, ZONE, make_index, rs

SMALL = tuple(f"198.19.0.{i}" for i in range(1, 21))  # 20 addresses: ~370 bytes, between 256 and 512


@pytest.fixture(scope="module")
def index() -> ZoneIndex:
    return make_index([*RECORDS, rs("small", RecordType.A, *SMALL)])


def ask(index: ZoneIndex, wire: bytes, *, tcp: bool = False) -> dns.message.Message:
    out = answer(index, wire, "192.0.2.200", tcp=tcp)
    assert out is not None
    return dns.message.from_wire(out)


def ecs(source: int, scope: int = 0) -> dns.edns.ECSOption:
    return dns.edns.ECSOption("198.51.100.0", source, scope)


def query(name: str = f"www.{ZONE}", rdtype: str = "A", **kw: object) -> dns.message.Message:
    return dns.message.make_query(name, rdtype, use_edns=0, **kw)  # type: ignore[arg-type]


def test_refused_for_another_class_carries_opt(index: ZoneIndex) -> None:
    r = ask(index, dns.message.make_query("version.bind", "TXT", rdclass="CH", use_edns=0).to_wire())
    assert r.rcode() == dns.rcode.REFUSED and r.edns == 0
    r = ask(index, dns.message.make_query(f"www.{ZONE}", "A", rdclass="CH", use_edns=False).to_wire())
    assert r.rcode() == dns.rcode.REFUSED and r.edns == -1  # no OPT asked, none sent


@pytest.mark.parametrize("opcode", [dns.opcode.NOTIFY, dns.opcode.UPDATE, dns.opcode.STATUS])
def test_notimp_carries_opt(index: ZoneIndex, opcode: dns.opcode.Opcode) -> None:
    q = query(want_dnssec=True)
    q.set_opcode(opcode)
    r = ask(index, q.to_wire())
    assert r.rcode() == dns.rcode.NOTIMP and r.edns == 0 and r.opcode() == opcode
    assert r.ednsflags & dns.flags.DO


def test_formerr_for_malformed_ecs_carries_opt(index: ZoneIndex) -> None:
    bad = dns.edns.GenericOption(8, b"\x00\x01\x40\x00" + b"\xc6\x33\x64\x00")  # source /64 for IPv4
    r = ask(index, query(options=[bad]).to_wire())
    assert r.rcode() == dns.rcode.FORMERR and r.edns == 0


def test_formerr_for_no_question_carries_opt(index: ZoneIndex) -> None:
    q = dns.message.Message()
    q.use_edns(0, payload=1232)
    r = ask(index, q.to_wire())
    assert r.rcode() == dns.rcode.FORMERR and r.edns == 0


def test_two_ecs_options_are_formerr(index: ZoneIndex) -> None:
    r = ask(index, query(f"g.{ZONE}", options=[ecs(24), ecs(24)]).to_wire())
    assert r.rcode() == dns.rcode.FORMERR and r.edns == 0 and not r.answer


def test_nonzero_ecs_scope_in_a_query_is_formerr(index: ZoneIndex) -> None:
    r = ask(index, query(f"g.{ZONE}", options=[ecs(24, 16)]).to_wire())
    assert r.rcode() == dns.rcode.FORMERR and r.edns == 0
    r = ask(index, query(f"g.{ZONE}", options=[ecs(24, 0)]).to_wire())
    assert r.rcode() == dns.rcode.NOERROR and r.answer


def test_payload_below_512_is_read_as_512(index: ZoneIndex) -> None:
    r = ask(index, query(f"small.{ZONE}", payload=256).to_wire())
    assert not r.flags & dns.flags.TC and len(r.answer[0]) == len(SMALL)
    r = ask(index, query(f"mid.{ZONE}", payload=256).to_wire())
    assert r.flags & dns.flags.TC and r.edns == 0


def test_udp_without_edns_stops_at_512(index: ZoneIndex) -> None:
    r = ask(index, dns.message.make_query(f"small.{ZONE}", "A", use_edns=False).to_wire())
    assert not r.flags & dns.flags.TC
    r = ask(index, dns.message.make_query(f"mid.{ZONE}", "A", use_edns=False).to_wire())
    assert r.flags & dns.flags.TC and not r.answer


def test_tcp_without_edns_is_never_truncated(index: ZoneIndex) -> None:
    r = ask(index, dns.message.make_query(f"big.{ZONE}", "A", use_edns=False).to_wire(), tcp=True)
    assert not r.flags & dns.flags.TC and len(r.answer[0]) == len(BIG)
    r = ask(index, query(f"big.{ZONE}", payload=512).to_wire(), tcp=True)
    assert not r.flags & dns.flags.TC and len(r.answer[0]) == len(BIG)


def test_udp_never_above_the_server_limit(index: ZoneIndex) -> None:
    r = ask(index, query(f"big.{ZONE}", payload=65000).to_wire())
    assert r.flags & dns.flags.TC and r.edns == 0
    r = ask(index, query(f"mid.{ZONE}", payload=65000).to_wire())
    assert not r.flags & dns.flags.TC and len(r.answer[0]) == len(MID)
