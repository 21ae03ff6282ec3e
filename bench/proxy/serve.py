"""The ingressfed proxy process for bench/proxy/run.py (one process, one event loop).

run.py sets PYTHONPATH to the build it measures (bench/compiled.py): the compiled wheel or the checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import signal

from ingressfed.model import Backend, Cluster, Location, Route
from ingressfed.proxy.server import ProxyServer
from ingressfed.proxy.settings import GeoSettings, HealthCheckSettings, ProxySettings

CLUSTERS = [
    Cluster(name="cluster-us-east1-b", region="us-east1", zone="us-east1-b", location=Location(33.2, -80.0)),
    Cluster(
        name="cluster-europe-west1-b",
        region="europe-west1",
        zone="europe-west1-b",
        location=Location(50.4, 3.8),
    ),
    Cluster(
        name="cluster-asia-east1-a", region="asia-east1", zone="asia-east1-a", location=Location(24.0, 120.5)
    ),
]


async def serve(args: argparse.Namespace) -> None:
    settings = ProxySettings(
        host="127.0.0.1",
        port=args.port,
        admin_port=None,
        health_check=HealthCheckSettings(path="/", interval=5.0),
        geo=GeoSettings(database=args.database, trusted_proxies=("127.0.0.0/8",)),
        workers=args.workers,
    )
    # Every cluster's backend is the same nginx here: geo routing still ranks three clusters.
    routes = [
        Route(
            host="app.example.com",
            backends=tuple(Backend(cluster=c.name, host="127.0.0.1", port=args.backend) for c in CLUSTERS),
        )
    ]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with ProxyServer(settings) as proxy:
        proxy.update(routes, CLUSTERS)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", type=int, required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--no-uvloop", action="store_true")
    parser.add_argument("--cprofile")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    runner: asyncio.Runner
    if args.no_uvloop:
        runner = asyncio.Runner()
    else:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    profiler = cProfile.Profile() if args.cprofile else None
    with runner:
        if profiler is not None:
            profiler.enable()
        runner.run(serve(args))
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.cprofile)


if __name__ == "__main__":
    main()
