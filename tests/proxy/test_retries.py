"""Retries on the next-ranked cluster: connect failures always, 502/503/504 only when safe."""

from __future__ import annotations

import socket

import aiohttp

from ingressfed.model import Backend, Route
from ingressfed.proxy.settings import GeoSettings

from .conftest import ASIA, EU, US, BackendServer, running_proxy

ORDER = GeoSettings(default_order=(US.name, EU.name, ASIA.name))


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _route(*backends: Backend) -> list[Route]:
    return [Route(host="app.example.com", path="/", backends=backends)]


async def _call(port: int, method: str, *, body: bytes | None = None) -> tuple[int, str, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method, f"http://127.0.0.1:{port}/r", data=body, headers={"Host": "app.example.com"}
        ) as resp,
    ):
        return resp.status, resp.headers.get("X-Served-By-Cluster", ""), dict(resp.headers)


async def test_connect_failure_moves_to_next_cluster_for_any_method(
    backends: dict[str, BackendServer],
) -> None:
    dead = Backend(cluster=US.name, host="127.0.0.1", port=_dead_port())
    routes = _route(dead, backends[EU.name].backend())
    async with running_proxy(backends, routes=routes, geo=ORDER) as proxy:
        assert (await _call(proxy.port, "GET"))[:2] == (200, EU.name)
        assert (await _call(proxy.port, "POST", body=b"payload"))[:2] == (200, EU.name)
    assert backends[EU.name].seen[-1]["body"] == b"payload"


async def test_503_is_retried_for_get_but_not_for_post_with_body(backends: dict[str, BackendServer]) -> None:
    us, eu = backends[US.name], backends[EU.name]
    us.status_override = 503
    async with running_proxy(backends, routes=_route(us.backend(), eu.backend()), geo=ORDER) as proxy:
        assert (await _call(proxy.port, "GET"))[:2] == (200, EU.name)
        assert [r["method"] for r in us.seen] == ["GET"]
        status, cluster, _ = await _call(proxy.port, "POST", body=b"once only")
        assert (status, cluster) == (503, US.name)
    assert [r["method"] for r in us.seen] == ["GET", "POST"]
    assert [r["method"] for r in eu.seen] == ["GET"]  # the POST went to one cluster only


async def test_no_healthy_cluster_is_503_with_retry_after(backends: dict[str, BackendServer]) -> None:
    dead = Backend(cluster=US.name, host="127.0.0.1", port=_dead_port())
    async with running_proxy(backends, routes=_route(dead)) as proxy:
        # consecutive connect errors eject the only backend (3 by default) ...
        for _ in range(3):
            assert (await _call(proxy.port, "GET"))[0] == 502
        # ... after which there is no healthy cluster at all
        status, _, headers = await _call(proxy.port, "GET")
        assert status == 503
        assert int(headers["Retry-After"]) > 0
        assert proxy.health() == {US.name: False}


async def test_consecutive_5xx_eject_a_backend_for_a_while(backends: dict[str, BackendServer]) -> None:
    us, eu = backends[US.name], backends[EU.name]
    us.status_override = 500
    async with running_proxy(backends, routes=_route(us.backend(), eu.backend()), geo=ORDER) as proxy:
        for _ in range(3):  # 500 is an answer, not retried; three in a row eject the backend
            assert (await _call(proxy.port, "GET"))[:2] == (500, US.name)
        assert proxy.health()[US.name] is False
        assert (await _call(proxy.port, "GET"))[:2] == (200, EU.name)
        assert (
            proxy.metrics.registry.get_sample_value("ingressfed_proxy_ejections_total", {"cluster": US.name})
            == 1
        )
