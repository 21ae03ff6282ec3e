"""The single-process mode: the in-process proxy's health view reaches DNS through the edge path."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.message
import dns.rdatatype
import yaml
from aiohttp import web

from ingressfed.app import start
from ingressfed.config import load_config
from tests.fakes.ports import free_port

GLOBAL = "web.default.federation.svc.example.com"


async def a_records(port: int, name: str) -> set[str]:
    q = dns.message.make_query(name, "A")
    r = await dns.asyncquery.udp(q, "127.0.0.1", port=port, timeout=2)
    return {rd.to_text() for rrset in r.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset}


async def backend(host: str, *, healthy: bool = True) -> tuple[web.AppRunner, int]:
    async def health(_: web.Request) -> web.Response:
        return web.Response(status=200 if healthy else 503, text="ok\n")

    app = web.Application()
    app.router.add_get("/healthz", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, host, port).start()
    return runner, port


def write(tmp: Path, *, dns_port: int, objects: dict[str, Any]) -> Path:
    (tmp / "objects.yaml").write_text(yaml.safe_dump(objects))
    doc = {
        "federation": {"name": "federation", "zone": "example.com", "ownerId": "t"},
        "dns": {"provider": "embedded", "options": {"zoneFile": str(tmp / "zone.json")}},
        "clusters": [
            {"name": "us", "region": "us-east1", "zone": "us-east1-b"},
            {"name": "eu", "region": "europe-west1", "zone": "europe-west1-b"},
        ],
        "source": {"kind": "static", "file": str(tmp / "objects.yaml")},
        "proxy": {
            "listen": f"127.0.0.1:{free_port()}",
            "adminListen": f"127.0.0.1:{free_port()}",
            "healthCheck": {"interval": 0.3, "timeout": 0.2, "unhealthyThreshold": 1, "healthyThreshold": 1},
        },
        "dnsServer": {
            "listen": f"127.0.0.1:{dns_port}",
            "answers": "all",
            "zoneFile": str(tmp / "zone.json"),
        },
        "controller": {"listen": f"127.0.0.1:{free_port()}", "debounce": 0.05},
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def objects(ports: dict[str, int], *, eu_status: str | None) -> dict[str, Any]:
    addr = {"us": "127.0.0.31", "eu": "127.0.0.32"}
    doc: dict[str, Any] = {
        "services": [
            {"cluster": c, "namespace": "default", "name": "web", "addresses": [addr[c]]}
            for c in ("us", "eu")
        ],
        "ingresses": [
            {
                "cluster": c,
                "namespace": "default",
                "name": "web",
                "rules": [{"host": "web.example.com"}],
                "addresses": [addr[c]],
                "port": ports[c],
            }
            for c in ("us", "eu")
        ],
    }
    if eu_status is not None:
        doc["clusters"] = [{"name": "eu", "status": eu_status}]
    return doc


async def settled(port: int, name: str, want: set[str], *, seconds: float = 8.0) -> None:
    got: set[str] = set()
    for _ in range(int(seconds / 0.05)):
        got = await a_records(port, name)
        if got == want:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"DNS answered {got} for {name}, expected {want}")


async def test_offline_member_whose_data_plane_passes_checks_stays_in_dns(tmp_path: Path) -> None:
    """The API server of eu is unreachable (Offline) but its ingress answers every check: DNS keeps it.

    Before the fix only health *changes* reached the Store, so a data plane that was up from the
    start was never reported and an Offline member was removed for want of data.
    """
    us_runner, us_port = await backend("127.0.0.31")
    eu_runner, eu_port = await backend("127.0.0.32")
    dns_port = free_port()
    try:
        path = write(
            tmp_path, dns_port=dns_port, objects=objects({"us": us_port, "eu": eu_port}, eu_status="Offline")
        )
        async with start(load_config(path)) as running:
            await settled(dns_port, GLOBAL, {"127.0.0.31", "127.0.0.32"})
            eu = running.store.cluster("eu")
            assert eu is not None and eu.data_plane_healthy is True
    finally:
        await us_runner.cleanup()
        await eu_runner.cleanup()


async def test_offline_member_with_a_dead_data_plane_leaves_dns(tmp_path: Path) -> None:
    us_runner, us_port = await backend("127.0.0.31")
    eu_runner, eu_port = await backend("127.0.0.32", healthy=False)
    dns_port = free_port()
    try:
        path = write(
            tmp_path, dns_port=dns_port, objects=objects({"us": us_port, "eu": eu_port}, eu_status="Offline")
        )
        async with start(load_config(path)):
            await settled(dns_port, GLOBAL, {"127.0.0.31"})
    finally:
        await us_runner.cleanup()
        await eu_runner.cleanup()
