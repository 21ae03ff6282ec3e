"""Geo-aware answers: nearest cluster per querier (ECS subnet, else resolver address), and ``all`` mode."""

from __future__ import annotations

import dns.edns
import dns.message
import dns.rcode

from ingressfed.dnsserver.answer import answer
from ingressfed.dnsserver.index import Locator, build_index
from ingressfed.dnsserver.server import DnsServer
from ingressfed.dnsserver.zone import zone_data_from_records
from tests.dnsserver.client import tcp, udp, values
from tests.dnsserver.conftest import RECORDS, ZONE, fake_locate, make_index


def ecs_of(msg: dns.message.Message) -> dns.edns.ECSOption:
    (opt,) = [o for o in msg.options if isinstance(o, dns.edns.ECSOption)]
    return opt


async def test_ecs_subnet_picks_nearest_cluster_with_scope(server: DnsServer) -> None:
    r = await udp(server.port, f"g.{ZONE}", "A", use_edns=0, options=[dns.edns.ECSOption("198.51.100.0", 24)])
    assert values(r.answer, "A") == {"10.0.0.2"}  # Paris -> europe-west1
    opt = ecs_of(r)
    assert (opt.address, opt.srclen, opt.scopelen) == ("198.51.100.0", 24, 24)
    r = await tcp(server.port, f"g.{ZONE}", "A", use_edns=0, options=[dns.edns.ECSOption("203.0.113.0", 24)])
    assert values(r.answer, "A") == {"10.0.0.3"}  # Tokyo -> asia-east1
    assert ecs_of(r).scopelen == 24
    r = await udp(
        server.port, f"g.{ZONE}", "A", use_edns=0, options=[dns.edns.ECSOption("2001:db8:aa::", 48)]
    )
    assert values(r.answer, "A") == {"10.0.0.3"}  # IPv6 subnet in Tokyo
    assert (ecs_of(r).family, ecs_of(r).scopelen) == (2, 48)


async def test_without_ecs_the_resolver_address_decides(server: DnsServer) -> None:
    r = await udp(server.port, f"g.{ZONE}", "A")  # from 127.0.0.1: New York -> us-east1
    assert values(r.answer, "A") == {"10.0.0.1"}
    r = await udp(server.port, f"g.{ZONE}", "A", use_edns=0, options=[dns.edns.ECSOption("0.0.0.0", 0)])
    assert values(r.answer, "A") == {"10.0.0.1"}  # source /0: the client asks not to use its subnet
    assert ecs_of(r).scopelen == 0


async def test_names_that_do_not_vary_reply_scope_zero(server: DnsServer) -> None:
    r = await udp(
        server.port, f"www.{ZONE}", "A", use_edns=0, options=[dns.edns.ECSOption("198.51.100.0", 24)]
    )
    assert values(r.answer, "A") == {"192.0.2.1", "192.0.2.2"}
    assert ecs_of(r).scopelen == 0
    # only one cluster serves AAAA at g: no choice to make
    r = await udp(
        server.port, f"g.{ZONE}", "AAAA", use_edns=0, options=[dns.edns.ECSOption("198.51.100.0", 24)]
    )
    assert values(r.answer, "AAAA") == {"2001:db8::3"} and ecs_of(r).scopelen == 0


async def test_cname_to_a_geo_name_is_geo_too(server: DnsServer) -> None:
    for subnet, expected in (("198.51.100.0", "10.0.0.2"), ("203.0.113.0", "10.0.0.3")):
        r = await udp(server.port, f"zl.{ZONE}", "A", use_edns=0, options=[dns.edns.ECSOption(subnet, 24)])
        assert values(r.answer, "CNAME") == {f"g.{ZONE}."}
        assert values(r.answer, "A") == {expected}
        assert ecs_of(r).scopelen == 24


async def test_all_mode_returns_union_of_clusters() -> None:
    async with DnsServer(make_index(answers="all"), port=0) as srv:
        r = await udp(
            srv.port, f"g.{ZONE}", "A", use_edns=0, options=[dns.edns.ECSOption("198.51.100.0", 24)]
        )
        assert values(r.answer, "A") == {"10.0.0.1", "10.0.0.2", "10.0.0.3"}
        assert ecs_of(r).scopelen == 0


async def test_untrusted_ecs_is_ignored() -> None:
    locator = Locator(fake_locate, trusts_ecs_from=lambda ip: ip == "192.0.2.250")
    index = build_index(zone_data_from_records(ZONE, RECORDS), locator=locator)
    async with DnsServer(index, port=0) as srv:
        r = await udp(
            srv.port, f"g.{ZONE}", "A", use_edns=0, options=[dns.edns.ECSOption("198.51.100.0", 24)]
        )
        assert values(r.answer, "A") == {"10.0.0.1"}  # decided by 127.0.0.1, not the claimed subnet
        assert ecs_of(r).scopelen == 0


def test_unknown_location_uses_default_order_and_malformed_ecs_is_formerr() -> None:
    index = build_index(
        zone_data_from_records(ZONE, RECORDS), locator=Locator(fake_locate), default_order=["asia-east1"]
    )
    q = dns.message.make_query(f"g.{ZONE}", "A")
    r = dns.message.from_wire(answer(index, q.to_wire(), "192.0.2.77") or b"")
    assert values(r.answer, "A") == {"10.0.0.3"}
    # bits set beyond the source prefix (RFC 7871 section 6): FORMERR
    bad = dns.edns.GenericOption(8, b"\x00\x01\x10\x00\xc6\x33\x64")
    q = dns.message.make_query(f"g.{ZONE}", "A", use_edns=0, options=[bad])
    r = dns.message.from_wire(answer(index, q.to_wire(), "127.0.0.1") or b"")
    assert r.rcode() == dns.rcode.FORMERR
