"""Under load: a backend killed, or the route table swapped, fails no GET."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import aiohttp

from ingressfed.model import Route
from ingressfed.proxy.settings import GeoSettings
from tests.fakes.geoip_db import build_city_db

from .conftest import ASIA, EU, US, BackendServer, running_proxy

CLIENTS = 8
PER_CLIENT = 250  # 2000 requests in all


async def _load(port: int, *, xff: str, progress: list[str], failures: list[str]) -> None:
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as http:
        for _ in range(PER_CLIENT):
            try:
                async with http.get(
                    f"http://127.0.0.1:{port}/load",
                    headers={"Host": "app.example.com", "X-Forwarded-For": xff},
                ) as resp:
                    await resp.read()
                    if resp.status != 200:
                        failures.append(f"status {resp.status}")
                    progress.append(resp.headers.get("X-Served-By-Cluster", ""))
            except aiohttp.ClientError as exc:
                failures.append(repr(exc))


async def test_backend_killed_under_load_fails_no_request(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    geo = GeoSettings(database=str(build_city_db(tmp_path)), trusted_proxies=("127.0.0.0/8",))
    progress: list[str] = []
    failures: list[str] = []
    async with running_proxy(backends, geo=geo) as proxy:
        clients = [
            asyncio.create_task(_load(proxy.port, xff="81.2.69.10", progress=progress, failures=failures))
            for _ in range(CLIENTS)
        ]
        async with asyncio.timeout(60):
            while len(progress) < 400:
                await asyncio.sleep(0.01)
            await backends[EU.name].stop()  # the nearest cluster for London dies mid-run
            killed_at = len(progress)
            await asyncio.gather(*clients)
    assert failures == []
    assert len(progress) == CLIENTS * PER_CLIENT
    before, after = Counter(progress[:killed_at]), Counter(progress[killed_at + CLIENTS :])
    assert before[EU.name] > 0
    assert set(after) == {US.name}  # the next nearest to London


async def test_route_table_swaps_under_load_fail_no_request(backends: dict[str, BackendServer]) -> None:
    us, eu, asia = backends[US.name], backends[EU.name], backends[ASIA.name]
    tables = [
        [Route(host="app.example.com", path="/", backends=(us.backend(), eu.backend()))],
        [
            Route(host="app.example.com", path="/", backends=(asia.backend(),)),
            Route(host="app.example.com", path="/load", backends=(asia.backend(), eu.backend())),
        ],
    ]
    progress: list[str] = []
    failures: list[str] = []
    async with running_proxy(backends, routes=tables[0]) as proxy:
        clients = [
            asyncio.create_task(_load(proxy.port, xff="", progress=progress, failures=failures))
            for _ in range(CLIENTS)
        ]
        swaps = 0
        async with asyncio.timeout(60):
            while not all(c.done() for c in clients):
                swaps += 1
                proxy.update(tables[swaps % 2], [US, EU, ASIA])
                await asyncio.sleep(0.005)
            await asyncio.gather(*clients)
    assert failures == []
    assert len(progress) == CLIENTS * PER_CLIENT
    assert swaps > 10
    assert {EU.name, ASIA.name} <= set(progress)  # both tables served traffic (names order them)


async def test_request_parsed_before_a_swap_keeps_its_route(backends: dict[str, BackendServer]) -> None:
    us, eu, asia = backends[US.name], backends[EU.name], backends[ASIA.name]
    before = [Route(host="app.example.com", backends=(us.backend(),))]
    after = [
        Route(host="aaa.example.com", backends=(asia.backend(),)),  # takes the first slot of the new table
        Route(host="app.example.com", backends=(eu.backend(),)),
    ]
    async with running_proxy(backends, routes=before) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        # two pipelined requests: the first is held by the backend, the second waits in the proxy
        writer.write(
            b"GET /stream?n=2&size=10 HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
            b"GET /second HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n"
        )
        await asyncio.wait_for(us.first_sent.wait(), 5)
        await asyncio.sleep(0.05)
        proxy.update(after, [US, EU, ASIA])
        us.release.set()
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert answer.count(b"X-Served-By-Cluster: " + US.name.encode()) == 2
        assert [r["path"] for r in us.seen] == ["/stream?n=2&size=10", "/second"]
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{proxy.port}/"
            async with http.get(url, headers={"Host": "app.example.com"}) as resp:
                assert resp.headers["X-Served-By-Cluster"] == EU.name
