"""The proxy's own Python cost per request, without sockets: a diagnostic beside bench/proxy/run.py.

    .venv/bin/python -m bench.proxy.micro [--requests 60000] [--profile] [--compiled]

Drives the real objects (``ProxyServer``'s engine, ``http1.ClientConnection``, ``Exchange``,
``UpstreamConnection`` and its pool) with in-memory transports: one keep-alive client sends the
bench's request (geo routing from ``X-Forwarded-For``), one pooled backend connection answers the
nginx backend's response. The time is CPU time of this process (``time.process_time``), the best
of many short batches, so other load on the machine moves it little. It leaves out what the real
run adds (system calls, the event loop, cache misses: about as much again), so it is for finding
and checking changes to the request path, not for comparing with another proxy.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# --compiled runs this file again on the compiled build (bench/compiled.py), named by this variable.
_TREE = os.environ.get("INGRESSFED_BENCH_TREE")
_ROOT = str(Path(__file__).resolve().parents[2])
sys.path[0:0] = [_TREE, _ROOT] if _TREE else [_ROOT]

from bench.proxy.serve import CLUSTERS  # noqa: E402
from ingressfed.model import Backend, Route  # noqa: E402
from ingressfed.proxy.http1 import ClientConnection  # noqa: E402
from ingressfed.proxy.server import ProxyServer  # noqa: E402
from ingressfed.proxy.settings import GeoSettings, HealthCheckSettings, ProxySettings  # noqa: E402
from ingressfed.proxy.upstream import UpstreamConnection  # noqa: E402

REQUEST = b"GET / HTTP/1.1\r\nHost: app.example.com\r\nUser-Agent: wrk\r\nX-Forwarded-For: 81.2.69.10\r\n\r\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 01 Dec 2026 22:36:54 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 23\r\nConnection: keep-alive\r\n\r\n"
    b"hello from the backend\n"
)


class MemoryTransport:
    """The parts of an asyncio transport the proxy uses; writes are kept."""

    def __init__(self, peer: tuple[str, int]) -> None:
        self.out: list[bytes] = []
        self.peer = peer
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name == "peername" else default

    def write(self, data: bytes) -> None:
        self.out.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def measure(requests: int, profile: bool) -> float:
    from tests.fakes.geoip_db import build_city_db

    with tempfile.TemporaryDirectory(prefix="ingressfed-micro-") as tmp:
        db = build_city_db(Path(tmp))
        settings = ProxySettings(
            host="127.0.0.1",
            port=0,
            admin_port=None,
            health_check=HealthCheckSettings(enabled=False),
            geo=GeoSettings(database=str(db), trusted_proxies=("127.0.0.0/8",)),
        )
        backends = tuple(Backend(cluster=c.name, host="127.0.0.1", port=9) for c in CLUSTERS)
        async with ProxyServer(settings) as proxy:
            proxy.update([Route(host="app.example.com", backends=backends)], CLUSTERS)
            engine = proxy.engine
            client = ClientConnection(engine)
            client_side = MemoryTransport(("127.0.0.1", 5555))
            client.connection_made(client_side)  # type: ignore[arg-type]
            for backend in backends:
                conn = UpstreamConnection(engine.pool, (backend.host, backend.port))
                conn.connection_made(MemoryTransport(("127.0.0.1", 9)))  # type: ignore[arg-type]
                engine.pool.put(conn)

            def one() -> None:
                client.data_received(REQUEST)
                upstream = client.exchanges[0].upstream
                assert upstream is not None
                upstream.data_received(RESPONSE)

            for _ in range(2000):
                one()
            if not client_side.out[-1].startswith(b"HTTP/1.1 200 OK\r\n"):
                raise SystemExit(f"the proxy did not answer 200: {client_side.out[-1][:200]!r}")
            profiler = cProfile.Profile() if profile else None
            if profiler is not None:
                profiler.enable()
            batches, per_batch, best = 60, max(1, requests // 60), float("inf")
            for _ in range(batches):
                client_side.out.clear()
                start = time.process_time()
                for _ in range(per_batch):
                    one()
                best = min(best, time.process_time() - start)
            if profiler is not None:
                profiler.disable()
                stats = pstats.Stats(profiler)
                stats.sort_stats("tottime").print_stats(30)
            return best / per_batch


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=60000)
    parser.add_argument("--profile", action="store_true", help="cProfile the batches (slower)")
    parser.add_argument(
        "--compiled", action="store_true", help="run on the compiled build the image ships (ADR 0016)"
    )
    args = parser.parse_args()
    if args.compiled:
        from bench import compiled

        tree = compiled.tree()
        argv = [a for a in sys.argv[1:] if a != "--compiled"]
        child_env = {**compiled.env(tree), "INGRESSFED_BENCH_TREE": str(tree)}
        return subprocess.run([sys.executable, __file__, *argv], env=child_env, check=False).returncode
    import ingressfed.proxy.http1 as http1

    print(f"ingressfed.proxy.http1: {http1.__file__}")
    seconds = asyncio.run(measure(args.requests, args.profile))
    print(f"{seconds * 1e6:.1f} us of Python per proxied request (best batch, CPU time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
