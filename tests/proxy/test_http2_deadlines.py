"""The client-side deadlines on HTTP/2, as on HTTP/1.1: a first request or a header block not
complete within timeouts.requestHead closes the connection (slowloris over HTTP/2); a request
body silent for timeouts.bodyRead, or slower than limits.minBodyRate, gets 408 on its stream
while the connection's other streams go on. Real TLS + h2 client over loopback, short deadlines."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from hpack import Encoder
from hyperframe.frame import HeadersFrame

from ingressfed.proxy.settings import LimitSettings, TimeoutSettings
from tests.proxy.conftest import BackendServer
from tests.proxy.h2client import h2_client
from tests.proxy.tlsproxy import HOST, HttpsProxy, https_proxy

SHORT = {"timeouts": TimeoutSettings(request_head=1.0, body_read=1.0, idle=30.0)}


def client_timeouts(h: HttpsProxy, phase: str) -> float:
    value = h.proxy.metrics.registry.get_sample_value(
        "ingressfed_proxy_client_timeouts_total", {"phase": phase}
    )
    return value or 0.0


async def test_a_header_block_never_finished_closes_the_connection(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    async with https_proxy(backends, tmp_path, proxy=SHORT) as h:
        async with h2_client(h.port, HOST, h.client_context()) as c:
            ok = await c.get(HOST, "/first")  # a served request first: the connection is in use
            assert ok.status == 200
            block = Encoder().encode([(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/")])
            c.raw(HeadersFrame(3, data=block).serialize())  # no END_HEADERS, and nothing after it
            started = time.monotonic()
            await c.until(lambda: c.closed, timeout=10)
            waited = time.monotonic() - started
        assert c.closed and waited < 8  # the 1 s deadline, checked a few times a second
        assert client_timeouts(h, "head") == 1


async def test_a_connection_that_never_asks_is_closed_after_the_head_deadline(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    async with https_proxy(backends, tmp_path, proxy=SHORT) as h:
        async with h2_client(h.port, HOST, h.client_context()) as c:
            await c.until(lambda: c.closed, timeout=10)  # preface and SETTINGS only
        assert c.closed
        assert c.terminated is not None  # told by GOAWAY, not just cut
        assert client_timeouts(h, "head") == 1


async def test_a_silent_request_body_gets_408_on_its_stream_only(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    async with https_proxy(backends, tmp_path, proxy=SHORT) as h:
        async with h2_client(h.port, HOST, h.client_context()) as c:
            sid = c.request(HOST, "/upload", method="POST", end=False, extra=[("content-length", "100")])
            c.conn.send_data(sid, b"x")  # one byte of a hundred, then nothing
            c.flush()
            await c.until(lambda: c.responses[sid].status or c.closed, timeout=10)
            assert c.responses[sid].status == 408
            assert not c.closed
            again = await c.get(HOST, "/after")  # the same connection serves the next stream
            assert again.status == 200
        assert client_timeouts(h, "body") == 1


async def test_a_body_below_the_minimum_rate_gets_408(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    settings = {**SHORT, "limits": LimitSettings(min_body_rate=1000)}
    async with https_proxy(backends, tmp_path, proxy=settings) as h:
        async with h2_client(h.port, HOST, h.client_context()) as c:
            sid = c.request(HOST, "/upload", method="POST", end=False, extra=[("content-length", "100000")])

            async def trickle() -> None:  # a byte every 0.3 s: never silent, far below 1000 B/s
                while not c.responses[sid].status and not c.closed:
                    c.conn.send_data(sid, b"x")
                    c.flush()
                    await asyncio.sleep(0.3)

            feeder = asyncio.create_task(trickle())
            await c.until(lambda: c.responses[sid].status or c.closed, timeout=15)
            feeder.cancel()
            assert c.responses[sid].status == 408
        assert client_timeouts(h, "body") == 1
