"""Geo routing: the client's location (X-Forwarded-For from a trusted peer) picks the nearest cluster."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from ingressfed.proxy.settings import GeoSettings
from tests.fakes.geoip_db import build_city_db

from .conftest import ASIA, EU, US, BackendServer, running_proxy


@pytest.fixture
def city_db(tmp_path: Path) -> str:
    return str(build_city_db(tmp_path))


async def _served_by(http: aiohttp.ClientSession, port: int, xff: str | None) -> str:
    headers = {"Host": "app.example.com"}
    if xff is not None:
        headers["X-Forwarded-For"] = xff
    async with http.get(f"http://127.0.0.1:{port}/", headers=headers) as resp:
        assert resp.status == 200
        return resp.headers["X-Served-By-Cluster"]


async def test_trusted_forwarded_for_selects_nearest_cluster(
    backends: dict[str, BackendServer], city_db: str
) -> None:
    geo = GeoSettings(database=city_db, trusted_proxies=("127.0.0.0/8",), default_order=(US.name,))
    async with running_proxy(backends, geo=geo) as proxy, aiohttp.ClientSession() as http:
        assert await _served_by(http, proxy.port, "81.2.69.10") == EU.name  # London
        assert await _served_by(http, proxy.port, "193.0.0.7") == EU.name  # Amsterdam
        assert await _served_by(http, proxy.port, "202.12.27.5") == ASIA.name  # Tokyo
        assert await _served_by(http, proxy.port, "2400:cb00::1") == ASIA.name  # Tokyo, IPv6
        assert await _served_by(http, proxy.port, "3.0.0.9") == US.name  # Ashburn
        # rightmost untrusted hop counts: a spoofed leftmost entry does not move the client
        assert await _served_by(http, proxy.port, "202.12.27.5, 81.2.69.10") == EU.name
        # unknown location -> the configured default order
        assert await _served_by(http, proxy.port, "10.1.2.3") == US.name
        assert await _served_by(http, proxy.port, None) == US.name


async def test_forwarded_for_from_untrusted_peer_is_ignored(
    backends: dict[str, BackendServer], city_db: str
) -> None:
    geo = GeoSettings(database=city_db, trusted_proxies=("10.0.0.0/8",), default_order=(US.name,))
    async with running_proxy(backends, geo=geo) as proxy, aiohttp.ClientSession() as http:
        assert await _served_by(http, proxy.port, "202.12.27.5") == US.name


async def test_nearest_unhealthy_cluster_is_skipped(backends: dict[str, BackendServer], city_db: str) -> None:
    geo = GeoSettings(database=city_db, trusted_proxies=("127.0.0.0/8",))
    async with running_proxy(backends, geo=geo) as proxy, aiohttp.ClientSession() as http:
        eu_backend = backends[EU.name].backend()
        for _ in range(3):
            proxy.engine.router.record_request(eu_backend, failed=True)
        assert proxy.health()[EU.name] is False
        # London's next nearest is us-east1 (about 6,800 km) before asia-east1 (about 9,800 km)
        assert await _served_by(http, proxy.port, "81.2.69.10") == US.name


# The case from issue 11: a trusted load balancer appends only X-Forwarded-For; the client adds its
# own Forwarded. Exactly the configured header decides, and the backend sees that same chain.
@pytest.mark.parametrize(
    ("header", "xff", "forwarded", "cluster", "backend_sees"),
    [
        (
            "X-Forwarded-For",
            "8.8.8.8, 81.2.69.160",
            "for=202.12.27.5",
            EU.name,
            ("8.8.8.8, 81.2.69.160, 127.0.0.1", None),
        ),
        ("X-Forwarded-For", None, "for=202.12.27.5", US.name, ("127.0.0.1", None)),
        (
            "Forwarded",
            "81.2.69.160",
            "for=202.12.27.5",
            ASIA.name,
            (None, "for=202.12.27.5, for=127.0.0.1;proto=http"),
        ),
        ("Forwarded", "81.2.69.160", None, US.name, (None, "for=127.0.0.1;proto=http")),
        (
            "Forwarded",
            None,
            'for="[2400:cb00::1]:443"',
            ASIA.name,
            (None, 'for="[2400:cb00::1]:443", for=127.0.0.1;proto=http'),
        ),
    ],
)
async def test_one_trusted_forwarding_header_decides(
    backends: dict[str, BackendServer],
    city_db: str,
    header: str,
    xff: str | None,
    forwarded: str | None,
    cluster: str,
    backend_sees: tuple[str | None, str | None],
) -> None:
    geo = GeoSettings(
        database=city_db,
        trusted_proxies=("127.0.0.0/8",),
        default_order=(US.name,),
        client_address_header="Forwarded" if header == "Forwarded" else "X-Forwarded-For",
    )
    headers = {"Host": "app.example.com"}
    if xff is not None:
        headers["X-Forwarded-For"] = xff
    if forwarded is not None:
        headers["Forwarded"] = forwarded
    async with (
        running_proxy(backends, geo=geo) as proxy,
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{proxy.port}/", headers=headers) as resp,
    ):
        assert resp.status == 200
        served = resp.headers["X-Served-By-Cluster"]
    assert served == cluster
    seen = backends[cluster].seen[-1]["headers"]
    assert (seen.get("X-Forwarded-For"), seen.get("Forwarded")) == backend_sees
