"""A proxy's own status on its admin listener: its routing table, its own health checks, its traffic."""

from __future__ import annotations

import asyncio

import aiohttp

from ingressfed.proxy.server import ProxyServer
from ingressfed.proxy.settings import HealthCheckSettings
from ingressfed.status.proxyview import attach_proxy_status
from tests.proxy.conftest import ASIA, EU, US, BackendServer, backends, routes_for, settings

__all__ = ["backends"]


async def test_proxy_serves_its_own_view(backends: dict[str, BackendServer]) -> None:
    proxy = ProxyServer(
        settings(health_check=HealthCheckSettings(interval=0.1, timeout=0.5, unhealthy_threshold=1))
    )
    attach_proxy_status(proxy, token="proxy-token")
    auth = {"Authorization": "Bearer proxy-token"}
    async with proxy, aiohttp.ClientSession() as s:
        proxy.update([routes_for("app.example.com", backends)], [US, EU, ASIA])
        admin = f"http://127.0.0.1:{proxy.admin_port}"
        async with s.get(f"{admin}/v1/status/clusters") as r:
            assert r.status == 401
        async with s.get(f"{admin}/v1/status", headers=auth) as r:
            assert r.status == 200  # the first sample of the request counters
        for _ in range(5):
            async with s.get(f"http://127.0.0.1:{proxy.port}/", headers={"Host": "app.example.com"}) as r:
                assert r.status == 200
        await asyncio.sleep(1.1)
        async with s.get(f"{admin}/v1/status/clusters", headers=auth) as r:
            rates = {c["name"]: (c["requestsPerSecond"], c["errorRate"]) for c in (await r.json())["items"]}
        # Its own counters: five requests answered 200 in about a second, by one cluster.
        assert sum(rps for rps, _ in rates.values()) > 0
        assert {err for rps, err in rates.values() if rps} == {0.0}
        await backends[EU.name].stop()

        async def eu_health() -> str:
            async with s.get(f"{admin}/v1/status", headers=auth) as r:
                doc = await r.json()
            assert doc["role"] == "proxy" and doc["counts"]["records"] == 0
            return next(c["health"] for c in doc["clusters"] if c["name"] == EU.name)

        async with asyncio.timeout(10):
            while await eu_health() != "unhealthy":
                await asyncio.sleep(0.1)
        async with s.get(f"{admin}/v1/status", headers=auth) as r:
            doc = await r.json()
        assert any(e["kind"] == "DataPlaneDown" and e["object"] == EU.name for e in doc["events"])
        # Its table came after it started: it saw the clusters arrive (within its one-second tick).
        joined = {e["object"] for e in doc["events"] if e["kind"] == "ClusterJoined"}
        assert joined == {US.name, EU.name, ASIA.name}
        times = {c["name"]: c["lastTransition"] for c in doc["clusters"]}
        assert times[EU.name] > times[US.name]
        async with s.get(f"{admin}/v1/status/routes", headers=auth) as r:
            routes = (await r.json())["items"]
        assert routes[0]["host"] == "app.example.com"
        async with s.get(f"{admin}/status", headers=auth) as r:
            assert r.status == 200 and "script-src 'self'" in r.headers["Content-Security-Policy"]
