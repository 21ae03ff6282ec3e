"""Hop-by-hop removal, X-Forwarded-*/Via, the cluster header, and size limits (431/413)."""

from __future__ import annotations

import json

import aiohttp

from .conftest import BackendServer, raw_exchange, running_proxy


def _split(answer: bytes) -> tuple[bytes, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0].encode(), headers, body


async def test_request_hop_by_hop_removed_and_forwarding_headers_added(
    backends: dict[str, BackendServer],
) -> None:
    async with running_proxy(backends) as proxy:
        answer = await raw_exchange(
            proxy.port,
            b"GET /h HTTP/1.1\r\nHost: app.example.com\r\n"
            b"Connection: close, X-Secret-Hop\r\nX-Secret-Hop: 1\r\nKeep-Alive: timeout=5\r\n"
            b"Proxy-Authorization: Basic Zm9vOmJhcg==\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n"
            b"Trailer: X-T\r\nUpgrade: h2c\r\nX-Forwarded-For: 203.0.113.7\r\nVia: 1.0 corp-proxy\r\n"
            b"X-Forwarded-Proto: https\r\nX-Forwarded-Host: spoofed.example.org\r\n"
            b"X-End-To-End: kept\r\n\r\n",
        )
    status, headers, body = _split(answer)
    assert status.startswith(b"HTTP/1.1 200")
    seen = {k.lower(): v for k, v in json.loads(body)["headers"].items()}
    for hop in (
        "x-secret-hop",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    ):
        assert hop not in seen, hop
    assert seen.get("connection", "keep-alive").lower() != "close"  # the client's Connection is not forwarded
    assert seen["x-end-to-end"] == "kept"
    assert seen["host"] == "app.example.com"
    # the peer is not a trusted proxy: its claims are kept in the chain but not believed
    assert seen["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == "app.example.com"
    assert seen["via"] == "1.0 corp-proxy, 1.1 ingressfed"
    assert headers["via"] == "1.1 ingressfed"
    assert headers["x-served-by-cluster"].startswith("cluster-")
    assert headers["connection"] == "close"


async def test_trusted_peer_keeps_forwarded_proto_and_host(backends: dict[str, BackendServer]) -> None:
    async with (
        running_proxy(backends, geo=_geo(trusted=("127.0.0.0/8",))) as proxy,
        aiohttp.ClientSession() as http,
    ):
        headers = {
            "Host": "app.example.com",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "www.example.com",
        }
        async with http.get(f"http://127.0.0.1:{proxy.port}/t", headers=headers) as resp:
            seen = (await resp.json())["headers"]
    assert seen["X-Forwarded-Proto"] == "https"
    assert seen["X-Forwarded-Host"] == "www.example.com"


async def test_response_hop_by_hop_removed_and_cluster_header_configurable(
    backends: dict[str, BackendServer],
) -> None:
    for server in backends.values():
        server.status_override = 200
    async with running_proxy(backends, cluster_header="") as proxy, aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{proxy.port}/"
        async with http.get(url, headers={"Host": "app.example.com"}) as resp:
            assert resp.status == 200
            assert "X-Served-By-Cluster" not in resp.headers
            assert resp.headers["Via"] == "1.1 ingressfed"
            assert "Keep-Alive" not in resp.headers


async def test_header_section_too_large_is_431_and_not_forwarded(backends: dict[str, BackendServer]) -> None:
    async with running_proxy(backends) as proxy:
        big = b"X-Big: " + b"a" * 20000 + b"\r\n"
        answer = await raw_exchange(
            proxy.port, b"GET / HTTP/1.1\r\nHost: app.example.com\r\n" + big + b"\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 431 ")
        many = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(200))
        answer = await raw_exchange(
            proxy.port, b"GET / HTTP/1.1\r\nHost: app.example.com\r\n" + many + b"\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 431 ")
    assert all(not s.seen for s in backends.values())


async def test_body_too_large_is_413(backends: dict[str, BackendServer]) -> None:
    async with running_proxy(backends, limits=_limits(max_body=1000)) as proxy:
        answer = await raw_exchange(
            proxy.port,
            b"POST /u HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 5000\r\n\r\n" + b"a" * 5000,
        )
        assert answer.startswith(b"HTTP/1.1 413 ")
        assert all(not s.seen for s in backends.values())
        # a chunked body is counted as it streams
        chunk = b"%x\r\n%s\r\n" % (600, b"b" * 600)
        answer = await raw_exchange(
            proxy.port,
            b"POST /u HTTP/1.1\r\nHost: app.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunk * 3
            + b"0\r\n\r\n",
        )
        assert answer.startswith(b"HTTP/1.1 413 ")
        # within the limit is fine
        answer = await raw_exchange(
            proxy.port,
            b"POST /ok HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 10\r\n"
            b"Connection: close\r\n\r\n0123456789",
        )
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert json.loads(_split(answer)[2])["body_len"] == 10


def _limits(*, max_body: int):  # type: ignore[no-untyped-def]
    from ingressfed.proxy.settings import LimitSettings

    return LimitSettings(max_body_bytes=max_body)


def _geo(*, trusted: tuple[str, ...]):  # type: ignore[no-untyped-def]
    from ingressfed.proxy.settings import GeoSettings

    return GeoSettings(trusted_proxies=trusted)
