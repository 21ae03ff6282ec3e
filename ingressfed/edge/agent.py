"""The edge role of ``ingressfed proxy``: identity flags, own-cluster preference, the reporter.

``ingressfed proxy --feed URL --edge NAME --edge-cluster CLUSTER [--public-address IP]`` follows
the controller's feed as any proxy does, tries CLUSTER first while it is healthy, and reports its
whole backend view to ``URL/v1/edges/NAME/health`` every ``--report-interval`` seconds with the
feed's bearer token (or ``--report-token-file``).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import ssl
from typing import TYPE_CHECKING

import aiohttp

from ingressfed.config import read_token_file
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


def check_arguments(args: argparse.Namespace) -> None:
    problems = []
    if args.edge is not None and args.feed is None:
        problems.append("--edge: an edge reports to the controller it follows; give --feed URL")
    if not 1.0 <= args.report_interval <= 60.0:
        problems.append(f"--report-interval: {args.report_interval:g} must be between 1 and 60 seconds")
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
    async with aiohttp.ClientSession() as session:
        reporter = HealthReporter(
            edge=args.edge,
            view=proxy.backend_view,
            submit=http_submitter(session, url, token=token, ssl_context=ssl_context),
            interval=args.report_interval,
            addresses=tuple(args.public_address),
            min_spacing=_MIN_SPACING,
        )
        proxy.add_health_listener(lambda _cluster, _healthy: reporter.poke())
        log.info(
            "edge %s reporting to %s every %.0fs",
            args.edge,
            url,
            args.report_interval,
            extra={"edge": args.edge},
        )
        await reporter.run()
