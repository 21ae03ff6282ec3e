"""proxy.workers: 2 on real sockets: both processes accept on one port (SO_REUSEPORT), a routing
table swap and an active-check verdict reach the worker, the admin listener's /metrics counts the
worker's requests too, and drain stops every process."""

from __future__ import annotations

import asyncio

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from ingressfed.model import Route
from ingressfed.proxy.server import ProxyServer
from ingressfed.proxy.settings import HealthCheckSettings
from ingressfed.status.wiring import counts_from_registry

from .conftest import ASIA, EU, US, BackendServer, eventually, routes_for, settings

CONNECTIONS = 60


async def _fresh_get(port: int, host: str) -> tuple[int, str]:
    """One request on its own connection (SO_REUSEPORT spreads connections, not requests)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    answer = await asyncio.wait_for(reader.read(-1), 10)
    writer.close()
    status = int(answer.split(b" ", 2)[1])
    cluster = ""
    for line in answer.split(b"\r\n"):
        if line.lower().startswith(b"x-served-by-cluster:"):
            cluster = line.split(b":", 1)[1].strip().decode()
    return status, cluster


async def _requests_reported(http: aiohttp.ClientSession, admin_port: int | None) -> float:
    async with http.get(f"http://127.0.0.1:{admin_port}/metrics") as resp:
        text = await resp.text()
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "ingressfed_proxy_requests_total"
    )


def _served_here(proxy: ProxyServer) -> int:
    return sum(n for (cluster, _), n in proxy.metrics.request_counts.items() if cluster)


async def test_two_workers_share_the_port_and_follow_swaps_and_checks(
    backends: dict[str, BackendServer],
) -> None:
    checks = HealthCheckSettings(interval=0.2, timeout=0.5, unhealthy_threshold=1, healthy_threshold=1)
    async with ProxyServer(settings(workers=2, health_check=checks)) as proxy:
        assert proxy.workers is not None
        proxy.update([routes_for("one.example.com", backends)], [US, EU, ASIA])

        sent = 0

        async def all_ok(host: str) -> list[tuple[int, str]]:
            nonlocal sent
            sent += CONNECTIONS
            return await asyncio.gather(*(_fresh_get(proxy.port, host) for _ in range(CONNECTIONS)))

        # the worker takes a moment to start (spawn re-imports everything: long on a busy machine)
        await eventually(lambda: proxy.workers is not None and proxy.workers.ready() == 1, timeout=120)
        # then the kernel spreads connections over both processes and every one of them is served
        async with asyncio.timeout(30):
            while True:
                before = _served_here(proxy)
                answers = await all_ok("one.example.com")
                here = _served_here(proxy) - before
                if all(status == 200 for status, _ in answers) and 0 < here < CONNECTIONS:
                    break
                await asyncio.sleep(0.2)

        # a swap reaches the worker: every connection, whichever process takes it, knows the new host
        proxy.update(
            [Route(host="two.example.com", backends=routes_for("x", backends).backends)], [US, EU, ASIA]
        )
        async with asyncio.timeout(30):  # a pipe message away; slow only on a busy machine
            while {s for s, _ in await all_ok("two.example.com")} != {200}:
                await asyncio.sleep(0.2)
        assert {s for s, _ in await all_ok("one.example.com")} == {404}

        # an active-check verdict of the primary reaches the worker: no process routes to ASIA
        backends[ASIA.name].health_status = 500
        await eventually(lambda: proxy.health().get(ASIA.name) is False, timeout=10)
        async with asyncio.timeout(30):  # the primary's next tick forwards the verdict
            while ASIA.name in {cluster for _, cluster in await all_ok("two.example.com")}:
                await asyncio.sleep(0.2)
        served = {cluster for _, cluster in await all_ok("two.example.com")}
        assert ASIA.name not in served and served

        # the admin listener's /metrics counts every request, whichever process served it
        assert 0 < _served_here(proxy) < sent  # the primary's own share is not all of it
        async with asyncio.timeout(30), aiohttp.ClientSession() as http:  # a worker reports each second
            while await _requests_reported(http, proxy.admin_port) != sent:
                await asyncio.sleep(0.2)
        # ... and so do the status page's request counts, which read the same collector
        assert sum(counts_from_registry(proxy.collector)().values()) == sent

        await proxy.drain(grace=2)
        await eventually(lambda: proxy.workers is not None and proxy.workers.alive() == 0, timeout=10)
        assert all(p.exitcode == 0 for p in proxy.workers.processes)
