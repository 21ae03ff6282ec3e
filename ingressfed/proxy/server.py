"""ProxyServer: the geo-aware global L7 proxy as one async context manager.

async with ProxyServer(settings, on_health_change=store_hook) as proxy:
    proxy.update(routes, clusters)      # any time; atomic swap
    ...
    await proxy.drain()                 # optional graceful stop (SIGTERM)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing.connection
import signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from geo.lookup import GeoLookup
from geo.regions import cluster_location
from ingressfed.gateway.table import ServedRule
from ingressfed.model import Backend, Cluster, Route
from ingressfed.proxy.admin import admin_app
from ingressfed.proxy.checker import HealthChecker
from ingressfed.proxy.engine import Engine
from ingressfed.proxy.gateway import attach_gateway
from ingressfed.proxy.http1 import ClientConnection
from ingressfed.proxy.https import HttpsListener
from ingressfed.proxy.metrics import ProxyMetrics
from ingressfed.proxy.routing import HealthListener, Locator
from ingressfed.proxy.settings import ProxySettings
from ingressfed.proxy.table import build_table, normalize_host
from ingressfed.proxy.worker_metrics import FamilySnapshot, MergedCollector, snapshot
from ingressfed.proxy.workers import BookMessage, WorkerPool, book_from_message, checks_of
from ingressfed.tls.book import CertificateBook

__all__ = ["ProxyServer"]

log = logging.getLogger(__name__)

_TICK_SECONDS = 0.25
_METRICS_SECONDS = 1.0  # how often a worker process sends its metrics to the primary


class ProxyServer:
    def __init__(
        self,
        settings: ProxySettings,
        *,
        locator: Locator | None = None,
        on_health_change: HealthListener | None = None,
        registry: CollectorRegistry | None = None,
        book: CertificateBook | None = None,
    ) -> None:
        """``locator`` overrides ``settings.geo.database``; ``on_health_change(cluster, healthy)`` is
        called when a cluster's data plane (any of its backends) becomes usable or unusable;
        ``book``: certificates served from the first handshake, with no sources of this proxy's
        own (a worker process: its primary's book)."""
        self.settings = settings
        self._book = book
        self._locator = locator
        # Answers the plain listener gives itself before routing (ACME http-01 tokens):
        # (host, target) -> body, or None to route the request as usual.
        self.answerers: list[Callable[[str, bytes], bytes | None]] = []
        # share_answers: per source, path -> (host, body); a worker's come from its primary.
        self._sources: dict[str, dict[bytes, tuple[str, bytes]]] = {}
        self._shared_answers: dict[bytes, tuple[str, bytes]] = {}
        self._owned_lookup: GeoLookup | None = None
        self._listeners: list[HealthListener] = [on_health_change] if on_health_change else []
        self.metrics = ProxyMetrics(registry)
        # What this proxy reports (/metrics, the status page's request counts): its own registry
        # plus the newest snapshot of each worker process, which the WorkerPool keeps here.
        self.worker_metrics: dict[int, tuple[FamilySnapshot, ...]] = {}
        self.collector = MergedCollector(self.metrics.registry, self.worker_metrics)
        self._engine: Engine | None = None
        self._server: asyncio.Server | None = None
        self._admin: web.AppRunner | None = None
        # Extra admin endpoints (the status page of this proxy's view), added before it starts.
        self.admin_routes: list[Callable[[web.Application], None]] = []
        self.https: HttpsListener | None = None  # the TLS listener when settings.tls is set
        self.workers: WorkerPool | None = None  # worker processes when settings.workers > 1
        self._stack = contextlib.AsyncExitStack()
        self._tasks: list[asyncio.Task[None]] = []
        self._version = 0
        # The Gateway listener port this proxy's plain-HTTP listener is: HTTPRoutes attached to
        # listeners on that port are served here (the global proxy Service maps 80 to it).
        self.gateway_port = 80
        # The same for the TLS listener: HTTPRoutes attached to HTTPS listeners on this port.
        self.gateway_tls_port = 443
        self.port = settings.port
        self.admin_port = settings.admin_port

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("ProxyServer is not started; use 'async with ProxyServer(...)'")
        return self._engine

    async def __aenter__(self) -> ProxyServer:
        loop = asyncio.get_running_loop()
        try:
            locator = self._locator
            if locator is None and self.settings.geo.database:
                self._owned_lookup = GeoLookup(self.settings.geo.database)
                locator = self._owned_lookup
            engine = Engine(
                self.settings, locator=locator, metrics=self.metrics, now=loop.time(), precise=loop.time
            )
            engine.router.listeners.extend(self._listeners)
            self._engine = engine
            reuse_port = self.settings.reuse_port or self.settings.workers > 1
            if self.settings.tls is not None:
                listener = HttpsListener(
                    engine, self.settings.tls, registry=self.metrics.registry, reuse_port=reuse_port
                )
                if self._book is not None:
                    listener.adopt(self._book)  # before it listens: no handshake meets an empty book
                self.https = await listener.__aenter__()
            redirect = self.https.redirect if self.https is not None else None
            self._server = await loop.create_server(
                lambda: ClientConnection(engine, redirect=redirect, answer=self._answer),
                self.settings.host,
                self.settings.port,
                reuse_address=True,
                reuse_port=reuse_port,
                backlog=1024,
            )
            self.port = self._server.sockets[0].getsockname()[1]
            if self.settings.workers > 1:
                https = self.https
                self.workers = WorkerPool(
                    self.settings,
                    self.port,
                    target=run_worker,
                    tls_port=https.port if https is not None else None,
                    metrics=self.worker_metrics,
                )
                self.workers.start(https.catalog.book if https is not None else None)
                if https is not None:
                    https.catalog.listeners.append(self.workers.send_book)
            if self.settings.admin_port is not None:
                admin = admin_app(engine, self.collector)
                for add_routes in self.admin_routes:
                    add_routes(admin)
                self._admin = web.AppRunner(admin, access_log=None)
                await self._admin.setup()
                site = web.TCPSite(self._admin, self.settings.admin_host, self.settings.admin_port)
                await site.start()
                # aiohttp keeps the bound server here: asyncio's Server, or uvloop's, which is no
                # subclass of it (an isinstance test left admin_port at 0 for "port 0" on uvloop)
                sockets = getattr(site._server, "sockets", None)
                if sockets:
                    self.admin_port = sockets[0].getsockname()[1]
            tg = await self._stack.enter_async_context(asyncio.TaskGroup())
            self._tasks.append(tg.create_task(self._tick()))
            if self.settings.health_check.enabled:
                self._tasks.append(
                    tg.create_task(HealthChecker(engine.router, self.settings.health_check).run())
                )
        except BaseException:
            await self._close()
            raise
        log.info("proxy listening on %s:%s (admin %s)", self.settings.host, self.port, self.admin_port)
        return self

    def _answer(self, host: str, target: bytes) -> bytes | None:
        for answerer in self.answerers:
            body = answerer(host, target)
            if body is not None:
                return body
        shared = self._shared_answers.get(target.split(b"?", 1)[0])
        if shared is not None and shared[0] == normalize_host(host):
            return shared[1]
        return None

    def adopt_answers(self, answers: Mapping[str, tuple[str, bytes]]) -> None:
        """A worker process: its primary's shared answers, replacing the previous ones."""
        self._shared_answers = {path.encode(): value for path, value in answers.items()}

    def share_answers(self, source: str, answers: Mapping[str, tuple[str, bytes]]) -> None:
        """Fixed answers (path -> (host, body)) given by every process of this proxy, replacing
        ``source``'s previous ones: ACME http-01 tokens, which the primary's ``answerers`` hold
        and its worker processes would otherwise not know."""
        if answers:
            self._sources[source] = {path.encode(): (host, body) for path, (host, body) in answers.items()}
        else:
            self._sources.pop(source, None)
        self._shared_answers = {p: v for table in self._sources.values() for p, v in table.items()}
        if self.workers is not None:
            self.workers.send_answers({p.decode(): v for p, v in self._shared_answers.items()})

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self.https is not None:
            self.https.stop_accepting()
        for task in self._tasks:
            task.cancel()
        await self._stack.aclose()
        self._tasks.clear()
        engine = self._engine
        if engine is not None:
            engine.registry.abort_all()
            engine.pool.close_all()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self.https is not None:
            await self.https.aclose()
            self.https = None
        if self._admin is not None:
            await self._admin.cleanup()
            self._admin = None
        if self._owned_lookup is not None:
            self._owned_lookup.close()
            self._owned_lookup = None
        if self.workers is not None:
            self.workers.close()
            self.workers = None

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        engine = self.engine
        sweeps = 0
        while True:
            await asyncio.sleep(_TICK_SECONDS)
            now = loop.time()
            engine.tick(now)
            engine.registry.check_timeouts(now)
            if self.workers is not None:
                self.workers.send_checks(checks_of(engine.router.health))
                self.workers.receive()  # "ready" (logged once per worker) and metric snapshots
            sweeps += 1
            if sweeps % 8 == 0:
                engine.pool.sweep(now=now, idle_timeout=self.settings.timeouts.idle)

    # --- public API --------------------------------------------------------------------------
    def update(
        self, routes: Iterable[Route], clusters: Iterable[Cluster], *, gateway: Sequence[ServedRule] = ()
    ) -> None:
        """Replace the routing table atomically; requests in flight keep the table they started with.

        ``gateway``: HTTPRoute rules (served on the Gateway listener port ``gateway_port``).
        """
        self._version += 1
        routes = tuple(routes)
        clusters = tuple(clusters)
        table = build_table(
            routes,
            clusters,
            version=self._version,
            locate=cluster_location,
            default_steering=self.settings.steering,
        )
        if gateway:
            table = attach_gateway(
                table,
                gateway,
                clusters,
                locate=cluster_location,
                port=self.gateway_port,
                tls_port=self.gateway_tls_port,
            )
        self.engine.router.swap(table)
        if self.workers is not None:
            self.workers.send_table(routes, clusters, gateway)
        log.info(
            "routing table %d: %d routes, %d HTTPRoute matches",
            table.version,
            len(table.entries),
            sum(1 for r in gateway if r.port in (self.gateway_port, self.gateway_tls_port)),
        )

    def health(self) -> dict[str, bool]:
        """Data-plane health per cluster: True when any of its backends may receive traffic."""
        return dict(self.engine.router.cluster_healthy)

    def backend_view(self) -> list[tuple[Backend, bool]]:
        """Every backend of the table and whether it may receive traffic now (active checks and
        passive ejection together): what an edge reports to the controller."""
        router = self.engine.router
        return [(b, b in router.available) for b in router.health]

    def add_health_listener(self, listener: HealthListener) -> None:
        self._listeners.append(listener)
        if self._engine is not None:
            self._engine.router.listeners.append(listener)

    @property
    def ready(self) -> bool:
        return self._engine is not None and self._engine.router.loaded and not self._engine.draining

    async def drain(self, grace: float | None = None) -> None:
        """Stop accepting, let requests in flight finish (up to ``grace`` seconds, default
        ``settings.drain_seconds``), then close the rest."""
        registry = self.engine.registry
        registry.draining = True
        if self._server is not None:
            self._server.close()
        if self.https is not None:
            self.https.stop_accepting()
        registry.close_idle()
        seconds = self.settings.drain_seconds if grace is None else grace
        if self.workers is not None:
            await asyncio.gather(registry.wait_empty(seconds), self.workers.drain(seconds))
        else:
            await registry.wait_empty(seconds)
        registry.abort_all()
        log.info("proxy drained")


# --- worker processes (proxy.workers > 1) -----------------------------------------------------
def run_worker(
    settings: ProxySettings, inbox: multiprocessing.connection.Connection, book: BookMessage | None = None
) -> None:
    # The primary decides when workers stop (drain); a terminal's Ctrl-C reaches the whole group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_serve(settings, inbox, book_from_message(book) if book is not None else None))


async def _push_metrics(proxy: ProxyServer, inbox: multiprocessing.connection.Connection) -> None:
    """Send the worker's registry up every second (from a thread: a primary slow to read must
    not stall this worker's event loop)."""
    while True:
        await asyncio.sleep(_METRICS_SECONDS)
        try:
            await asyncio.to_thread(inbox.send, ("metrics", snapshot(proxy.metrics.registry)))
        except OSError:  # the primary is gone: _follow_primary sees it and drains
            return


async def _serve(
    settings: ProxySettings, inbox: multiprocessing.connection.Connection, book: CertificateBook | None
) -> None:
    async with ProxyServer(settings, book=book) as proxy:
        inbox.send(("ready",))
        pushing = asyncio.create_task(_push_metrics(proxy, inbox), name="worker metrics")
        try:
            await _follow_primary(proxy, settings, inbox)
        finally:
            pushing.cancel()


async def _follow_primary(
    proxy: ProxyServer, settings: ProxySettings, inbox: multiprocessing.connection.Connection
) -> None:
    while True:
        try:
            message: tuple[Any, ...] = await asyncio.to_thread(inbox.recv)
        except EOFError:
            log.warning("proxy worker: the primary went away; draining")
            await proxy.drain(settings.drain_seconds)
            return
        kind = message[0]
        if kind == "table":
            _, routes, clusters, gateway = message
            proxy.update(routes, clusters, gateway=gateway)
        elif kind == "checks":
            proxy.engine.router.set_checked(message[1], now=proxy.engine.clock.now)
        elif kind == "book":
            if proxy.https is not None:
                proxy.https.adopt(book_from_message(message[1]))
        elif kind == "answers":
            proxy.adopt_answers(message[1])
        elif kind == "drain":
            await proxy.drain(message[1])
            return
