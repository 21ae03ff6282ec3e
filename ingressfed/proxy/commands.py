"""``ingressfed proxy``: run the proxy alone, following a remote controller's feed or a routes file."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import yaml

from ingressfed.edge import agent as edge_agent
from ingressfed.errors import ConfigError
from ingressfed.model import Backend, Cluster, Location, Route
from ingressfed.proxy.server import ProxyServer
from ingressfed.proxy.settings import GeoSettings, ProxySettings, parse_listen, parse_workers

__all__ = ["load_routes_file", "register", "run"]

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "proxy",
        help="run the geo-aware L7 proxy alone (follows a controller feed, or serves a routes file)",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--feed", metavar="URL", help="controller base URL to follow, e.g. https://ctl:9090")
    source.add_argument("--routes", metavar="FILE", type=Path, help="static YAML file: clusters and routes")
    p.add_argument("--config", metavar="FILE", help="federation config; its proxy: and geo: sections")
    p.add_argument("--token-file", type=Path, help="bearer token for the feed")
    p.add_argument("--ca-file", type=Path, help="CA bundle that signed the controller's TLS certificate")
    p.add_argument("--state-file", type=Path, help="where the last feed view is kept (served when offline)")
    p.add_argument("--listen", help="HOST:PORT to serve (overrides the config)")
    p.add_argument("--admin-listen", help="HOST:PORT of /healthz, /readyz, /metrics, /routes")
    p.add_argument("--geo-database", help="MaxMind-format City database")
    p.add_argument("--trusted-proxy", action="append", default=[], metavar="CIDR", help="repeatable")
    p.add_argument("--default-order", action="append", default=[], metavar="CLUSTER", help="repeatable")
    p.add_argument("--no-uvloop", action="store_true", help="use asyncio's own event loop")
    p.add_argument(
        "--workers",
        metavar="N",
        help="processes serving the port (SO_REUSEPORT), or 'auto' (one per core); overrides proxy.workers",
    )
    p.add_argument(
        "--status", action="store_true", help="serve /status (this proxy's own view) on the admin port"
    )
    p.add_argument(
        "--status-token-file", type=Path, help="token /status requires (Bearer, or Basic password)"
    )
    edge_agent.add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Plain function (not a coroutine) so that it can choose its event loop (uvloop when present)."""
    try:
        edge_agent.check_arguments(args)
        settings = settings_from_args(args)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    return _run_loop(_serve(args, settings), uvloop=not args.no_uvloop)


def _run_loop(main: Coroutine[Any, Any, int], *, uvloop: bool) -> int:
    factory = None
    if uvloop:
        try:
            import uvloop as _uvloop

            factory = _uvloop.new_event_loop
        except ImportError:
            log.info("uvloop is not installed; using asyncio's event loop")
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def settings_from_args(args: argparse.Namespace) -> ProxySettings:
    if args.config:
        from ingressfed.config import load_config

        config = load_config(args.config)
        # The data plane alone in its process: every usable core unless proxy.workers says otherwise.
        settings = ProxySettings.from_config(
            config.proxy.model_dump(by_alias=True),
            config.geo.model_dump(by_alias=True),
            default_workers="auto",
        )
    else:
        settings = ProxySettings(workers=parse_workers("auto"))
    changes: dict[str, Any] = {}
    if args.listen:
        changes["host"], changes["port"] = parse_listen(args.listen)
    if args.admin_listen:
        changes["admin_host"], changes["admin_port"] = parse_listen(args.admin_listen)
    geo = settings.geo
    if args.geo_database or args.trusted_proxy or args.default_order:
        geo = GeoSettings(
            database=args.geo_database or geo.database,
            trusted_proxies=tuple(args.trusted_proxy) or geo.trusted_proxies,
            default_order=tuple(args.default_order) or geo.default_order,
        )
    if getattr(args, "workers", None):
        changes["workers"] = parse_workers(args.workers)
    if getattr(args, "edge_cluster", None):
        changes["home_cluster"] = args.edge_cluster
    return dataclasses.replace(settings, geo=geo, **changes)


async def _serve(args: argparse.Namespace, settings: ProxySettings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    proxy = ProxyServer(settings)
    if args.status:
        from ingressfed.config import read_token_file
        from ingressfed.status.proxyview import attach_proxy_status

        try:
            token = read_token_file(args.status_token_file) if args.status_token_file else None
        except ConfigError as exc:
            log.error("--status-token-file: %s", exc)
            return 2
        attach_proxy_status(proxy, token=token)
    async with proxy, asyncio.TaskGroup() as tg:
        if args.routes is not None:
            clusters, routes = load_routes_file(args.routes)
            proxy.update(routes, clusters)
            feeder = None
        else:
            feeder = tg.create_task(_follow(args, proxy))
            # ACME http-01 tokens being validated, answered on the plain listener (issue 10).
            challenges = tg.create_task(_follow_challenges(args, proxy))
            feeder.add_done_callback(lambda _: challenges.cancel())
            if proxy.https is not None and args.token_file:
                # Ingress TLS certificates come on their own part of the feed (issue 10).
                from ingressfed.feed.follower import client_ssl_context
                from ingressfed.tls.distribution import CertificateFollower

                https = proxy.https
                certs = CertificateFollower(
                    args.feed,
                    token=args.token_file.read_text().strip(),
                    on_offers=lambda offers: https.offer("ingress", offers),
                    ssl_context=client_ssl_context(ca_file=args.ca_file) if args.ca_file else None,
                )
                certifier = tg.create_task(certs.run())
                feeder.add_done_callback(lambda _: certifier.cancel())
            if args.edge is not None:
                from ingressfed.feed.follower import client_ssl_context

                ssl_context = client_ssl_context(ca_file=args.ca_file) if args.ca_file else None
                reporter = tg.create_task(edge_agent.report_forever(args, proxy, ssl_context=ssl_context))
                feeder.add_done_callback(lambda _: reporter.cancel())
        await stop.wait()
        log.info("signal received: draining (up to %.0fs)", settings.drain_seconds)
        if feeder is not None:
            feeder.cancel()
        await proxy.drain()
    return 0


async def _follow_challenges(args: argparse.Namespace, proxy: ProxyServer) -> None:
    from ingressfed.acme.challenge_feed import ChallengeFollower, challenge_answers
    from ingressfed.feed.follower import client_ssl_context

    follower = ChallengeFollower(
        args.feed,
        token=args.token_file.read_text().strip() if args.token_file else None,
        ssl_context=client_ssl_context(ca_file=args.ca_file) if args.ca_file else None,
    )
    proxy.answerers.append(follower.answer)
    # The proxy's worker processes (proxy.workers > 1) answer them too.
    follower.listeners.append(lambda tokens: proxy.share_answers("acme", challenge_answers(tokens)))
    await follower.run()


async def _follow(args: argparse.Namespace, proxy: ProxyServer) -> None:
    from ingressfed.feed.follower import FeedFollower, client_ssl_context
    from ingressfed.feed.held import FeedStep

    token = args.token_file.read_text().strip() if args.token_file else None
    ssl_context = client_ssl_context(ca_file=args.ca_file) if args.ca_file else None
    follower = FeedFollower(args.feed, token=token, state_file=args.state_file, ssl_context=ssl_context)

    def apply(step: FeedStep) -> None:
        # Steps, not whole views: the proxy reads the small parts, never the record sets.
        view = step.held
        proxy.update(view.routes, view.clusters, gateway=view.gateway_rules)

    async with follower:
        await follower.follow(apply)


def load_routes_file(path: Path) -> tuple[list[Cluster], list[Route]]:
    """Read ``clusters:`` and ``routes:`` from YAML; every problem is named with its position."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError([f"{path}: cannot read routes file: {exc}"]) from exc
    if not isinstance(doc, dict):
        raise ConfigError([f"{path}: expected a mapping with 'clusters' and 'routes'"])
    problems: list[str] = []
    clusters: list[Cluster] = []
    for i, item in enumerate(doc.get("clusters") or []):
        where = f"{path}: clusters[{i}]"
        try:
            loc = item.get("location")
            clusters.append(
                Cluster(
                    name=str(item["name"]),
                    region=str(item.get("region", "")),
                    zone=str(item.get("zone", "")),
                    location=Location(float(loc["lat"]), float(loc["lon"])) if loc else None,
                    weight=int(item.get("weight", 100)),
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            problems.append(f"{where}: needs name, optional region/zone/location{{lat,lon}}/weight ({exc})")
    routes: list[Route] = []
    for i, item in enumerate(doc.get("routes") or []):
        where = f"{path}: routes[{i}]"
        try:
            backends = tuple(
                Backend(cluster=str(b["cluster"]), host=str(b["host"]), port=int(b.get("port", 80)))
                for b in item.get("backends") or []
            )
            routes.append(
                Route(
                    host=str(item["host"]),
                    path=str(item.get("path", "/")),
                    path_type=str(item.get("pathType", "Prefix")),
                    backends=backends,
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            problems.append(
                f"{where}: needs host, optional path/pathType, backends[{{cluster,host,port}}] ({exc})"
            )
    if problems:
        raise ConfigError(problems)
    return clusters, routes
