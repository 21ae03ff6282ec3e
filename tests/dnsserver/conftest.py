"""Shared zone and a server on a free loopback port for the DNS server tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ingressfed.dnsserver.index import Locator, ZoneIndex, build_index
from ingressfed.dnsserver.server import DnsServer
from ingressfed.dnsserver.zone import zone_data_from_records
from ingressfed.model import Location, RecordSet, RecordType, Routing

ZONE = "example.com"
T = RecordType


def rs(name: str, rtype: RecordType, *values: str, ttl: int = 30) -> RecordSet:
    return RecordSet(f"{name}.{ZONE}" if name else ZONE, rtype, ttl, values)


def routed(name: str, cluster: str, loc: Location, *values: str, rtype: RecordType = T.A) -> RecordSet:
    return RecordSet(
        f"{name}.{ZONE}", rtype, 30, values, cluster, Routing(cluster, cluster.split("-", maxsplit=1)[0], loc)
    )


US = Location(33.2, -80.0)
EU = Location(50.4, 3.8)
ASIA = Location(24.0, 121.0)
# Where the fake GeoIP database puts clients.
PARIS = Location(48.8, 2.3)
TOKYO = Location(35.7, 139.7)
NEW_YORK = Location(40.7, -74.0)


def fake_locate(ip: str) -> Location | None:
    if ip.startswith("198.51.100."):
        return PARIS
    if ip.startswith("203.0.113."):
        return TOKYO
    if ip.startswith("2001:db8:aa"):
        return TOKYO
    if ip == "127.0.0.1":
        return NEW_YORK
    return None


BIG = tuple(f"192.0.2.{i}" for i in range(1, 101))  # ~1.6 kB: over 512 and over 1232
MID = tuple(f"198.18.0.{i}" for i in range(1, 41))  # ~0.7 kB: over 512, under 1232

RECORDS = [
    rs("www", T.A, "192.0.2.1", "192.0.2.2"),
    rs("www", T.AAAA, "2001:db8::1"),
    rs("alias", T.CNAME, f"www.{ZONE}"),
    rs("chain1", T.CNAME, f"chain2.{ZONE}"),
    rs("chain2", T.CNAME, f"www.{ZONE}"),
    rs("dangling", T.CNAME, f"nothere.{ZONE}"),
    rs("ext", T.CNAME, "target.example.net"),
    rs("loop1", T.CNAME, f"loop2.{ZONE}"),
    rs("loop2", T.CNAME, f"loop1.{ZONE}"),
    rs("txt", T.TXT, '"hello world"', '"second" "string"'),
    rs("big", T.A, *BIG),
    rs("mid", T.A, *MID),
    rs("a.b.c", T.A, "192.0.2.9"),
    rs("ns1", T.A, "192.0.2.53"),
    routed("g", "us-east1", US, "10.0.0.1"),
    routed("g", "europe-west1", EU, "10.0.0.2"),
    routed("g", "asia-east1", ASIA, "10.0.0.3"),
    routed("g", "asia-east1", ASIA, "2001:db8::3", rtype=T.AAAA),
    rs("zl", T.CNAME, f"g.{ZONE}"),
]


def make_index(records: list[RecordSet] | None = None, *, serial: int = 7, answers: str = "geo") -> ZoneIndex:
    data = zone_data_from_records(ZONE, RECORDS if records is None else records, serial=serial)
    return build_index(data, answers=answers, locator=Locator(fake_locate))


@pytest.fixture
async def server() -> AsyncIterator[DnsServer]:
    async with DnsServer(make_index(), host="127.0.0.1", port=0, tcp_idle_timeout=1.0) as srv:
        yield srv
