"""Zone changes: atomic swaps under load, provider -> server wiring, restart from the zone file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import dns.message
import dns.query
import dns.rcode

from ingressfed.dnsserver.index import build_index
from ingressfed.dnsserver.server import DnsServer
from ingressfed.dnsserver.zone import zone_data_from_records
from ingressfed.model import Change, ChangeAction, Changes, RecordSet, RecordType
from providers.embedded import EmbeddedProvider
from tests.dnsserver.client import udp, values
from tests.dnsserver.conftest import ZONE

T = RecordType


def version(n: int) -> list[RecordSet]:
    """Zone version ``n``: c -> t<n> -> 10.0.0.<n>, and ``only<n>`` exists only in this version."""
    return [
        RecordSet(f"c.{ZONE}", T.CNAME, 30, (f"t{n}.{ZONE}",)),
        RecordSet(f"t{n}.{ZONE}", T.A, 30, (f"10.0.0.{n}",)),
        RecordSet(f"only{n}.{ZONE}", T.TXT, 30, (f'"v{n}"',)),
    ]


async def test_every_answer_is_entirely_old_or_entirely_new() -> None:
    old = build_index(zone_data_from_records(ZONE, version(1), serial=1))
    new = build_index(zone_data_from_records(ZONE, version(2), serial=2))
    async with DnsServer(old, port=0) as srv:
        stop = asyncio.Event()

        async def swapper() -> int:
            swaps = 0
            while not stop.is_set():
                srv.swap(new if srv.index is old else old)
                swaps += 1
                await asyncio.sleep(0.001)
            return swaps

        task = asyncio.create_task(swapper())
        try:
            # the client runs in its own thread so queries land at any point between swaps
            seen = await asyncio.to_thread(query_loop, srv.port, 300)
        finally:
            stop.set()
            swaps = await task
        assert swaps > 10 and seen == {1, 2}


def query_loop(port: int, count: int) -> set[int]:
    seen: set[int] = set()
    for i in range(count):
        if i % 2:
            r = dns.query.udp(dns.message.make_query(f"c.{ZONE}", "A"), "127.0.0.1", port=port, timeout=3)
            (cname,) = values(r.answer, "CNAME")
            n = int(cname.split(".")[0][1:])
            assert values(r.answer, "A") == {f"10.0.0.{n}"}  # CNAME and its target from one zone
        else:
            r = dns.query.udp(
                dns.message.make_query(f"only1.{ZONE}", "TXT"), "127.0.0.1", port=port, timeout=3
            )
            n = 1 if r.rcode() == dns.rcode.NOERROR else 2
            if n == 2:
                assert r.rcode() == dns.rcode.NXDOMAIN
                assert r.authority[0][0].serial == 2  # NXDOMAIN only in version 2, with its SOA
            else:
                assert values(r.answer, "TXT") == {'"v1"'}
        seen.add(n)
    return seen


def create(rs: RecordSet) -> Change:
    return Change(ChangeAction.CREATE, new=rs)


async def test_provider_changes_reach_server_and_survive_restart(tmp_path: Path) -> None:
    zone_file = tmp_path / "zone.json"
    provider = EmbeddedProvider(zone=ZONE, options={"zoneFile": str(zone_file)})
    async with DnsServer(build_index(provider.zone_data), port=0) as srv:
        provider.subscribe(srv.update)
        r = await udp(srv.port, f"app.{ZONE}", "A")
        assert r.rcode() == dns.rcode.NXDOMAIN
        await provider.apply(Changes((create(RecordSet(f"app.{ZONE}", T.A, 30, ("192.0.2.80",))),)))
        r = await udp(srv.port, f"app.{ZONE}", "A")
        assert values(r.answer, "A") == {"192.0.2.80"}
        serial = (await udp(srv.port, ZONE, "SOA")).answer[0][0].serial
        assert serial == provider.zone_data.serial > 1

    # a new process: the zone file alone is served at once, before any controller runs
    restarted = EmbeddedProvider(zone=ZONE, options={"zoneFile": str(zone_file)})
    async with DnsServer(build_index(restarted.zone_data), port=0) as srv:
        r = await udp(srv.port, f"app.{ZONE}", "A")
        assert values(r.answer, "A") == {"192.0.2.80"}
        assert (await udp(srv.port, ZONE, "SOA")).answer[0][0].serial == serial


async def test_update_soon_renders_off_the_loop_and_coalesces() -> None:
    provider = EmbeddedProvider(zone=ZONE, options={})
    async with DnsServer(build_index(provider.zone_data), port=0) as srv:
        provider.subscribe(srv.update_soon)
        for i in range(5):
            await provider.apply(Changes((create(RecordSet(f"n{i}.{ZONE}", T.A, 30, ("192.0.2.1",))),)))
        await srv.settled()
        assert srv.index.serial == provider.zone_data.serial
        r = await udp(srv.port, f"n4.{ZONE}", "A")
        assert values(r.answer, "A") == {"192.0.2.1"}
