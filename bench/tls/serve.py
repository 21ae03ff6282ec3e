"""The ingressfed proxy process for bench/tls/run.py: HTTPS (HTTP/1.1 and h2) on one event loop."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import signal
import sys

from ingressfed.model import Backend, Cluster, Location, Route
from ingressfed.proxy.server import ProxyServer
from ingressfed.proxy.settings import HealthCheckSettings, ProxySettings
from ingressfed.tls.settings import TlsSettings

CLUSTER = Cluster(
    name="cluster-europe-west1-b", region="europe-west1", zone="europe-west1-b", location=Location(50.4, 3.8)
)


async def serve(args: argparse.Namespace) -> None:
    settings = ProxySettings(
        host="127.0.0.1",
        port=args.plain_port,
        admin_port=None,
        health_check=HealthCheckSettings(path="/", interval=5.0),
        tls=TlsSettings(host="127.0.0.1", port=args.port, certificate_dir=args.certs),
    )
    routes = [
        Route(
            host="localhost", backends=(Backend(cluster=CLUSTER.name, host="127.0.0.1", port=args.backend),)
        )
    ]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with ProxyServer(settings) as proxy:
        proxy.update(routes, [CLUSTER])
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--plain-port", type=int, required=True)
    parser.add_argument("--backend", type=int, required=True)
    parser.add_argument("--certs", required=True)
    parser.add_argument("--cprofile")
    args = parser.parse_args()
    import uvloop

    import ingressfed.proxy.http2 as http2

    # run.py names the build it meant (PYTHONPATH); this says which one was imported
    print(f"bench/tls/serve.py: ingressfed.proxy.http2 from {http2.__file__}", file=sys.stderr, flush=True)

    profiler = cProfile.Profile() if args.cprofile else None
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        if profiler is not None:
            profiler.enable()
        runner.run(serve(args))
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.cprofile)


if __name__ == "__main__":
    main()
