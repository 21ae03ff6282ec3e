"""A hung cluster (its backend process frozen with SIGSTOP, not refusing) under a bounded
fixed-rate load: no idempotent request fails and none takes longer than the per-try timeout + 1 s.
Before per-try timeouts, requests to the frozen cluster waited for the 30 s read timeout (504)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from ingressfed.model import Backend, Route
from ingressfed.proxy.settings import GeoSettings, HealthCheckSettings, TimeoutSettings

from .conftest import EU, US, BackendServer, running_proxy

PER_TRY = 1.0
RATE = 25  # requests per second, fixed
SECONDS = 6.0
FREEZE_AT, THAW_AT = 1.0, 4.0
SCRIPT = Path(__file__).with_name("process_backend.py")


@pytest.fixture
async def processes() -> AsyncIterator[dict[str, tuple[asyncio.subprocess.Process, int]]]:
    started: dict[str, tuple[asyncio.subprocess.Process, int]] = {}
    try:
        for cluster in (US, EU):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(SCRIPT), cluster.name, stdout=asyncio.subprocess.PIPE
            )
            assert proc.stdout is not None
            port = int((await asyncio.wait_for(proc.stdout.readline(), 10)).strip())
            started[cluster.name] = (proc, port)
        yield started
    finally:
        for proc, _ in started.values():
            if proc.returncode is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
                await proc.wait()


async def test_frozen_backend_under_load_fails_no_idempotent_request(
    backends: dict[str, BackendServer],
    processes: dict[str, tuple[asyncio.subprocess.Process, int]],
) -> None:
    route = Route(
        host="app.example.com",
        backends=tuple(
            Backend(cluster=name, host="127.0.0.1", port=port) for name, (_, port) in processes.items()
        ),
    )
    results: list[tuple[float, float, int, str]] = []  # (sent at, seconds, status, cluster)
    failures: list[str] = []
    loop = asyncio.get_running_loop()

    async def one(http: aiohttp.ClientSession, port: int, sent: float) -> None:
        try:
            async with http.get(f"http://127.0.0.1:{port}/item", headers={"Host": "app.example.com"}) as resp:
                body = await resp.read()
                results.append((sent, loop.time() - sent, resp.status, body.decode()))
                if resp.status != 200:
                    failures.append(f"{resp.status} at +{sent:.2f}s")
        except aiohttp.ClientError as exc:
            failures.append(f"{exc!r} at +{sent:.2f}s")

    us_pid = processes[US.name][0].pid
    async with (
        running_proxy(
            backends,
            routes=[route],
            timeouts=TimeoutSettings(per_try=PER_TRY),
            health_check=HealthCheckSettings(interval=0.5, timeout=0.3),
            geo=GeoSettings(default_order=(US.name, EU.name)),
        ) as proxy,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
    ):
        start = loop.time()
        tasks = []
        frozen = thawed = False
        for i in range(int(RATE * SECONDS)):
            due = start + i / RATE
            await asyncio.sleep(max(0.0, due - loop.time()))
            at = loop.time() - start
            if not frozen and at >= FREEZE_AT:
                os.kill(us_pid, signal.SIGSTOP)
                frozen = True
            if not thawed and at >= THAW_AT:
                os.kill(us_pid, signal.SIGCONT)
                thawed = True
            tasks.append(asyncio.create_task(one(http, proxy.port, loop.time())))
        async with asyncio.timeout(SECONDS + 10):
            await asyncio.gather(*tasks)
        timeouts = proxy.metrics.registry.get_sample_value(
            "ingressfed_proxy_per_try_timeouts_total", {"cluster": US.name}
        )
    slowest = max(seconds for _, seconds, _, _ in results)
    served = {cluster for _, _, _, cluster in results}
    print(f"hung cluster: {len(results)} requests, slowest {slowest:.2f}s, per-try timeouts {timeouts}")
    assert failures == []
    assert len(results) == int(RATE * SECONDS)
    assert slowest <= PER_TRY + 1.0, f"slowest request took {slowest:.2f}s"
    assert served == {US.name, EU.name}
    assert timeouts is not None and timeouts >= 1  # the frozen cluster was really tried and given up
