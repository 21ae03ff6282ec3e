"""Pure rules for hung and slow clusters: latency outliers, ejection of a slow backend, the
retry budget; and the budget on real sockets (a retry storm is cut short)."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import pytest

from ingressfed.model import Backend, Route
from ingressfed.proxy.budget import RetryBudget
from ingressfed.proxy.health import (
    BackendHealth,
    EjectionPolicy,
    eject,
    is_available,
    latency_outliers,
    observe_request,
    smoothed,
)
from ingressfed.proxy.settings import GeoSettings, RetrySettings, TimeoutSettings

from .conftest import EU, US, BackendServer, routes_for, running_proxy

P = EjectionPolicy(consecutive_failures=3, base_seconds=2.0, max_seconds=10.0)


@pytest.mark.parametrize(
    ("latencies", "expected"),
    [
        ({}, set()),
        ({"a": 3.0}, set()),  # nothing to compare with
        ({"a": 0.002, "b": 1.0}, {"b"}),  # the hung one of two
        ({"a": 0.002, "b": 0.003, "c": 0.004, "d": 2.0}, {"d"}),
        ({"a": 0.002, "b": 0.4}, set()),  # far above, but under the 0.5 s floor (a distant region)
        ({"a": 0.6, "b": 0.7, "c": 0.8}, set()),  # uniformly slow: nobody is an outlier
        ({"a": 0.1, "b": 0.1, "c": 0.9, "d": 0.95}, {"c", "d"}),  # at most half the fleet
        ({"a": 0.1, "b": 0.12, "c": 0.11, "d": 0.6}, {"d"}),  # 5.0x the others' median of 0.11
        ({"a": 0.1, "b": 0.12, "c": 0.11, "d": 0.54}, set()),  # 4.9x: under the factor
    ],
)
def test_latency_outliers(latencies: dict[str, float], expected: set[str]) -> None:
    assert latency_outliers(latencies, factor=4.99, floor=0.5) == expected


def test_smoothed_latency_moves_towards_new_samples() -> None:
    assert smoothed(None, 1.0, alpha=0.3) == 1.0
    assert smoothed(1.0, 0.0, alpha=0.3) == pytest.approx(0.7)


def test_eject_doubles_its_backoff_and_a_late_success_does_not_end_it() -> None:
    first = eject(BackendHealth(), now=100.0, policy=P)
    assert first.ejected_until == 102.0 and not is_available(first, now=101.0)
    # a request sent before the ejection that succeeds late must not bring the backend back
    assert observe_request(first, False, now=101.0, policy=P) == first
    second = eject(first, now=103.0, policy=P)
    assert second.ejected_until == 107.0
    assert observe_request(second, False, now=108.0, policy=P) == BackendHealth()


def test_retry_budget_is_a_fraction_of_the_exchanges_in_flight() -> None:
    budget = RetryBudget(ratio=0.2, min_concurrent=2)
    budget.active = 5
    assert budget.limit() == 2.0  # the minimum while little is in flight
    budget.retrying = 1
    assert budget.allows()
    budget.retrying = 2
    assert not budget.allows()
    budget.active = 100
    assert budget.limit() == 20.0
    budget.retrying = 19
    assert budget.allows()
    budget.retrying = 20
    assert not budget.allows()
    assert budget.refused == 2


async def test_retry_budget_stops_a_retry_storm(backends: dict[str, BackendServer]) -> None:
    """Every cluster answers 503: without a budget each GET would be tried on all three clusters.
    With no retry allowed (ratio 0, minimum 0) each is tried once and gets its 503."""
    for server in backends.values():
        server.status_override = 503

    async with (
        running_proxy(
            backends,
            routes=[routes_for("app.example.com", backends)],
            retries=RetrySettings(budget_ratio=0.0, min_concurrent=0),
        ) as proxy,
        aiohttp.ClientSession() as http,
    ):
        statuses = []
        for _ in range(5):
            async with http.get(f"http://127.0.0.1:{proxy.port}/", headers={"Host": "app.example.com"}) as r:
                statuses.append(r.status)
        refused = proxy.metrics.registry.get_sample_value("ingressfed_proxy_retry_budget_exhausted_total")
    tried = sum(len(s.seen) for s in backends.values())
    assert statuses == [503] * 5
    assert tried == 5  # one attempt each, no retries
    assert refused == 5


async def test_per_try_timeouts_over_the_budget_wait_for_room_instead_of_failing(
    backends: dict[str, BackendServer],
) -> None:
    """Three GETs hang on one backend together, so their per-try timeouts come due in one tick,
    and the budget lets one retry be in flight at a time. Each still fails over, one tick after
    another as the retry before it finishes; none is answered 504 for the budget's sake."""
    held: list[asyncio.StreamWriter] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accepts, reads, never answers: a frozen backend
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass

    hung = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = hung.sockets[0].getsockname()[1]
    route = Route(
        host="app.example.com",
        backends=(Backend(cluster=US.name, host="127.0.0.1", port=port), backends[EU.name].backend()),
    )
    try:
        async with (
            running_proxy(
                backends,
                routes=[route],
                timeouts=TimeoutSettings(per_try=0.3),
                retries=RetrySettings(budget_ratio=0.0, min_concurrent=1),
                geo=GeoSettings(default_order=(US.name, EU.name)),
            ) as proxy,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
        ):

            async def get() -> tuple[int, str]:
                url = f"http://127.0.0.1:{proxy.port}/"
                async with http.get(url, headers={"Host": "app.example.com"}) as resp:
                    return resp.status, resp.headers.get("X-Served-By-Cluster", "")

            answers = await asyncio.wait_for(asyncio.gather(get(), get(), get()), 10)
            metric = proxy.metrics.registry.get_sample_value
            refused = metric("ingressfed_proxy_retry_budget_exhausted_total")
            timeouts = metric("ingressfed_proxy_per_try_timeouts_total", {"cluster": US.name})
    finally:
        for writer in held:
            writer.close()
        hung.close()
        await hung.wait_closed()
    assert answers == [(200, EU.name)] * 3
    assert len(backends[EU.name].seen) == 3
    assert len(held) == 3  # each was really tried on the hung backend first
    assert timeouts == 3
    assert refused is not None and refused >= 1  # the budget did hold retries back


def test_one_slow_answer_does_not_eject_but_a_run_of_them_does() -> None:
    from ingressfed.model import Backend, Cluster, Route
    from ingressfed.proxy.clock import Clock
    from ingressfed.proxy.health import CheckThresholds
    from ingressfed.proxy.metrics import ProxyMetrics
    from ingressfed.proxy.routing import Router
    from ingressfed.proxy.table import build_table

    clusters = [Cluster(name="a", region="r", zone="z"), Cluster(name="b", region="r", zone="z")]
    fast, slow = Backend("a", "10.0.0.1", 80), Backend("b", "10.0.0.2", 80)
    router = Router(
        clock=Clock(100.0, lambda: 100.0),
        metrics=ProxyMetrics(),
        locator=None,
        trusted_proxies=(),
        client_header="X-Forwarded-For",
        default_order=(),
        thresholds=CheckThresholds(),
        ejection=P,
    )
    router.swap(
        build_table(
            [Route("h.example.com", backends=(fast, slow))], clusters, version=1, locate=lambda c: None
        )
    )
    for _ in range(5):
        router.record_latency(fast, 0.002)
    router.record_latency(slow, 10.0)  # one long poll
    router.tick(100.25)
    assert slow in router.available
    router.record_latency(slow, 0.002)
    router.record_latency(slow, 2.0)
    router.record_latency(slow, 2.0)
    router.tick(100.5)
    assert slow in router.available  # two in a row
    router.record_latency(slow, 2.0)
    router.tick(100.75)
    assert slow not in router.available and fast in router.available
