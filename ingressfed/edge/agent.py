"""The edge role of ``ingressfed proxy``: identity flags, own-cluster preference, the reporter.

``ingressfed proxy --feed URL --edge NAME --edge-cluster CLUSTER [--public-address IP]`` follows
the controller's feed as any proxy does, tries CLUSTER first while it is healthy, and reports its
whole backend view to ``URL/v1/edges/NAME/health`` every ``--report-interval`` seconds with the
feed's bearer token (or ``--report-token-file``). Every ``--peer-check-interval`` seconds it also
checks the other edges' public addresses (``edge/peers``) and puts the outcome in its reports.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import ssl
from typing import TYPE_CHECKING

import aiohttp

from ingressfed.config import read_token_file
from ingressfed.edge.peers import PeerChecker
from ingressfed.edge.reporter import HealthReporter, http_submitter, report_url
from ingressfed.errors import ConfigError

if TYPE_CHECKING:
    from ingressfed.proxy.server import ProxyServer

__all__ = ["add_arguments", "check_arguments", "report_forever"]

log = logging.getLogger(__name__)

# Leaves the controller's default ``edgeHealth.minReportInterval`` (1 s) a margin.
_MIN_SPACING = 1.1


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("edge role (a proxy in a member cluster)")
    g.add_argument("--edge", metavar="NAME", help="this edge's name, as declared in the controller's edges:")
    g.add_argument("--edge-cluster", metavar="CLUSTER", help="the member cluster this edge runs in")
    g.add_argument(
        "--public-address", action="append", default=[], metavar="IP", help="announced address (repeatable)"
    )
    g.add_argument("--report-interval", type=float, default=5.0, metavar="SECONDS", help="default 5")
    g.add_argument("--report-token-file", metavar="FILE", help="report token (default: --token-file)")
    g.add_argument(
        "--peer-check-interval",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="check the other edges' public addresses this often, jittered ±20%% (default 5; 0: off)",
    )
    g.add_argument(
        "--peer-check-timeout", type=float, default=2.0, metavar="SECONDS", help="per check (default 2)"
    )
    g.add_argument(
        "--peer-port", type=int, metavar="PORT", help="the port peers serve clients on (default: --listen's)"
    )


def check_arguments(args: argparse.Namespace) -> None:
    problems = []
    if args.edge is not None and args.feed is None:
        problems.append("--edge: an edge reports to the controller it follows; give --feed URL")
    if not 1.0 <= args.report_interval <= 60.0:
        problems.append(f"--report-interval: {args.report_interval:g} must be between 1 and 60 seconds")
    if args.peer_check_interval != 0 and not 1.0 <= args.peer_check_interval <= 300.0:
        problems.append(
            f"--peer-check-interval: {args.peer_check_interval:g} must be 1 to 300 seconds (or 0: off)"
        )
    if not 0.1 <= args.peer_check_timeout <= 30.0:
        problems.append(
            f"--peer-check-timeout: {args.peer_check_timeout:g} must be between 0.1 and 30 seconds"
        )
    elif args.peer_check_interval and args.peer_check_timeout >= args.peer_check_interval:
        problems.append("--peer-check-timeout: must be shorter than --peer-check-interval")
    if args.peer_port is not None and not 1 <= args.peer_port <= 65535:
        problems.append(f"--peer-port: {args.peer_port} must be between 1 and 65535")
    for a in args.public_address:
        try:
            ipaddress.ip_address(a)
        except ValueError:
            problems.append(f"--public-address: {a!r} is not an IP address")
    if problems:
        raise ConfigError(problems)


async def report_forever(
    args: argparse.Namespace, proxy: ProxyServer, *, ssl_context: ssl.SSLContext | None
) -> None:
    token_file = args.report_token_file or args.token_file
    token = read_token_file(token_file) if token_file else None
    url = report_url(args.feed, args.edge)
    async with aiohttp.ClientSession() as session, asyncio.TaskGroup() as tg:
        checker = None
        if args.peer_check_interval:
            checker = PeerChecker(
                edge=args.edge,
                controller=args.feed,
                # GET /v1/edges is the controller's read API: the feed's token.
                token=read_token_file(args.token_file) if args.token_file else None,
                port=args.peer_port or proxy.settings.port,
                interval=args.peer_check_interval,
                timeout=args.peer_check_timeout,
                ssl_context=ssl_context,
            )
        reporter = HealthReporter(
            edge=args.edge,
            view=proxy.backend_view,
            submit=http_submitter(session, url, token=token, ssl_context=ssl_context),
            interval=args.report_interval,
            addresses=tuple(args.public_address),
            min_spacing=_MIN_SPACING,
            peers=checker.results if checker is not None else lambda: None,
        )
        proxy.add_health_listener(lambda _cluster, _healthy: reporter.poke())
        if checker is not None:
            checker.on_change = reporter.poke
            tg.create_task(checker.run())
        log.info(
            "edge %s reporting to %s every %.0fs",
            args.edge,
            url,
            args.report_interval,
            extra={"edge": args.edge},
        )
        tg.create_task(reporter.run())
