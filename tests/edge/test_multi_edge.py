"""Three edges, one controller, the embedded DNS server: end to end on loopback.

The controller runs in-process (``ingressfed run``'s ``start``); each edge is a real
``ingressfed proxy --edge`` subprocess on its own loopback address, following the feed and
reporting over HTTP with the feed's token. Three backends stand for the member clusters.

Shown here: per-subnet DNS answers (ECS from a trusted resolver) name the nearest edge; an edge
serves from its own cluster; a killed backend moves that edge's traffic at once; a killed edge
leaves DNS within the health window; with the controller gone, edges keep failing over on their
own checks (static stability).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import dns.asyncquery
import dns.edns
import dns.message
import dns.rdatatype
import pytest
import yaml
from aiohttp import web

from ingressfed.app import start
from ingressfed.config import load_config
from tests.fakes.geoip_db import build_city_db
from tests.fakes.ports import free_port

HOST = "web.example.com"
TOKEN = "edge-test-token"
CLUSTERS = {  # name -> (region, zone, backend address, edge address)
    "us": ("us-east1", "us-east1-b", "127.0.0.31", "127.0.0.21"),
    "eu": ("europe-west1", "europe-west1-b", "127.0.0.32", "127.0.0.22"),
    "asia": ("asia-east1", "asia-east1-a", "127.0.0.33", "127.0.0.23"),
}
# Client subnets of the test GeoIP database: London, Mountain View, Tokyo.
SUBNETS = {"eu": "81.2.69.0", "us": "8.8.8.0", "asia": "202.12.27.0"}
STALE_AFTER = 2.5


@dataclass
class Backend:
    cluster: str
    address: str
    port: int
    runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def hello(_: web.Request) -> web.Response:
            return web.Response(text=f"cluster {self.cluster}\n")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", hello)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, self.address, self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


async def geo_a(dns_port: int, subnet: str) -> set[str]:
    q = dns.message.make_query(HOST, "A", use_edns=0, options=[dns.edns.ECSOption(subnet, 24)])
    r = await dns.asyncquery.udp(q, "127.0.0.1", port=dns_port, timeout=2)
    return {rd.to_text() for rrset in r.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset}


async def served_by(session: aiohttp.ClientSession, edge: str, port: int) -> str:
    async with session.get(
        f"http://{edge}:{port}/", headers={"Host": HOST}, timeout=aiohttp.ClientTimeout(total=3)
    ) as r:
        assert r.status == 200, await r.text()
        return r.headers["X-Served-By-Cluster"]


async def eventually(check: Any, what: str, *, seconds: float = 10.0) -> float:
    """Poll ``check()`` (async, truthy when done); returns the seconds it took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    last: Any = None
    while loop.time() - started < seconds:
        try:
            last = await check()
        except (OSError, aiohttp.ClientError, TimeoutError, AssertionError, dns.exception.DNSException) as e:
            last = e
        if last is True:
            return loop.time() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within {seconds}s (last: {last!r})")


def controller_config(tmp: Path, *, db: Path, ports: dict[str, int], backends: dict[str, Backend]) -> Path:
    (tmp / "token").write_text(TOKEN + "\n")
    objects = {
        "ingresses": [
            {
                "cluster": c,
                "namespace": "default",
                "name": "web",
                "rules": [{"host": HOST}],
                "addresses": [b.address],
                "port": b.port,
            }
            for c, b in backends.items()
        ]
    }
    (tmp / "objects.yaml").write_text(yaml.safe_dump(objects))
    doc = {
        "federation": {"name": "federation", "zone": "example.com", "ttl": 5, "ownerId": "edges"},
        "dns": {"provider": "embedded", "options": {"zoneFile": str(tmp / "zone.json")}},
        "clusters": [{"name": c, "region": r, "zone": z} for c, (r, z, _, _) in CLUSTERS.items()],
        "edges": [{"name": f"edge-{c}", "cluster": c} for c in CLUSTERS],  # addresses: announced
        "edgeHealth": {"staleAfter": STALE_AFTER, "minReportInterval": 0.2},
        "source": {"kind": "static", "file": str(tmp / "objects.yaml")},
        "geo": {"database": str(db), "trustedProxies": ["127.0.0.0/8"]},
        "proxy": {"enabled": False},
        "dnsServer": {
            "listen": f"127.0.0.1:{ports['dns']}",
            "answers": "geo",
            "zoneFile": str(tmp / "zone.json"),
        },
        "controller": {
            "listen": f"127.0.0.1:{ports['controller']}",
            "debounce": 0.05,
            "feedTokenFile": str(tmp / "token"),
        },
    }
    path = tmp / "controller.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def edge_config(tmp: Path) -> Path:
    doc = {
        "federation": {"name": "federation", "zone": "example.com"},
        "proxy": {
            "healthCheck": {"interval": 0.3, "timeout": 0.2, "unhealthyThreshold": 1, "healthyThreshold": 1},
        },
    }
    path = tmp / "edge.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def start_dns_follower(tmp: Path, *, controller: int, port: int, db: Path) -> subprocess.Popen[bytes]:
    """An edge's DNS server (``ingressfed dns-serve --feed``), as the chart's edge role runs it."""
    cmd = [
        sys.executable, "-m", "ingressfed.cli", "dns-serve",
        "--feed", f"http://127.0.0.1:{controller}",
        "--zone", "example.com",
        "--token-file", str(tmp / "token"),
        "--state-file", str(tmp / "edge-dns.json"),
        "--listen", f"127.0.0.1:{port}",
        "--answers", "geo",
        "--geoip", str(db),
        "--trust-ecs-from", "127.0.0.0/8",
    ]  # fmt: skip
    log = open(tmp / "edge-dns.log", "wb")  # noqa: SIM115 - the process writes it
    return subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )


def start_edge(
    tmp: Path, cluster: str, *, controller: int, port: int, extra: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    address = CLUSTERS[cluster][3]
    cmd = [
        sys.executable, "-m", "ingressfed.cli", "proxy",
        "--feed", f"http://127.0.0.1:{controller}",
        "--config", str(edge_config(tmp)),
        "--token-file", str(tmp / "token"),
        "--state-file", str(tmp / f"edge-{cluster}.json"),
        "--listen", f"{address}:{port}",
        "--admin-listen", f"{address}:{free_port()}",
        "--edge", f"edge-{cluster}",
        "--edge-cluster", cluster,
        "--public-address", address,
        "--report-interval", "1",
        "--no-uvloop",
        *extra,
    ]  # fmt: skip
    log = open(tmp / f"edge-{cluster}.log", "wb")  # noqa: SIM115 - the process writes it
    return subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )


@pytest.fixture
async def backends() -> AsyncIterator[dict[str, Backend]]:
    out = {c: Backend(c, addr, free_port()) for c, (_, _, addr, _) in CLUSTERS.items()}
    for b in out.values():
        await b.start()
    yield out
    for b in out.values():
        await b.stop()


@pytest.mark.timeout(120)
async def test_three_edges_steer_fail_over_and_outlive_the_controller(
    tmp_path: Path, backends: dict[str, Backend]
) -> None:
    db = build_city_db(tmp_path)
    ports = {"dns": free_port(), "controller": free_port(), "edge_dns": free_port()}
    edge_port = free_port()
    config = load_config(controller_config(tmp_path, db=db, ports=ports, backends=backends))
    edges: dict[str, subprocess.Popen[bytes]] = {}
    try:
        async with aiohttp.ClientSession() as session:
            async with start(config) as running:
                edges = {
                    c: start_edge(tmp_path, c, controller=ports["controller"], port=edge_port)
                    for c in CLUSTERS
                }
                edges["dns"] = start_dns_follower(
                    tmp_path, controller=ports["controller"], port=ports["edge_dns"], db=db
                )
                edge_ip = {c: CLUSTERS[c][3] for c in CLUSTERS}

                # Per-subnet answers: each client resolves to its nearest edge, once all three report.
                for cluster, subnet in SUBNETS.items():

                    async def nearest(subnet: str = subnet, cluster: str = cluster) -> bool:
                        return await geo_a(ports["dns"], subnet) == {edge_ip[cluster]}

                    await eventually(nearest, f"{subnet}/24 resolves to edge-{cluster}", seconds=30)
                assert {e.name for e in running.store.snapshot().edges if e.live} == {
                    f"edge-{c}" for c in CLUSTERS
                }

                # Each edge serves from its own cluster.
                for cluster in CLUSTERS:

                    async def own(cluster: str = cluster) -> bool:
                        return await served_by(session, edge_ip[cluster], edge_port) == cluster

                    await eventually(own, f"edge-{cluster} serves from {cluster}")

                # A killed backend: edge-eu moves its traffic to the next nearest cluster.
                await backends["eu"].stop()

                async def eu_moves() -> bool:
                    return await served_by(session, edge_ip["eu"], edge_port) != "eu"

                await eventually(eu_moves, "edge-eu fails over from its dead cluster")
                # All three edges see eu down: the quorum takes its data plane down.

                async def quorum_down() -> bool:
                    eu = running.store.cluster("eu")
                    return eu is not None and eu.data_plane_healthy is False

                await eventually(quorum_down, "quorum marks eu's data plane down")
                await backends["eu"].start()

                # A killed edge: European clients resolve to the next nearest edge within the window.
                edges["eu"].send_signal(signal.SIGKILL)
                edges["eu"].wait(timeout=10)

                async def eu_clients_elsewhere() -> bool:
                    got = await geo_a(ports["dns"], SUBNETS["eu"])
                    return bool(got) and edge_ip["eu"] not in got

                # Within one health window plus reconcile slack (bench/edges measures the time).
                await eventually(
                    eu_clients_elsewhere, "DNS stops answering the dead edge-eu", seconds=STALE_AFTER + 8
                )
                last = await geo_a(ports["dns"], SUBNETS["eu"])

                async def follower_has_it() -> bool:
                    return await geo_a(ports["edge_dns"], SUBNETS["eu"]) == last

                await eventually(follower_has_it, "the edge's DNS server follows the feed")

            # The controller is gone. The edge's DNS server keeps answering the last records, and the
            # remaining edges keep serving from their own view and still fail over on their own checks.
            for cluster, subnet in SUBNETS.items():
                if cluster != "eu":
                    assert await geo_a(ports["edge_dns"], subnet) == {edge_ip[cluster]}
            assert await geo_a(ports["edge_dns"], SUBNETS["eu"]) == last
            assert await served_by(session, edge_ip["us"], edge_port) == "us"
            await backends["us"].stop()

            async def us_moves() -> bool:
                return await served_by(session, edge_ip["us"], edge_port) != "us"

            await eventually(us_moves, "edge-us fails over with no controller")
            assert await served_by(session, edge_ip["asia"], edge_port) == "asia"
    finally:
        for p in edges.values():
            if p.poll() is None:
                p.terminate()
        for c, p in edges.items():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.returncode not in (0, -signal.SIGKILL):
                print((tmp_path / f"edge-{c}.log").read_text())
