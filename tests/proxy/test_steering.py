"""Steering policies through the proxy on real sockets: failover order, weighted split, capacity and rate
spill-over, cookie affinity (kept across table swaps, dropped when its cluster goes down), and a
route's own policy winning over the proxy's default."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace

import aiohttp

from ingressfed.model import Route, Steering, SteeringKind
from ingressfed.proxy.settings import GeoSettings

from .conftest import ASIA, EU, US, BackendServer, routes_for, running_proxy

HOST = "app.example.com"


async def _get(
    http: aiohttp.ClientSession, port: int, path: str = "/", **headers: str
) -> aiohttp.ClientResponse:
    async with http.get(f"http://127.0.0.1:{port}{path}", headers={"Host": HOST, **headers}) as resp:
        await resp.read()
        return resp


def _route(backends: dict[str, BackendServer], steering: Steering | None) -> list[Route]:
    return [replace(routes_for(HOST, backends), steering=steering)]


NEAREST_US = GeoSettings(default_order=(US.name, EU.name, ASIA.name))  # every client "near" US


async def test_failover_order_whoever_the_client(backends: dict[str, BackendServer]) -> None:
    steering = Steering(kind=SteeringKind.FAILOVER, order=(ASIA.name, EU.name))
    async with (
        running_proxy(backends, routes=_route(backends, steering), geo=NEAREST_US) as proxy,
        aiohttp.ClientSession() as http,
    ):
        first = (await _get(http, proxy.port)).headers["X-Served-By-Cluster"]
        await backends[ASIA.name].stop()
        second = (await _get(http, proxy.port)).headers["X-Served-By-Cluster"]
    assert (first, second) == (ASIA.name, EU.name)


async def test_weighted_split(backends: dict[str, BackendServer]) -> None:
    steering = Steering(kind=SteeringKind.WEIGHTED, weights=((EU.name, 50), (US.name, 50)))
    async with (
        running_proxy(backends, routes=_route(backends, steering), geo=NEAREST_US) as proxy,
        aiohttp.ClientSession() as http,
    ):
        served = Counter([(await _get(http, proxy.port)).headers["X-Served-By-Cluster"] for _ in range(200)])
    # 200 draws at 50/50: under 40 on either side has a probability of about 1e-18
    assert set(served) == {EU.name, US.name}
    assert min(served.values()) > 40


async def test_a_route_policy_wins_over_the_proxy_default(backends: dict[str, BackendServer]) -> None:
    default = Steering(kind=SteeringKind.FAILOVER, order=(EU.name,))
    own = Steering(kind=SteeringKind.FAILOVER, order=(ASIA.name,))
    routes = [*_route(backends, None), replace(routes_for(HOST, backends, path="/own"), steering=own)]
    async with (
        running_proxy(backends, routes=routes, geo=NEAREST_US, steering=default) as proxy,
        aiohttp.ClientSession() as http,
    ):
        plain = (await _get(http, proxy.port, "/x")).headers["X-Served-By-Cluster"]
        annotated = (await _get(http, proxy.port, "/own/x")).headers["X-Served-By-Cluster"]
    assert (plain, annotated) == (EU.name, ASIA.name)


async def test_capacity_spills_the_excess_to_the_next_cluster(backends: dict[str, BackendServer]) -> None:
    steering = Steering(capacity=((US.name, 1),))
    us = backends[US.name]
    async with (
        running_proxy(backends, routes=_route(backends, steering), geo=NEAREST_US) as proxy,
        aiohttp.ClientSession() as http,
    ):
        # one request held open at US (its stream waits midway) fills US's capacity
        held = asyncio.create_task(_get(http, proxy.port, "/stream?n=2&size=10"))
        await asyncio.wait_for(us.first_sent.wait(), 5)
        spilled = (await _get(http, proxy.port)).headers["X-Served-By-Cluster"]
        us.release.set()
        assert (await held).status == 200
        back = (await _get(http, proxy.port)).headers["X-Served-By-Cluster"]
    assert (spilled, back) == (EU.name, US.name)


async def test_cookie_affinity_survives_swaps_and_falls_back(backends: dict[str, BackendServer]) -> None:
    steering = Steering(affinity_cookie="ingressfed-cluster")
    routes = _route(backends, steering)
    async with (
        running_proxy(backends, routes=routes, geo=NEAREST_US) as proxy,
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        first = await _get(http, proxy.port)
        assert first.headers["X-Served-By-Cluster"] == US.name
        assert first.headers["Set-Cookie"] == f"ingressfed-cluster={US.name}; Path=/; HttpOnly; SameSite=Lax"
        pinned = await _get(http, proxy.port, Cookie=f"a=1; ingressfed-cluster={ASIA.name}")
        assert pinned.headers["X-Served-By-Cluster"] == ASIA.name
        assert "Set-Cookie" not in pinned.headers  # already pinned there
        proxy.update(routes, [US, EU, ASIA])  # a table swap keeps the pin
        again = await _get(http, proxy.port, Cookie=f"ingressfed-cluster={ASIA.name}")
        assert again.headers["X-Served-By-Cluster"] == ASIA.name
        await backends[ASIA.name].stop()
        fallback = await _get(http, proxy.port, Cookie=f"ingressfed-cluster={ASIA.name}")
    assert fallback.headers["X-Served-By-Cluster"] == US.name
    assert fallback.headers["Set-Cookie"].startswith(f"ingressfed-cluster={US.name};")


async def test_max_rate_spills_the_excess_to_the_next_cluster(backends: dict[str, BackendServer]) -> None:
    """US takes at most 5 requests per second from this proxy; a burst's excess goes to EU, and
    nothing fails. The burst is sequential, so it takes well under a second here; if a slow
    machine stretched it over a second boundary, US would get a few more, never all of them."""
    steering = Steering(rates=((US.name, 5),))
    async with (
        running_proxy(backends, routes=_route(backends, steering), geo=NEAREST_US) as proxy,
        aiohttp.ClientSession() as http,
    ):
        answers = [await _get(http, proxy.port) for _ in range(30)]
    served = Counter(a.headers["X-Served-By-Cluster"] for a in answers)
    assert {a.status for a in answers} == {200}
    assert 5 <= served[US.name] <= 15
    assert served[EU.name] == 30 - served[US.name]
    assert [a.headers["X-Served-By-Cluster"] for a in answers[:5]] == [US.name] * 5  # room first
