"""``ingressfed run``: the controller, the proxy and the embedded DNS server from one config.

Composition only: every piece is built from the config, wired one way
(sources -> Store -> Controller -> sinks: feed, proxy routes, DNS zone), and
started inside one AsyncExitStack so each cleans up only what it started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import ssl
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ingressfed.config import Config, ControllerTlsSection, load_config, split_host_port
from ingressfed.controller import Controller, ControllerSettings, ReconcileOutcome
from ingressfed.edge.runtime import EdgeRuntime
from ingressfed.errors import ConfigError, IngressfedError
from ingressfed.feed.publisher import FeedPublisher, add_feed_routes
from ingressfed.feed.view import FeedView
from ingressfed.gateway.federation import served_rules
from ingressfed.gateway.table import ServedRule
from ingressfed.metrics import ControllerMetrics, MeteredProvider
from ingressfed.model import Cluster, ClusterStatus, Federation, Route
from ingressfed.sources.static import StaticSource
from ingressfed.startup import StartupError, binding
from ingressfed.store import Store
from providers import loader
from providers.base import Provider
from providers.cache import CachedProvider
from providers.dryrun import DryRunProvider
from providers.policy import PolicyProvider

__all__ = ["Running", "build_provider", "register", "routed_records", "start"]

log = logging.getLogger(__name__)


@dataclass
class Running:
    """Handles on a started federation, for the CLI, the demo and tests."""

    config: Config
    store: Store
    controller: Controller
    provider: Provider
    publisher: FeedPublisher
    http_port: int
    dns_server: Any = None
    proxy: Any = None
    edges: EdgeRuntime | None = None
    status: Any = None  # status.state.StatusState when status.enabled
    # Set when a background task (source, controller) dies; ``run`` exits non-zero then.
    failed: asyncio.Event = field(default_factory=asyncio.Event)
    errors: list[BaseException] = field(default_factory=list)

    def _watch(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            if isinstance(exc, IngressfedError):
                # The operator's to fix: ``run`` prints it as one line; the traceback only at DEBUG.
                log.debug("%s stopped: %s", task.get_name(), exc, exc_info=exc)
            else:
                log.error("%s stopped: %s", task.get_name(), exc, exc_info=exc)
            self.errors.append(exc)
            self.failed.set()


def routed_records(config: Config) -> bool:
    """Publish per-cluster routed sets when a provider answers per client."""
    if config.dns.routing != "none":
        return True
    return config.dns.provider == "embedded" and config.dns_server.answers == "geo"


def build_provider(config: Config, metrics: ControllerMetrics, *, dry_run: bool) -> tuple[Provider, Provider]:
    """(raw provider, wrapped provider): cache(dry-run?(policy(metered(raw))))."""
    fed = config.federation_value()
    options = dict(config.dns.options)
    if config.dns.provider == "embedded" and config.dns_server.zone_file is not None:
        # The DNS server answers from the embedded zone: dnsServer.zoneFile is that zone's file
        # (the config check refuses two different paths).
        options.setdefault("zoneFile", config.dns_server.zone_file)
    if config.dns.routing != "none":
        # Providers that write routed records (Route53) need to know which kind.
        options.setdefault("routing", config.dns.routing)
    raw = loader.create(config.dns.provider, zone=fed.suffix, options=options)
    wrapped: Provider = MeteredProvider(raw, metrics)
    wrapped = PolicyProvider(wrapped, fed.policy)
    if dry_run or config.dns.dry_run:
        wrapped = DryRunProvider(wrapped)
    return raw, CachedProvider(wrapped)


class _RouteSink:
    """Pushes routes to the proxy only when they (or the clusters) changed."""

    def __init__(self, proxy: Any, fed: Federation) -> None:
        self.proxy = proxy
        self.fed = fed
        self._last: tuple[tuple[Route, ...], tuple[Cluster, ...], tuple[ServedRule, ...]] | None = None

    def __call__(self, outcome: ReconcileOutcome) -> None:
        rules = served_rules(outcome.snapshot, self.fed)
        key = (outcome.routes, outcome.snapshot.clusters, rules)
        if key != self._last:
            self._last = key
            self.proxy.update(outcome.routes, outcome.snapshot.clusters, gateway=rules)


def _feed_sink(publisher: FeedPublisher, fed: Federation) -> Callable[[ReconcileOutcome], None]:
    def publish(outcome: ReconcileOutcome) -> None:
        publisher.publish(
            FeedView(
                version=0,
                records=outcome.records,
                routes=outcome.routes,
                clusters=outcome.snapshot.clusters,
                zone=fed.suffix,
                gateway_rules=served_rules(outcome.snapshot, fed),
            )
        )

    return publish


async def _http_app(
    stack: contextlib.AsyncExitStack,
    running_ref: dict[str, Running],
    config: Config,
    publisher: FeedPublisher,
    metrics: ControllerMetrics,
    *,
    add_routes: Callable[[web.Application], None],
    status: Any = None,
) -> int:
    @web.middleware
    async def standby_feed(request: web.Request, handler: Any) -> web.StreamResponse:
        # With several controller replicas behind one Service, only the Lease holder's view is
        # the zone as written; a standby sends followers elsewhere instead of an empty view.
        running = running_ref.get("running")
        if request.path.startswith("/v1/feed") and running is not None and not running.controller.is_leader():
            return web.Response(
                status=503, headers={"Retry-After": "2"}, text="standby replica: the leader serves the feed\n"
            )
        response: web.StreamResponse = await handler(request)
        return response

    app = web.Application(middlewares=[standby_feed])

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        running = running_ref.get("running")
        ready = running is not None and running.controller.reconciles > 0
        return web.Response(status=200 if ready else 503, text="ready\n" if ready else "not ready\n")

    async def metrics_handler(_: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    add_feed_routes(app, publisher, config.feed_token())
    add_routes(app)
    if status is not None:
        from ingressfed.status.api import add_status_routes

        add_status_routes(app, status, token=config.status_token())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    host, port = split_host_port(config.controller.listen)
    tls = config.controller.tls
    site = web.TCPSite(runner, host, port, ssl_context=controller_ssl_context(tls) if tls else None)
    with binding({"controller.listen": config.controller.listen}):
        await site.start()
    server = site._server  # aiohttp keeps the bound sockets here; needed for port 0
    sockets = getattr(server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else port


def controller_ssl_context(tls: ControllerTlsSection) -> ssl.SSLContext:
    """The controller listener's TLS context; a bad file is a one-line StartupError naming it."""
    from ingressfed.tls.certificate import CertificateError, parse_pair
    from ingressfed.tls.contexts import single_certificate_context

    try:
        cert = parse_pair(Path(tls.cert_file).read_bytes(), Path(tls.key_file).read_bytes())
    except OSError as exc:
        raise StartupError(
            "controller.tls", f"cannot read {exc.filename}: {exc.strerror}", "check certFile and keyFile"
        ) from exc
    except CertificateError as exc:  # its message never carries the key's bytes
        raise StartupError(
            "controller.tls",
            f"{tls.cert_file} / {tls.key_file}: {exc}",
            "give a PEM certificate chain (leaf first) and its unencrypted private key",
        ) from exc
    return single_certificate_context(cert)


async def _start_dns(
    stack: contextlib.AsyncExitStack, config: Config, raw: Provider
) -> tuple[Any, Callable[[ReconcileOutcome], None] | None]:
    from ingressfed.dnsserver.index import Locator, build_index
    from ingressfed.dnsserver.server import DnsServer
    from ingressfed.dnsserver.transfer import policy_from_config
    from ingressfed.dnsserver.zone import next_serial, zone_data_from_records
    from providers.embedded import EmbeddedProvider, soa_from_options

    if config.dns_server.workers > 1:
        # Workers are followers of a zone source; the controller's own server is not (docs/dnsserver.md).
        raise ConfigError(
            [
                f"dnsServer.workers: {config.dns_server.workers} is for `ingressfed dns-serve` only; the DNS "
                "server inside `ingressfed run` is one process: set it to 1 here and run "
                "`ingressfed dns-serve --feed URL --workers N` (or --zone-file) beside the controller"
            ]
        )
    locator = None
    if config.geo.database:
        from geo.clientip import TrustedProxies
        from geo.lookup import GeoLookup

        lookup = GeoLookup(config.geo.database)
        stack.callback(lookup.close)

        def locate(ip: str) -> Any:
            found = lookup.locate(ip)
            return found.location if found is not None else None

        # EDNS Client Subnet is believed only from the configured resolvers/proxies (DESIGN:
        # "trusted only from configured CIDRs"); others are located by their own address.
        trusted = TrustedProxies(config.geo.trusted_proxies)
        locator = Locator(locate, trusts_ecs_from=trusted.trusts)
    answers = config.dns_server.answers
    order = config.geo.default_order

    host, port = split_host_port(config.dns_server.listen)
    transfer = policy_from_config(config.dns_server.transfer)
    if isinstance(raw, EmbeddedProvider):
        index = build_index(raw.zone_data, answers=answers, locator=locator, default_order=order)
        server = DnsServer(index, host=host, port=port, transfer=transfer)
        with binding({"dnsServer.listen": config.dns_server.listen}):
            await stack.enter_async_context(server)
        # Each applied batch is followed in place: only the names it touches are rendered
        # again, on the event loop, between two queries. When that cannot be (a render
        # under way, too many changes), update_soon renders the new zone whole off the loop.
        stack.callback(raw.subscribe_changes(server.update_soon))
        return server, None
    # Another provider holds the zone: serve the controller's view of it as well.
    zone = config.federation_value().suffix
    soa = soa_from_options(zone, {})
    persist = _ZonePersister(config.dns_server.zone_file)
    initial = persist.load(zone) or zone_data_from_records(zone, [], soa=soa)
    server = DnsServer(
        build_index(initial, answers=answers, locator=locator, default_order=order),
        host=host,
        port=port,
        transfer=transfer,
    )
    with binding({"dnsServer.listen": config.dns_server.listen}):
        await stack.enter_async_context(server)
    stack.push_async_callback(persist.close)
    last: list[tuple[Any, ...]] = [()]
    serial = [next_serial(initial.serial)]

    def follow(outcome: ReconcileOutcome) -> None:
        if outcome.records != last[0]:
            last[0] = outcome.records
            serial[0] = next_serial(serial[0])
            data = zone_data_from_records(zone, list(outcome.records), serial=serial[0], soa=soa)
            server.update_soon(data)
            persist.save(data)

    return server, follow


class _ZonePersister:
    """Keeps the served zone at ``dnsServer.zoneFile``: loaded at start (the last known zone while
    the provider cannot be read), rewritten off the event loop, latest view only."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._latest: Any = None
        self._task: asyncio.Task[None] | None = None

    def load(self, zone: str) -> Any:
        from ingressfed.dnsserver.zonefile import load_zone_file

        if self.path is None:
            return None
        data = load_zone_file(self.path)
        if data is not None and data.zone != zone:
            raise ConfigError(
                [f"dnsServer.zoneFile: {self.path} holds zone {data.zone}, not {zone}; point it elsewhere"]
            )
        return data

    def save(self, data: Any) -> None:
        if self.path is None:
            return
        self._latest = data
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        from ingressfed.dnsserver.zonefile import save_zone_file

        while self._latest is not None:
            data, self._latest = self._latest, None
            try:
                await asyncio.to_thread(save_zone_file, str(self.path), data)
            except OSError as exc:
                log.error("cannot write dnsServer.zoneFile %s: %s", self.path, exc.strerror)

    async def close(self) -> None:
        if self._task is not None:
            await self._task


@contextlib.asynccontextmanager
async def start(config: Config, *, dry_run: bool = False) -> AsyncIterator[Running]:
    """Build and start everything the config enables; stop it all on exit."""
    fed = config.federation_value()
    metrics = ControllerMetrics()
    raw, provider = build_provider(config, metrics, dry_run=dry_run)
    store = Store()
    static = config.source.kind == "static"
    for c in config.cluster_values():
        # Static members have no API server to probe: they are Ready unless the objects file says not.
        # The Store gives every member its location (declared, else from its region): one rule for all.
        store.set_cluster(c if not static else replace(c, status=ClusterStatus.READY))
    publisher = FeedPublisher()
    controller = Controller(
        federation=fed,
        store=store,
        provider=provider,
        settings=ControllerSettings(
            debounce=config.controller.debounce,
            resync=config.controller.resync,
            routed=routed_records(config),
            routed_services=config.dns.routing != "none" or config.dns_server.geo_service_names,
            zone_is_local=config.dns.provider == "embedded",
        ),
        metrics=metrics,
        sinks=[_feed_sink(publisher, fed)],
        # With leader election, nobody leads until the elector says so (it replaces this): a
        # replica must not write in the moments before its campaign starts.
        is_leader=(lambda: False) if config.leader_election.enabled else (lambda: True),
    )
    running_ref: dict[str, Running] = {}
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(provider.close)
        stack.callback(publisher.close)
        edges = EdgeRuntime(config, store)
        status = _status(stack, config, publisher)
        from ingressfed.acme.challenge_feed import ChallengeBoard, add_challenge_routes
        from ingressfed.tls.distribution import CertificateBundle, add_certificate_routes

        certificates = CertificateBundle()  # Ingress TLS Secrets and ACME for remote proxies (issue 10)
        feed_offers: dict[str, list[Any]] = {"ingress": [], "acme": []}
        challenge_board = ChallengeBoard()  # ACME http-01 tokens for remote proxies (issue 10)

        def add_routes(app: web.Application) -> None:
            edges.add_routes(app)
            add_certificate_routes(app, certificates, config.feed_token())
            add_challenge_routes(app, challenge_board, config.feed_token())

        http_port = await _http_app(
            stack, running_ref, config, publisher, metrics, add_routes=add_routes, status=status
        )
        dns_server = None
        if config.dns_server.enabled:
            dns_server, follow = await _start_dns(stack, config, raw)
            if follow is not None:
                controller.sinks.append(follow)
        proxy = None
        if config.proxy.enabled:
            from ingressfed.proxy.server import ProxyServer
            from ingressfed.proxy.settings import ProxySettings

            settings = ProxySettings.from_config(
                config.proxy.model_dump(by_alias=True), config.geo.model_dump(by_alias=True)
            )
            proxy = ProxyServer(settings)
            if status is not None:
                from ingressfed.status.proxyview import attach_proxy_status

                attach_proxy_status(proxy, token=config.status_token())  # its own view on its admin port
            with binding(
                {"proxy.listen": config.proxy.listen, "proxy.adminListen": config.proxy.admin_listen}
            ):
                await stack.enter_async_context(proxy)
            edges.attach_proxy(proxy)
            controller.sinks.append(_RouteSink(proxy, fed))
        from ingressfed.tls.status import CertificateStatus

        https = getattr(proxy, "https", None)
        certificate_status = CertificateStatus(
            catalog=https.catalog if https is not None else None,
            touch=status.touch if status is not None else lambda: None,
        )
        if status is not None:
            status.add_resource("certificates", certificate_status.items)
        if status is not None:
            from ingressfed.status.wiring import attach_data_planes

            attach_data_planes(status, proxy=proxy, dns_server=dns_server, edges=edges)
            controller.sinks.append(status.observe_outcome)
        running = Running(
            config, store, controller, raw, publisher, http_port, dns_server, proxy, edges, status
        )
        running_ref["running"] = running
        tasks: list[asyncio.Task[None]] = []
        if static:
            if config.source.file is None:
                raise ConfigError(["source.file: required when source.kind is static"])
            source = StaticSource(config.source.file, store)
            source.load_once()
            tasks.append(asyncio.create_task(source.run(), name="static-source"))
        acme = None
        if config.tls.acme is not None:
            from ingressfed.acme.wiring import start_acme

            def acme_offers(offers: list[Any]) -> None:
                feed_offers["acme"] = offers
                certificates.set([o for part in feed_offers.values() for o in part])
                certificate_status.offer(offers, group="acme")

            acme, acme_task = start_acme(
                config.tls.acme,
                controller,
                proxy,
                on_offers=acme_offers,
                zone=config.federation.zone,
                annotations=not static,
                board=challenge_board,
            )
            tasks.append(acme_task)
            certificate_status.waiting.append(acme.waiting)
        if not static:

            def tls_offers(offers: list[Any]) -> None:
                feed_offers["ingress"] = offers
                certificates.set([o for part in feed_offers.values() for o in part])
                if https is not None:
                    https.offer("ingress", offers)
                certificate_status.offer(offers)

            observe = acme.observe if acme is not None else None
            tasks.append(
                asyncio.create_task(_run_kube(config, store, controller, tls_offers, observe), name="kube")
            )
        tasks.append(asyncio.create_task(controller.run(), name="controller"))
        tasks.append(asyncio.create_task(edges.run(), name="edges"))
        for t in tasks:
            t.add_done_callback(running._watch)
        try:
            yield running
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                if t.done() and not t.cancelled() and t.exception() is not None:
                    continue  # already in running.errors (and reported once by the caller)
                with contextlib.suppress(asyncio.CancelledError):
                    await t


def _status(stack: contextlib.AsyncExitStack, config: Config, publisher: FeedPublisher) -> Any:
    if not config.status.enabled:
        return None
    from ingressfed.status.wiring import controller_status

    return controller_status(stack, config, publisher)


async def _run_kube(
    config: Config, store: Store, controller: Controller, tls_offers: Any = None, acme_observe: Any = None
) -> None:
    from ingressfed.kube_runtime import run_kubernetes

    await run_kubernetes(config, store, controller, tls_offers=tls_offers, acme_observe=acme_observe)


async def _serve(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(e)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with start(config, dry_run=args.dry_run) as running:
            log.info(
                "ingressfed running: controller on %s, dns %s, proxy %s",
                config.controller.listen,
                config.dns_server.listen if running.dns_server else "off",
                config.proxy.listen if running.proxy else "off",
            )
            stopped = asyncio.create_task(stop.wait())
            failed = asyncio.create_task(running.failed.wait())
            await asyncio.wait({stopped, failed}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            failed.cancel()
            if running.proxy is not None:
                await running.proxy.drain()
            if running.errors:
                print(f"ingressfed: {running.errors[0]}")
                return 1
    except IngressfedError as e:
        log.debug("startup failed", exc_info=e)
        print(f"ingressfed: {e}", file=sys.stderr)
        return 1
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run the controller (and proxy and DNS server) from a config file")
    p.add_argument("--config", required=True, type=Path, help="federation config YAML")
    p.add_argument("--dry-run", action="store_true", help="print the DNS plan and apply nothing")
    p.set_defaults(func=_serve)
