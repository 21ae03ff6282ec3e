"""Authoritative behaviour over real UDP and TCP sockets on loopback, checked with dnspython."""

from __future__ import annotations

import asyncio
import os
import socket
import struct

import dns.asyncquery
import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import pytest

from ingressfed.dnsserver.server import DnsServer
from tests.dnsserver.client import tcp, udp, values
from tests.dnsserver.conftest import BIG, MID, ZONE


def soa_serial(msg: dns.message.Message) -> int:
    (soa,) = [r for r in msg.authority if r.rdtype == dns.rdatatype.SOA]
    return int(soa[0].serial)


async def test_apex_soa_and_ns_authoritative_no_recursion(server: DnsServer) -> None:
    r = await udp(server.port, ZONE, "SOA")
    assert r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.AA and not r.flags & dns.flags.RA
    (soa,) = r.answer
    assert soa[0].mname.to_text() == f"ns1.{ZONE}." and soa[0].rname.to_text() == f"hostmaster.{ZONE}."
    assert soa[0].serial == 7
    r = await udp(server.port, ZONE, "NS")
    assert values(r.answer, "NS") == {f"ns1.{ZONE}."}
    assert values(r.additional, "A") == {"192.0.2.53"}  # glue for the in-zone name server


@pytest.mark.parametrize("transport", [udp, tcp])
async def test_address_and_txt_records(server: DnsServer, transport: object) -> None:
    query = udp if transport is udp else tcp
    r = await query(server.port, f"www.{ZONE}", "A")
    assert values(r.answer, "A") == {"192.0.2.1", "192.0.2.2"}
    assert r.answer[0].ttl == 30
    r = await query(server.port, f"www.{ZONE}", "AAAA")
    assert values(r.answer, "AAAA") == {"2001:db8::1"}
    r = await query(server.port, f"txt.{ZONE}", "TXT")
    assert values(r.answer, "TXT") == {'"hello world"', '"second" "string"'}


async def test_question_echoed_with_client_case(server: DnsServer) -> None:
    r = await udp(server.port, "WwW.ExAmPlE.CoM", "A")
    assert r.question[0].name.to_text() == "WwW.ExAmPlE.CoM."
    assert values(r.answer, "A") == {"192.0.2.1", "192.0.2.2"}


async def test_cname_and_chain_followed_inside_zone(server: DnsServer) -> None:
    r = await udp(server.port, f"alias.{ZONE}", "A")
    assert values(r.answer, "CNAME") == {f"www.{ZONE}."}
    assert values(r.answer, "A") == {"192.0.2.1", "192.0.2.2"}
    r = await udp(server.port, f"chain1.{ZONE}", "AAAA")
    assert values(r.answer, "CNAME") == {f"chain2.{ZONE}.", f"www.{ZONE}."}
    assert values(r.answer, "AAAA") == {"2001:db8::1"}
    r = await udp(server.port, f"alias.{ZONE}", "CNAME")  # asked for the CNAME itself: not followed
    assert [x.rdtype for x in r.answer] == [dns.rdatatype.CNAME]


async def test_cname_edge_cases(server: DnsServer) -> None:
    r = await udp(server.port, f"dangling.{ZONE}", "A")  # RFC 6604: rcode of the last name
    assert r.rcode() == dns.rcode.NXDOMAIN and values(r.answer, "CNAME") == {f"nothere.{ZONE}."}
    assert soa_serial(r) == 7
    r = await udp(server.port, f"ext.{ZONE}", "A")  # leaves the zone: the resolver follows
    assert r.rcode() == dns.rcode.NOERROR and values(r.answer, "CNAME") == {"target.example.net."}
    assert not r.authority
    r = await udp(server.port, f"loop1.{ZONE}", "A")  # a loop ends, it does not hang
    assert r.rcode() == dns.rcode.NOERROR and len(r.answer) == 2
    r = await udp(server.port, f"alias.{ZONE}", "MX")  # chased, then NODATA at the target
    assert values(r.answer, "CNAME") == {f"www.{ZONE}."} and soa_serial(r) == 7


async def test_nxdomain_vs_nodata_with_soa_in_authority(server: DnsServer) -> None:
    r = await udp(server.port, f"missing.{ZONE}", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN and not r.answer
    (soa,) = r.authority
    assert soa.ttl == 30  # negative TTL = SOA minimum
    assert soa[0].minimum == 30
    for name, qtype in (
        (f"www.{ZONE}", "TXT"),
        (f"www.{ZONE}", "MX"),
        (f"b.c.{ZONE}", "A"),
        (f"c.{ZONE}", "A"),
    ):
        r = await udp(server.port, name, qtype)  # existing name or empty non-terminal: NODATA
        assert r.rcode() == dns.rcode.NOERROR and not r.answer, (name, qtype)
        assert soa_serial(r) == 7
    r = await udp(server.port, f"x.a.b.c.{ZONE}", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN


async def test_refused_outside_zone(server: DnsServer) -> None:
    for name in ("example.org", "com", ".", "notexample.com", f"{ZONE}.evil.net"):
        r = await udp(server.port, name, "A")
        assert r.rcode() == dns.rcode.REFUSED, name
        assert not r.answer and not r.flags & dns.flags.AA
    r = await udp(server.port, "version.bind", "TXT", rdclass="CH")
    assert r.rcode() == dns.rcode.REFUSED
    r = await udp(server.port, ZONE, "AXFR")  # no zone transfers
    assert r.rcode() == dns.rcode.REFUSED


async def test_truncation_over_udp_and_full_answer_over_tcp(server: DnsServer) -> None:
    r = await udp(server.port, f"mid.{ZONE}", "A", use_edns=False)
    assert r.flags & dns.flags.TC and not r.answer
    r = await udp(server.port, f"mid.{ZONE}", "A", use_edns=0, payload=1232)
    assert not r.flags & dns.flags.TC and values(r.answer, "A") == set(MID)
    r = await udp(server.port, f"big.{ZONE}", "A", use_edns=0, payload=4096)
    assert r.flags & dns.flags.TC  # the server never sends more than 1232 bytes over UDP
    assert r.edns == 0  # the truncated reply still carries OPT
    r = await tcp(server.port, f"big.{ZONE}", "A", use_edns=0, payload=512)
    assert not r.flags & dns.flags.TC and values(r.answer, "A") == set(BIG)


async def test_larger_udp_limit_when_configured() -> None:
    from tests.dnsserver.conftest import make_index

    async with DnsServer(make_index(), port=0, max_udp=4096) as srv:
        r = await udp(srv.port, f"big.{ZONE}", "A", use_edns=0, payload=4096)
        assert not r.flags & dns.flags.TC and len(values(r.answer, "A")) == 100
        r = await udp(srv.port, f"big.{ZONE}", "A", use_edns=0, payload=1400)
        assert r.flags & dns.flags.TC


async def test_edns_echo_do_bit_and_badvers(server: DnsServer) -> None:
    r = await udp(server.port, f"www.{ZONE}", "A", use_edns=0, want_dnssec=True)
    assert r.edns == 0 and r.ednsflags & dns.flags.DO
    assert r.payload == 1232
    r = await udp(
        server.port, f"www.{ZONE}", "A", use_edns=0, options=[dns.edns.GenericOption(65001, b"xyz")]
    )
    assert values(r.answer, "A") == {"192.0.2.1", "192.0.2.2"}  # unknown options ignored
    r = await udp(server.port, f"www.{ZONE}", "A", use_edns=1)
    assert r.rcode() == dns.rcode.BADVERS and r.edns == 0 and not r.answer


async def test_any_gets_one_rrset(server: DnsServer) -> None:
    r = await udp(server.port, f"www.{ZONE}", "ANY")
    assert r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1
    r = await udp(server.port, f"missing.{ZONE}", "ANY")
    assert r.rcode() == dns.rcode.NXDOMAIN


async def test_other_opcodes_not_implemented(server: DnsServer) -> None:
    for opcode in (dns.opcode.NOTIFY, dns.opcode.UPDATE, dns.opcode.IQUERY, dns.opcode.STATUS):
        q = dns.message.make_query(f"www.{ZONE}", "SOA")
        q.set_opcode(opcode)
        r = await dns.asyncquery.udp(q, "127.0.0.1", port=server.port, timeout=3, ignore_unexpected=True)
        assert r.rcode() == dns.rcode.NOTIMP and r.id == q.id and r.opcode() == opcode


def _raw_exchange(port: int, packet: bytes) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        s.sendto(packet, ("127.0.0.1", port))
        try:
            return s.recv(65535)
        except TimeoutError:
            return None


async def test_formerr_for_malformed_with_header_and_silence_otherwise(server: DnsServer) -> None:
    good = dns.message.make_query(f"www.{ZONE}", "A").to_wire()
    two_questions = good[:4] + b"\x00\x02" + good[6:] + good[12:]
    cases = {
        "two questions": two_questions,
        "cut in the question": good[:20],
        "trailing junk": good + b"\x00\x01",
        "label too long": good[:12] + b"\x50" + b"a" * 80 + b"\x00\x00\x01\x00\x01",
        "name too long": good[:12]
        + b"\x3f"
        + b"a" * 63
        + (b"\x3f" + b"b" * 63) * 3
        + b"\x00\x00\x01\x00\x01",
    }
    for what, packet in cases.items():
        resp = await asyncio.to_thread(_raw_exchange, server.port, packet)
        assert resp is not None, what
        rid, flags = struct.unpack(">HH", resp[:4])
        assert rid == struct.unpack(">H", packet[:2])[0] and flags & 0x8000 and flags & 0xF == 1, what
    assert await asyncio.to_thread(_raw_exchange, server.port, b"\x12\x34\x01") is None
    response = bytearray(good)
    response[2] |= 0x80
    assert (
        await asyncio.to_thread(_raw_exchange, server.port, bytes(response)) is None
    )  # never answer responses


async def test_tcp_many_queries_on_one_connection(server: DnsServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        queries = [dns.message.make_query(f"www.{ZONE}", t) for t in ("A", "AAAA", "TXT")]
        # all three in one write: the server splits the stream by length prefix
        writer.write(b"".join(len(w).to_bytes(2, "big") + w for w in (q.to_wire() for q in queries)))
        await writer.drain()
        for q in queries:
            size = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), 3), "big")
            r = dns.message.from_wire(await asyncio.wait_for(reader.readexactly(size), 3))
            assert r.id == q.id and r.question == q.question
    finally:
        writer.close()


async def test_ipv6_listener() -> None:
    from tests.dnsserver.conftest import make_index

    try:
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()
    except OSError:
        if os.environ.get("CI") == "true":
            pytest.fail("no IPv6 loopback (::1) on this CI host")
        pytest.skip("no IPv6 on this host")
    async with DnsServer(make_index(), host="::1", port=0) as srv:
        q = dns.message.make_query(f"www.{ZONE}", "AAAA")
        r = await dns.asyncquery.udp(q, "::1", port=srv.port, timeout=3)
        assert values(r.answer, "AAAA") == {"2001:db8::1"}
        r = await dns.asyncquery.tcp(q, "::1", port=srv.port, timeout=3)
        assert values(r.answer, "AAAA") == {"2001:db8::1"}
