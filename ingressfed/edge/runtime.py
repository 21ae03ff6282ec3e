"""Controller-side wiring of the edges for ``ingressfed run``: registry, endpoints, clocks.

``app.py`` builds one ``EdgeRuntime``, lets it add its routes to the controller
listener, and runs it as a background task. With the in-process proxy it also
runs that proxy's reporter into the registry: the single-process mode's view
takes the same path as a remote edge's.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from ingressfed.config import Config
from ingressfed.edge.endpoint import add_edge_routes
from ingressfed.edge.registry import EdgeRegistry, identities_from_config, rule_from_config
from ingressfed.edge.reporter import HealthReporter, local_submitter
from ingressfed.store import Store

if TYPE_CHECKING:
    from ingressfed.proxy.server import ProxyServer

__all__ = ["EdgeRuntime"]

log = logging.getLogger(__name__)


class EdgeRuntime:
    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        loop = asyncio.get_running_loop()
        self.clock = loop.time
        self.registry = EdgeRegistry(
            identities_from_config(config), rule=rule_from_config(config), store=store, started_at=loop.time()
        )
        self.local: HealthReporter | None = None

    def add_routes(self, app: web.Application) -> None:
        h = self.config.edge_health
        add_edge_routes(
            app,
            self.registry,
            read_token=self.config.feed_token(),
            max_bytes=h.max_report_bytes,
            min_interval=h.min_report_interval,
            clock=self.clock,
        )

    def attach_proxy(self, proxy: ProxyServer) -> None:
        """Report the in-process proxy's view as edge ``edgeHealth.localEdge``."""
        interval = min(self.config.proxy.health_check.interval, self.config.edge_health.stale_after / 3)
        reporter = HealthReporter(
            edge=self.config.edge_health.local_edge,
            view=proxy.backend_view,
            submit=local_submitter(self.registry, self.clock),
            interval=interval,
        )
        # A change the proxy sees is reported at once, as the single-process mode always did.
        proxy.add_health_listener(lambda _cluster, _healthy: reporter.poke())
        self.local = reporter

    async def run(self) -> None:
        period = min(1.0, self.config.edge_health.stale_after / 5)
        async with asyncio.TaskGroup() as tg:
            if self.local is not None:
                tg.create_task(self.local.run(), name="edge-local-reporter")
            probe = self.config.edge_health.probe
            if probe.enabled:
                from ingressfed.edge.probe import probe_forever

                tg.create_task(
                    probe_forever(
                        self.registry,
                        port=probe.port,
                        interval=probe.interval,
                        connect_within=probe.timeout,
                        clock=self.clock,
                    ),
                    name="edge-probe",
                )
            while True:
                self.registry.refresh(now=self.clock())
                await asyncio.sleep(period)
