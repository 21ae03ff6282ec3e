"""The HTTP/2 codec's own CPU cost per request, without sockets or TLS: a diagnostic beside
bench/tls/run.py.

    .venv/bin/python -m bench.tls.micro [--requests 40000] [--source] [--profile]

Drives the real objects (``ProxyServer``'s engine, ``http2.H2ClientConnection`` with its h2
connection, ``Exchange``, pooled ``UpstreamConnection``s) with in-memory transports, the way
h2load -m 16 does: each batch is 16 requests in one read (HEADERS frames a real h2 client encoded
beforehand, so their HPACK blocks are indexed as h2load's are), each answered by the bench backend's
response, then the loop turn that writes the responses out. The time is CPU time of this process
(``time.process_time``), the best of many batches, so other load on the machine moves it little.
It leaves out the event loop's I/O, TLS and system calls; it is for finding and checking changes to
the HTTP/2 path (ours and what we ask of h2), not for comparing with another server.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_TREE = os.environ.get("INGRESSFED_BENCH_TREE")
_ROOT = str(Path(__file__).resolve().parents[2])
sys.path[0:0] = [_TREE, _ROOT] if _TREE else [_ROOT]

import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.settings  # noqa: E402
import hpack  # noqa: E402
import hyperframe.frame  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402

from bench.proxy.micro import RESPONSE, MemoryTransport  # noqa: E402
from bench.tls.serve import CLUSTER  # noqa: E402
from ingressfed.model import Backend, Route  # noqa: E402
from ingressfed.proxy.http2 import H2ClientConnection, H2Metrics  # noqa: E402
from ingressfed.proxy.server import ProxyServer  # noqa: E402
from ingressfed.proxy.settings import HealthCheckSettings, ProxySettings  # noqa: E402
from ingressfed.proxy.upstream import UpstreamConnection  # noqa: E402
from ingressfed.tls.settings import Http2Settings  # noqa: E402

STREAMS = 16  # per batch, as h2load -m 16
HEADERS = [(":method", "GET"), (":scheme", "https"), (":authority", "localhost"), (":path", "/")]
HEADERS += [("user-agent", "h2load nghttp2/1.52.0")]


class _Client:
    """A real h2 client connection (its preface, and it reads what the proxy answers); the batches'
    HEADERS frames are made with hpack and hyperframe directly, one encoder for the connection as
    h2 would (h2 itself slows down with thousands of streams left open, which is all this client
    does while it encodes ahead)."""

    def __init__(self) -> None:
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.h2 = h2.connection.H2Connection(config)
        self.h2.local_settings = h2.settings.Settings(
            client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1}
        )
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(2**31 - 1 - 65535)
        self.encoder = hpack.Encoder()
        self.next_id = 1

    def batch(self) -> bytes:
        frames = []
        for _ in range(STREAMS):
            frame = hyperframe.frame.HeadersFrame(self.next_id, flags=("END_HEADERS", "END_STREAM"))
            frame.data = self.encoder.encode(HEADERS)
            frames.append(frame.serialize())
            self.next_id += 2
        return b"".join(frames)


def _answers(wire: bytes) -> list[bytes]:
    """The :status of every stream the proxy ended, in order (its frames, read with hyperframe)."""
    decoder = hpack.Decoder()
    status: dict[int, bytes] = {}
    ended: list[bytes] = []
    view = memoryview(wire)
    while view:
        frame, length = hyperframe.frame.Frame.parse_frame_header(view[:9])
        frame.parse_body(view[9 : 9 + length])
        view = view[9 + length :]
        if isinstance(frame, hyperframe.frame.HeadersFrame):
            fields = dict(decoder.decode(frame.data, raw=True))
            status[frame.stream_id] = fields[b":status"]
        if "END_STREAM" in frame.flags:
            ended.append(status.get(frame.stream_id, b"none"))
    return ended


async def measure(requests: int, profile: bool) -> float:
    settings = ProxySettings(
        host="127.0.0.1", port=0, admin_port=None, health_check=HealthCheckSettings(enabled=False)
    )
    backend = Backend(cluster=CLUSTER.name, host="127.0.0.1", port=9)
    async with ProxyServer(settings) as proxy:
        proxy.update([Route(host="localhost", backends=(backend,))], [CLUSTER])
        engine = proxy.engine
        for _ in range(STREAMS):
            conn = UpstreamConnection(engine.pool, (backend.host, backend.port))
            conn.connection_made(MemoryTransport(("127.0.0.1", 9)))  # type: ignore[arg-type]
            engine.pool.put(conn)
        batches_total = 3 * 60 + max(1, requests // STREAMS)
        client = _Client()
        preface = client.h2.data_to_send()
        wire = [client.batch() for _ in range(batches_total)]  # encoded before any timing
        server = H2ClientConnection(engine, Http2Settings(), metrics=H2Metrics(CollectorRegistry()))
        client_side = MemoryTransport(("127.0.0.1", 5555))
        server.connection_made(client_side)  # type: ignore[arg-type]
        server.data_received(preface)
        await asyncio.sleep(0)
        feed = iter(wire)

        async def one() -> None:
            server.data_received(next(feed))
            for stream in list(server.streams.values()):
                exchange = stream.exchange
                assert exchange is not None and exchange.upstream is not None
                exchange.upstream.data_received(RESPONSE)
            await asyncio.sleep(0)  # the loop turn in which the connection writes its frames

        for _ in range(120):  # warm up, then check the answers with the real client
            await one()
        statuses = _answers(b"".join(client_side.out))
        if statuses != [b"200"] * (120 * STREAMS):
            raise SystemExit(f"the proxy answered {len(statuses)} of {120 * STREAMS} streams: {statuses[:3]}")
        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            profiler.enable()
        rounds, per_round, best = 60, max(1, (batches_total - 180) // 60), float("inf")
        for _ in range(rounds):
            client_side.out.clear()
            start = time.process_time()
            for _ in range(per_round):
                await one()
            best = min(best, time.process_time() - start)
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return best / (per_round * STREAMS)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=40000)
    parser.add_argument("--profile", action="store_true", help="cProfile the batches (slower)")
    parser.add_argument("--source", action="store_true", help="the checkout's pure Python, not the build")
    args = parser.parse_args()
    if not args.source and _TREE is None:
        from bench import compiled

        tree = compiled.tree()
        child_env: dict[str, Any] = {**compiled.env(tree), "INGRESSFED_BENCH_TREE": str(tree)}
        argv = [sys.executable, __file__, *sys.argv[1:]]
        return subprocess.run(argv, env=child_env, check=False).returncode
    import ingressfed.proxy.http2 as http2

    print(f"ingressfed.proxy.http2: {http2.__file__}")
    seconds = asyncio.run(measure(args.requests, args.profile))
    print(f"{seconds * 1e6:.1f} us of CPU per HTTP/2 request ({STREAMS} streams a read; best batch)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
