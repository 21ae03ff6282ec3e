"""Checks with dig and kdig, and the ``dns-serve`` command as a separate process.

dig (Debian ``dnsutils``/``bind9-dnsutils``) and kdig (``knot-dnsutils``) must be
installed under CI=true; elsewhere their tests skip when missing.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import dns.edns
import dns.message
import pytest

from ingressfed.dnsserver.server import DnsServer
from ingressfed.dnsserver.zone import zone_data_from_records, zone_data_to_json
from ingressfed.dnsserver.zonefile import append_journal, save_zone_file
from ingressfed.errors import ConfigError
from ingressfed.model import Change, ChangeAction, RecordSet, RecordType
from tests.dnsserver.client import udp, values
from tests.dnsserver.conftest import ZONE
from tests.fakes.tools import tool

ROOT = Path(__file__).resolve().parents[2]


async def run(*cmd: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    return out.decode()


@pytest.mark.parametrize("name", ["dig", "kdig"])
async def test_dig_and_kdig(server: DnsServer, name: str) -> None:
    exe = tool(name)
    at = ["@127.0.0.1", "-p", str(server.port)]
    out = await run(exe, *at, f"www.{ZONE}", "A", "+norec")
    assert "status: NOERROR" in out and "192.0.2.1" in out and " aa" in out
    out = await run(exe, *at, f"missing.{ZONE}", "A")
    assert "status: NXDOMAIN" in out and "SOA" in out
    out = await run(exe, *at, "example.org", "A")
    assert "status: REFUSED" in out
    out = await run(exe, *at, f"chain1.{ZONE}", "A", "+short")
    assert out.split() == [f"chain2.{ZONE}.", f"www.{ZONE}.", "192.0.2.1", "192.0.2.2"]
    # a big answer: truncated over UDP, then retried over TCP by the tool itself
    out = await run(exe, *at, f"big.{ZONE}", "A", "+bufsize=1232")
    assert out.count("IN\tA\t192.0.2.") == 100 or out.count("IN A 192.0.2.") == 100
    out = await run(exe, *at, f"big.{ZONE}", "A", "+tcp", "+short")
    assert len(out.split()) == 100
    out = await run(exe, *at, f"g.{ZONE}", "A", "+subnet=198.51.100.0/24", "+short")
    assert out.split() == ["10.0.0.2"]


async def start_dns_serve(zone_file: Path, *extra: str) -> tuple[asyncio.subprocess.Process, int]:
    return await start_dns_serve_args("--zone", ZONE, "--zone-file", str(zone_file), *extra)


async def test_dns_serve_geo_answers_from_a_city_database(tmp_path: Path) -> None:
    from tests.dnsserver.conftest import ASIA, EU, US, routed
    from tests.fakes.geoip_db import build_city_db

    db = build_city_db(tmp_path)
    zone_file = tmp_path / "zone.json"
    records = [
        routed("app", "us-east1", US, "10.0.0.1"),
        routed("app", "europe-west1", EU, "10.0.0.2"),
        routed("app", "asia-east1", ASIA, "10.0.0.3"),
    ]
    save_zone_file(zone_file, zone_data_from_records(ZONE, records))
    proc, port = await start_dns_serve(
        zone_file, "--geoip", str(db), "--trust-ecs-from", "127.0.0.0/8", "--default-order", "asia-east1"
    )
    try:
        for subnet, expected in (
            ("202.12.27.0", "10.0.0.3"),  # Tokyo
            ("81.2.69.0", "10.0.0.2"),  # London
            ("8.8.8.0", "10.0.0.1"),  # Mountain View
        ):
            r = await udp(port, f"app.{ZONE}", "A", use_edns=0, options=[dns.edns.ECSOption(subnet, 24)])
            assert values(r.answer, "A") == {expected}, subnet
            (ecs,) = r.options
            assert isinstance(ecs, dns.edns.ECSOption) and ecs.scopelen == 24
        r = await udp(port, f"app.{ZONE}", "A")  # 127.0.0.1 is not in the database: default order
        assert values(r.answer, "A") == {"10.0.0.3"}
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0


async def test_dns_serve_command_serves_and_follows_the_zone_file(tmp_path: Path) -> None:
    zone_file = tmp_path / "zone.json"
    first = [RecordSet(f"www.{ZONE}", RecordType.A, 30, ("192.0.2.1",))]
    save_zone_file(zone_file, zone_data_from_records(ZONE, first, serial=5))
    proc, port = await start_dns_serve(zone_file)
    try:
        r = await udp(port, f"www.{ZONE}", "A")
        assert values(r.answer, "A") == {"192.0.2.1"}
        # the controller (or anyone) rewrites the file: the server follows within its poll interval
        doc = zone_data_to_json(
            zone_data_from_records(
                ZONE, [*first, RecordSet(f"new.{ZONE}", RecordType.A, 30, ("192.0.2.7",))], serial=6
            )
        )
        tmp = zone_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(zone_file)
        for _ in range(50):
            r = await udp(port, f"new.{ZONE}", "A")
            if r.answer:
                break
            await asyncio.sleep(0.1)
        assert values(r.answer, "A") == {"192.0.2.7"}
        # The embedded provider appends most batches to the journal beside the file instead.
        late = RecordSet(f"late.{ZONE}", RecordType.A, 30, ("192.0.2.8",))
        append_journal(zone_file, base=6, serial=7, changes=[Change(ChangeAction.CREATE, new=late)])
        for _ in range(50):
            r = await udp(port, f"late.{ZONE}", "A")
            if r.answer:
                break
            await asyncio.sleep(0.1)
        assert values(r.answer, "A") == {"192.0.2.8"}
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0


async def test_dns_serve_follows_the_controller_feed_and_serves_its_state_when_away(tmp_path: Path) -> None:
    from aiohttp import web

    from ingressfed.feed.publisher import FeedPublisher, add_feed_routes
    from ingressfed.feed.view import FeedView

    publisher = FeedPublisher(epoch="e1", initial_version=1)
    app = web.Application()
    add_feed_routes(app, publisher, "s3cret")
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    feed_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    state = tmp_path / "dns-feed.json"
    www = RecordSet(f"www.{ZONE}", RecordType.A, 30, ("192.0.2.1",))
    publisher.publish(FeedView(version=0, records=(www,), routes=(), clusters=(), zone=ZONE))
    args = ("--zone", ZONE, "--token-file", str(token), "--state-file", str(state))
    feed = ("--feed", f"http://127.0.0.1:{feed_port}")
    proc, port = await start_dns_serve_args(*feed, *args)
    try:
        r = await poll_until(port, f"www.{ZONE}")
        assert values(r.answer, "A") == {"192.0.2.1"}
        serial = (await udp(port, ZONE, "SOA")).answer[0][0].serial
        new = RecordSet(f"new.{ZONE}", RecordType.A, 30, ("192.0.2.7",))
        publisher.publish(FeedView(version=0, records=(www, new), routes=(), clusters=(), zone=ZONE))
        r = await poll_until(port, f"new.{ZONE}")
        assert values(r.answer, "A") == {"192.0.2.7"}
        assert (await udp(port, ZONE, "SOA")).answer[0][0].serial > serial
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    await runner.cleanup()  # the controller goes away
    proc, port = await start_dns_serve_args(*feed, *args)
    try:
        r = await poll_until(port, f"new.{ZONE}")  # served from the persisted view
        assert values(r.answer, "A") == {"192.0.2.7"}
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0


async def start_dns_serve_args(*args: str) -> tuple[asyncio.subprocess.Process, int]:
    cmd = [sys.executable, "-m", "ingressfed.dnsserver", "--listen", "127.0.0.1:0", "--log-level", "WARNING"]
    proc = await asyncio.create_subprocess_exec(*cmd, *args, stdout=asyncio.subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
    return proc, int(line.rsplit("port", 1)[1])


async def poll_until(port: int, name: str) -> dns.message.Message:
    """Query until ``name`` exists (bounded: 5 s)."""
    for _ in range(50):
        r = await udp(port, name, "A")
        if r.answer:
            return r
        await asyncio.sleep(0.1)
    return r


def test_dns_serve_settings_come_from_config_and_flags_override(tmp_path: Path) -> None:
    import argparse

    from ingressfed.dnsserver.commands import register, settings_from_args

    config = tmp_path / "config.yaml"
    config.write_text(
        "federation: {name: federation, zone: Example.COM}\n"
        "dns: {provider: embedded, options: {nameservers: [ns-a.example.com], hostmaster: dns@example.com}}\n"
        "dnsServer: {listen: '127.0.0.1:5399', answers: all}\n"
        "geo: {trustedProxies: [10.0.0.0/8], defaultOrder: [c2, c1]}\n"
        "clusters: [{name: c1, region: us-east1, zone: us-east1-b},\n"
        "  {name: c2, region: asia-east1, zone: asia-east1-a}]\n"
    )
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    s = settings_from_args(
        parser.parse_args(["dns-serve", "--feed", "http://ctl:9090", "--config", str(config)])
    )
    assert (s.zone, s.host, s.port, s.answers.value) == ("example.com", "127.0.0.1", 5399, "all")
    assert s.trust_ecs_from == ("10.0.0.0/8",) and s.default_order == ("c2", "c1")
    assert s.soa is not None and s.soa.nameservers == ("ns-a.example.com",)
    assert s.soa.hostmaster == "dns.example.com"
    args = ["dns-serve", "--feed", "http://ctl:9090", "--config", str(config), "--listen", "[::1]:53"]
    s = settings_from_args(parser.parse_args([*args, "--answers", "geo", "--default-order", "c1"]))
    assert (s.host, s.port, s.answers.value, s.default_order) == ("::1", 53, "geo", ("c1",))
    with pytest.raises(ConfigError, match="--zone"):
        settings_from_args(parser.parse_args(["dns-serve", "--zone-file", "z.json"]))
