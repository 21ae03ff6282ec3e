"""One ingressfed proxy process for bench/gateway/run.py: Ingress paths or HTTPRoutes."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.gateway.routes import CLUSTERS, gateway_rules, ingress_routes
from ingressfed.proxy.server import ProxyServer
from ingressfed.proxy.settings import HealthCheckSettings, ProxySettings


async def serve(args: argparse.Namespace) -> None:
    settings = ProxySettings(
        host="127.0.0.1", port=args.port, admin_port=None, health_check=HealthCheckSettings(enabled=False)
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with ProxyServer(settings) as proxy:
        if args.mode == "ingress":
            proxy.update(ingress_routes(args.backend), CLUSTERS)
        else:
            proxy.update([], CLUSTERS, gateway=gateway_rules(args.backend).served)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", type=int, required=True)
    parser.add_argument("--mode", choices=["ingress", "gateway"], required=True)
    args = parser.parse_args()
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args))


if __name__ == "__main__":
    main()
