"""Client deadlines on real sockets (short deadlines set by each test, a few connections each):
slowloris heads, silent and trickled bodies, idle connections, and the connection caps."""

from __future__ import annotations

import asyncio
import contextlib

from ingressfed.proxy.server import ProxyServer
from ingressfed.proxy.settings import GeoSettings, LimitSettings, TimeoutSettings

from .conftest import BackendServer, eventually, routes_for, running_proxy

HOST = b"app.example.com"
QUICK = TimeoutSettings(request_head=0.5, body_read=0.5, idle=0.6)


async def _closed_after(reader: asyncio.StreamReader, *, within: float) -> bytes:
    """Everything the proxy sends until it closes; fails when it is still open after ``within``."""
    chunks = []
    async with asyncio.timeout(within):
        with contextlib.suppress(ConnectionResetError):
            while chunk := await reader.read(65536):
                chunks.append(chunk)
    return b"".join(chunks)


async def _trickle(writer: asyncio.StreamWriter, data: bytes, *, every: float) -> None:
    with contextlib.suppress(ConnectionError):
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(every)


def _sample(proxy: ProxyServer, name: str, **labels: str) -> float:
    value = proxy.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


async def test_slowloris_heads_get_408_within_the_head_deadline(backends: dict[str, BackendServer]) -> None:
    head = b"GET / HTTP/1.1\r\nHost: app.example.com\r\nX-Padding: " + b"a" * 200 + b"\r\n\r\n"
    async with running_proxy(backends, timeouts=QUICK) as proxy:
        conns = [await asyncio.open_connection("127.0.0.1", proxy.port) for _ in range(4)]
        # one byte every 50 ms: the whole head would take over 12 s; every byte used to restart a timer
        trickles = [asyncio.create_task(_trickle(w, head, every=0.05)) for _, w in conns]
        answers = await asyncio.gather(*(_closed_after(r, within=3.0) for r, _ in conns))
        for task in trickles:
            task.cancel()
        for _, writer in conns:
            writer.close()
        timeouts = _sample(proxy, "ingressfed_proxy_client_timeouts_total", phase="head")
    assert all(a.startswith(b"HTTP/1.1 408 ") and b"Connection: close" in a for a in answers)
    assert timeouts == 4
    assert all(not s.seen for s in backends.values())


async def test_partial_head_on_a_kept_alive_connection_does_not_restart_the_idle_timer(
    backends: dict[str, BackendServer],
) -> None:
    timeouts = TimeoutSettings(request_head=0.5, body_read=0.5, idle=30)
    async with running_proxy(backends, timeouts=timeouts) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"GET /first HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
        first = await reader.readuntil(b"\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 200 ")
        length = int(first.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        # a 30 s idle allowance; a head trickled after the first request has 0.5 s in total
        trickle = asyncio.create_task(_trickle(writer, b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n", every=0.1))
        answer = await _closed_after(reader, within=3.0)
        trickle.cancel()
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")


async def test_connection_that_sends_nothing_is_closed_after_the_head_deadline(
    backends: dict[str, BackendServer],
) -> None:
    async with running_proxy(backends, timeouts=QUICK) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        answer = await _closed_after(reader, within=3.0)
        writer.close()
    assert answer == b""  # no request, so no response: just closed


async def test_trickled_body_below_the_minimum_rate_gets_408(backends: dict[str, BackendServer]) -> None:
    async with running_proxy(backends, timeouts=QUICK, limits=LimitSettings(min_body_rate=1024)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        # the case: 22 bytes, one every 0.2 s here (every 2 s there); never silent for 0.5 s
        writer.write(b"POST /upload HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 22\r\n\r\n")
        trickle = asyncio.create_task(_trickle(writer, b"x" * 22, every=0.2))
        answer = await _closed_after(reader, within=3.0)
        trickle.cancel()
        writer.close()
        slow = _sample(proxy, "ingressfed_proxy_client_timeouts_total", phase="body")
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert slow == 1


async def test_silent_body_gets_408(backends: dict[str, BackendServer]) -> None:
    async with running_proxy(backends, timeouts=QUICK, limits=LimitSettings(min_body_rate=0)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(
            b"POST /upload HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 100\r\n\r\n0123456789"
        )
        answer = await _closed_after(reader, within=3.0)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")


async def test_body_at_a_fair_rate_is_served(backends: dict[str, BackendServer]) -> None:
    async with running_proxy(backends, timeouts=QUICK, limits=LimitSettings(min_body_rate=1024)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"POST /upload HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 40000\r\n\r\n")
        for _ in range(10):  # 4000 bytes every 0.1 s for 1 s: longer than body_read, well above 1 KiB/s
            writer.write(b"y" * 4000)
            await asyncio.sleep(0.1)
        async with asyncio.timeout(3):
            head = await reader.readuntil(b"\r\n\r\n")
        writer.close()
    assert head.startswith(b"HTTP/1.1 200 ")


async def test_connections_per_client_address_are_capped(backends: dict[str, BackendServer]) -> None:
    limits = LimitSettings(max_connections_per_client=2)
    async with running_proxy(backends, limits=limits) as proxy:
        first = await asyncio.open_connection("127.0.0.1", proxy.port)
        second = await asyncio.open_connection("127.0.0.1", proxy.port)
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        refused = await _closed_after(reader, within=2.0)
        writer.close()
        first[1].close()
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
        async with asyncio.timeout(2):
            admitted = await reader.readuntil(b"\r\n\r\n")
        writer.close()
        second[1].close()
        count = _sample(proxy, "ingressfed_proxy_refused_connections_total", reason="per_client")
    assert refused.startswith(b"HTTP/1.1 503 ")
    assert admitted.startswith(b"HTTP/1.1 200 ")
    assert count == 1


async def test_trusted_peers_are_exempt_from_the_per_client_cap_but_not_the_total(
    backends: dict[str, BackendServer],
) -> None:
    limits = LimitSettings(max_connections_per_client=1, max_connections=3)
    geo = GeoSettings(trusted_proxies=("127.0.0.0/8",))
    async with running_proxy(backends, limits=limits, geo=geo) as proxy:
        held = [await asyncio.open_connection("127.0.0.1", proxy.port) for _ in range(3)]
        await asyncio.sleep(0.1)
        for reader, writer in held:
            writer.write(b"GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
            async with asyncio.timeout(2):
                assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200 ")
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        refused = await _closed_after(reader, within=2.0)
        writer.close()
        for _, w in held:
            w.close()
        count = _sample(proxy, "ingressfed_proxy_refused_connections_total", reason="total")
    assert refused.startswith(b"HTTP/1.1 503 ")
    assert count == 1


async def test_a_client_that_reads_nothing_is_cut_off(backends: dict[str, BackendServer]) -> None:
    backends["cluster-us-east1-b"].release.set()  # the stream does not wait midway
    only_us = [routes_for("app.example.com", {"us": backends["cluster-us-east1-b"]})]
    timeouts = TimeoutSettings(send=0.5, read=30)
    async with running_proxy(backends, routes=only_us, timeouts=timeouts) as proxy:
        _, writer = await asyncio.open_connection("127.0.0.1", proxy.port, limit=1024)
        writer.transport.pause_reading()  # slow read: the response fills every buffer on the way
        writer.write(b"GET /stream?n=800&size=65536 HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
        await eventually(
            lambda: _sample(proxy, "ingressfed_proxy_client_timeouts_total", phase="send") == 1, timeout=5
        )
        writer.close()
    assert not backends["cluster-us-east1-b"].stream_finished.is_set()  # 50 MB were never produced
