"""Routing by Host and path, unknown hosts, foreign absolute-form targets, CONNECT."""

from __future__ import annotations

import aiohttp

from ingressfed.model import Route

from .conftest import ASIA, EU, US, BackendServer, raw_exchange, running_proxy


async def test_routes_by_host_and_longest_prefix(backends: dict[str, BackendServer]) -> None:
    us, eu, asia = backends[US.name], backends[EU.name], backends[ASIA.name]
    routes = [
        Route(host="app.example.com", path="/", backends=(us.backend(),)),
        Route(host="app.example.com", path="/api", backends=(eu.backend(),)),
        Route(host="app.example.com", path="/api/v2", path_type="Exact", backends=(asia.backend(),)),
        Route(host="other.example.com", path="/", backends=(asia.backend(),)),
    ]
    async with running_proxy(backends, routes=routes) as proxy, aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{proxy.port}"

        async def served_by(path: str, host: str) -> str:
            async with http.get(base + path, headers={"Host": host}) as resp:
                assert resp.status == 200
                return str(resp.headers["X-Served-By-Cluster"])

        assert await served_by("/", "app.example.com") == US.name
        assert await served_by("/apiary", "app.example.com") == US.name  # element-wise prefix
        assert await served_by("/api", "APP.Example.com:8080") == EU.name
        assert await served_by("/api/v1/x?q=1", "app.example.com") == EU.name
        assert await served_by("/api/v2", "app.example.com") == ASIA.name
        assert await served_by("/api/v2/more", "app.example.com") == EU.name
        assert await served_by("/anything", "other.example.com.") == ASIA.name
        assert eu.seen[-1]["path"] == "/api/v2/more"


async def test_unknown_host_is_404_and_nothing_forwarded(backends: dict[str, BackendServer]) -> None:
    async with running_proxy(backends) as proxy, aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{proxy.port}/"
        async with http.get(url, headers={"Host": "evil.example.net"}) as resp:
            assert resp.status == 404
    assert all(not s.seen for s in backends.values())


async def test_absolute_form_to_foreign_host_is_404(backends: dict[str, BackendServer]) -> None:
    async with running_proxy(backends) as proxy:
        answer = await raw_exchange(
            proxy.port,
            b"GET http://evil.example.net/steal HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
        )
        assert answer.startswith(b"HTTP/1.1 404 ")
        # absolute-form for a configured host is served (authority wins over Host)
        answer = await raw_exchange(
            proxy.port,
            b"GET http://app.example.com/ok?x=1 HTTP/1.1\r\n"
            b"Host: evil.example.net\r\nConnection: close\r\n\r\n",
        )
        assert answer.startswith(b"HTTP/1.1 200 ")
    seen = [r for s in backends.values() for r in s.seen]
    assert [r["path"] for r in seen] == ["/ok?x=1"]


async def test_connect_is_405(backends: dict[str, BackendServer]) -> None:
    async with running_proxy(backends) as proxy:
        answer = await raw_exchange(
            proxy.port, b"CONNECT app.example.com:443 HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 405 ")
    assert all(not s.seen for s in backends.values())


async def test_keep_alive_reuses_client_and_upstream_connections(backends: dict[str, BackendServer]) -> None:
    async with running_proxy(backends) as proxy:
        request = b"GET /n HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
        answer = await raw_exchange(
            proxy.port,
            request * 3 + b"GET /last HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n",
        )
        assert answer.count(b"HTTP/1.1 200 ") == 4
        served = [s for s in backends.values() if s.seen]
        assert len(served) == 1
        # one pooled upstream connection carried all four requests
        peers = {r["headers"].get("X-Forwarded-For") for r in served[0].seen}
        assert peers == {"127.0.0.1"}


async def test_dot_segments_cannot_escape_a_route(backends: dict[str, BackendServer]) -> None:
    routes = [Route(host="app.example.com", path="/api", backends=(backends[US.name].backend(),))]
    async with running_proxy(backends, routes=routes) as proxy:
        for path in (b"/api/../admin", b"/api/./x", b"/api/%2e%2e/admin", b"/api/.%2E/admin", b"/api/.."):
            answer = await raw_exchange(
                proxy.port, b"GET " + path + b" HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
            )
            assert answer.startswith(b"HTTP/1.1 400 "), path
        answer = await raw_exchange(
            proxy.port,
            b"GET /api/v1.2/file.txt?x=../y HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n",
        )
        assert answer.startswith(b"HTTP/1.1 200 ")
    assert [r["path"] for r in backends[US.name].seen] == ["/api/v1.2/file.txt?x=../y"]
