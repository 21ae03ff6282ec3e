"""One edge run inside this process, exactly as ``ingressfed proxy --edge`` runs it: a proxy that
follows the controller's feed over HTTP with a token, prefers its own cluster, and reports its
whole backend view over HTTP. The demo runs three of these; the edge benchmark kills and revives
them. ``start()``/``stop()`` may be called repeatedly (``demo edge-down`` / ``edge-up``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from ingressfed.edge.reporter import HealthReporter, http_submitter, report_url
from ingressfed.feed.follower import FeedFollower
from ingressfed.feed.held import FeedStep
from ingressfed.proxy.server import ProxyServer
from ingressfed.proxy.settings import ProxySettings

__all__ = ["EdgeSpec", "LocalEdge"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EdgeSpec:
    name: str
    cluster: str
    address: str  # listen address, also the announced public address
    port: int


class LocalEdge:
    def __init__(
        self,
        spec: EdgeSpec,
        *,
        controller: str,
        token: str | None,
        settings: ProxySettings,
        state_file: Path | None = None,
        report_interval: float = 1.0,
    ) -> None:
        self.spec = spec
        self.controller = controller
        self.token = token
        # Plain HTTP on the edge's own address; HTTPS at the edges is not wired in the demo yet.
        self.settings = dataclasses.replace(
            settings, host=spec.address, port=spec.port, admin_port=None, home_cluster=spec.cluster, tls=None
        )
        self.state_file = state_file
        self.report_interval = report_interval
        self._stack: contextlib.AsyncExitStack | None = None
        self.proxy: ProxyServer | None = None

    @property
    def running(self) -> bool:
        return self._stack is not None

    @property
    def url(self) -> str:
        return f"http://{self.spec.address}:{self.spec.port}"

    async def start(self) -> None:
        if self._stack is not None:
            return
        stack = contextlib.AsyncExitStack()
        try:
            proxy = await stack.enter_async_context(ProxyServer(self.settings))
            follower = await stack.enter_async_context(
                FeedFollower(self.controller, token=self.token, state_file=self.state_file)
            )
            session = await stack.enter_async_context(aiohttp.ClientSession())
            reporter = HealthReporter(
                edge=self.spec.name,
                view=proxy.backend_view,
                submit=http_submitter(session, report_url(self.controller, self.spec.name), token=self.token),
                interval=self.report_interval,
                addresses=(self.spec.address,),
                min_spacing=min(1.1, self.report_interval),
            )
            proxy.add_health_listener(lambda _c, _h: reporter.poke())

            def apply(step: FeedStep) -> None:
                proxy.update(step.held.routes, step.held.clusters)

            tg = await stack.enter_async_context(asyncio.TaskGroup())
            tasks = [tg.create_task(follower.follow(apply)), tg.create_task(reporter.run())]

            async def cancel() -> None:
                for t in tasks:
                    t.cancel()

            stack.push_async_callback(cancel)
        except BaseException:
            await stack.aclose()
            raise
        self.proxy = proxy
        self._stack = stack
        log.info("edge %s up at %s", self.spec.name, self.url, extra={"edge": self.spec.name})

    async def stop(self) -> None:
        stack, self._stack = self._stack, None
        self.proxy = None
        if stack is not None:
            await stack.aclose()
            log.info("edge %s down", self.spec.name, extra={"edge": self.spec.name})
