"""Backend health: the pure state machine, active checks, the health hook, admin endpoints, drain."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import pytest

from ingressfed.proxy.health import (
    BackendHealth,
    CheckThresholds,
    EjectionPolicy,
    is_available,
    observe_check,
    observe_request,
)
from ingressfed.proxy.server import ProxyServer
from ingressfed.proxy.settings import HealthCheckSettings

from .conftest import EU, US, BackendServer, eventually, routes_for, running_proxy, settings

T = CheckThresholds(unhealthy=2, healthy=2)
P = EjectionPolicy(consecutive_failures=3, base_seconds=2.0, max_seconds=10.0)


def _checks(outcomes: list[bool]) -> list[bool]:
    state = BackendHealth()
    ups = []
    for i, ok in enumerate(outcomes):
        state = observe_check(state, ok, now=float(i), thresholds=T)
        ups.append(state.checked_up)
    return ups


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([True, True], [True, True]),
        ([False], [True]),  # one failure is not enough
        ([False, False], [True, False]),
        ([False, True, False], [True, True, True]),  # not consecutive
        ([False, False, True], [True, False, False]),  # one success is not enough to come back
        ([False, False, True, True], [True, False, False, True]),
        ([False, False, True, False, True, True], [True, False, False, False, False, True]),
    ],
)
def test_active_check_thresholds(outcomes: list[bool], expected: list[bool]) -> None:
    assert _checks(outcomes) == expected


def test_passive_ejection_backoff_and_readmission() -> None:
    s = BackendHealth()
    s = observe_request(s, True, now=0.0, policy=P)
    s = observe_request(s, True, now=0.1, policy=P)
    assert is_available(s, now=0.2)
    s = observe_request(s, True, now=0.2, policy=P)
    assert s.ejected_until == pytest.approx(2.2)
    assert not is_available(s, now=2.1)
    assert observe_request(s, True, now=1.0, policy=P) is s  # late results while out change nothing
    assert is_available(s, now=2.2)
    # probation: one failure after re-admission ejects again, for twice as long
    s = observe_request(s, True, now=3.0, policy=P)
    assert s.ejected_until == pytest.approx(7.0)
    s = observe_request(s, True, now=8.0, policy=P)
    assert s.ejected_until == pytest.approx(16.0)
    s = observe_request(s, True, now=17.0, policy=P)
    assert s.ejected_until == pytest.approx(27.0)  # 16 s capped at max_seconds
    s = observe_request(s, False, now=30.0, policy=P)
    assert s == BackendHealth()  # a success clears the record
    assert observe_request(s, False, now=31.0, policy=P) is s


async def test_active_checks_take_a_cluster_out_and_back_and_notify(
    backends: dict[str, BackendServer],
) -> None:
    changes: list[tuple[str, bool]] = []
    checks = HealthCheckSettings(interval=0.05, timeout=0.5)
    routes = [routes_for("app.example.com", {k: v for k, v in backends.items() if k in (US.name, EU.name)})]
    async with running_proxy(backends, routes=routes, health_check=checks) as proxy:
        proxy.add_health_listener(lambda cluster, healthy: changes.append((cluster, healthy)))
        backends[EU.name].health_status = 500
        await eventually(lambda: proxy.health().get(EU.name) is False)
        assert changes[-1] == (EU.name, False)
        async with aiohttp.ClientSession() as http:
            for _ in range(5):
                async with http.get(
                    f"http://127.0.0.1:{proxy.port}/", headers={"Host": "app.example.com"}
                ) as r:
                    assert r.headers["X-Served-By-Cluster"] == US.name
        backends[EU.name].health_status = 404  # an answering ingress without that path is alive
        await eventually(lambda: proxy.health().get(EU.name) is True)
        assert changes[-1] == (EU.name, True)
        assert proxy.health() == {US.name: True, EU.name: True}
        assert set(backends[EU.name].health_hosts) == {"app.example.com"}  # probes carry a served host


async def test_admin_endpoints(backends: dict[str, BackendServer]) -> None:
    async with ProxyServer(settings()) as proxy, aiohttp.ClientSession() as http:
        admin = f"http://127.0.0.1:{proxy.admin_port}"
        async with http.get(admin + "/healthz") as r:
            assert r.status == 200
        async with http.get(admin + "/readyz") as r:
            assert r.status == 503  # no routing table yet
        proxy.update([routes_for("app.example.com", backends)], [US, EU])  # ASIA not a known cluster
        async with http.get(admin + "/readyz") as r:
            assert r.status == 200
        async with http.get(f"http://127.0.0.1:{proxy.port}/", headers={"Host": "app.example.com"}) as r:
            assert r.status == 200
        async with http.get(f"http://127.0.0.1:{proxy.port}/", headers={"Host": "nope.example.com"}) as r:
            assert r.status == 404
        async with http.get(admin + "/metrics") as r:
            text = await r.text()
        assert 'ingressfed_proxy_requests_total{cluster="",code="404"} 1.0' in text
        assert "ingressfed_proxy_upstream_latency_seconds_bucket" in text
        assert "ingressfed_proxy_active_connections" in text
        async with http.get(admin + "/routes") as r:
            view = await r.json()
        assert view["routes"][0]["host"] == "app.example.com"
        assert {b["cluster"] for b in view["routes"][0]["backends"]} == {US.name, EU.name}


async def test_drain_finishes_in_flight_requests_and_refuses_new_ones(
    backends: dict[str, BackendServer],
) -> None:
    us = backends[US.name]
    routes = [routes_for("app.example.com", {US.name: us})]
    async with running_proxy(backends, routes=routes) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"GET /stream?n=3&size=10 HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
        await asyncio.wait_for(us.first_sent.wait(), 5)
        drain = asyncio.create_task(proxy.drain(grace=10))
        await asyncio.sleep(0.1)
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", proxy.port)
        assert not drain.done()
        us.release.set()
        # read() returns at EOF: the proxy closes the connection once the response is complete
        answer = await asyncio.wait_for(reader.read(), 5)
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert answer.endswith(b"0\r\n\r\n")
        await asyncio.wait_for(drain, 5)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def test_admin_port_zero_is_reported_on_uvloop() -> None:
    """The CLI runs the proxy on uvloop, whose Server is no asyncio.Server: the bound admin port
    must still be found (it stayed 0, so /healthz was unreachable at the port the proxy reported)."""
    import uvloop

    async def main() -> tuple[int | None, int]:
        async with (
            ProxyServer(settings()) as proxy,
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{proxy.admin_port}/healthz") as r,
        ):
            return proxy.admin_port, r.status

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        port, status = runner.run(main())
    assert port not in (None, 0)
    assert status == 200
