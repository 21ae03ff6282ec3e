"""Builds the status side for ``ingressfed run`` / the demo, and for one proxy (composition only)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
from prometheus_client.registry import Collector

from ingressfed.config import Config
from ingressfed.feed.publisher import FeedPublisher
from ingressfed.status.document import EdgeDetail
from ingressfed.status.state import StatusState

__all__ = [
    "PROXY_REQUESTS",
    "attach_data_planes",
    "controller_status",
    "counts_from_registry",
    "dns_resolver",
    "edge_details",
]

log = logging.getLogger(__name__)

# The proxy's request counter (cluster, code): the page's requests/s and error rate come from it.
PROXY_REQUESTS = "ingressfed_proxy_requests"


def counts_from_registry(registry: Collector) -> Callable[[], Mapping[tuple[str, str], float]]:
    def counts() -> dict[tuple[str, str], float]:
        out: dict[tuple[str, str], float] = {}
        for family in registry.collect():
            if family.name != PROXY_REQUESTS:
                continue
            for s in family.samples:
                if s.name == PROXY_REQUESTS + "_total":
                    key = (s.labels.get("cluster", ""), s.labels.get("code", ""))
                    out[key] = out.get(key, 0.0) + s.value
        return out

    return counts


def dns_resolver(server: Any) -> Callable[[str, str], list[str] | None]:
    """The in-process DNS server's own answer to an A query for ``name`` from ``ip``."""
    from ingressfed.dnsserver.answer import answer

    def resolve(name: str, ip: str) -> list[str] | None:
        query = dns.message.make_query(name, dns.rdatatype.A)
        wire = answer(server.index, query.to_wire(), ip)
        if wire is None:
            return None
        response = dns.message.from_wire(wire)
        if response.rcode() != dns.rcode.NOERROR:
            return [dns.rcode.to_text(response.rcode())]
        return [
            f"{dns.rdatatype.to_text(rrset.rdtype)} {rdata.to_text().rstrip('.')}"
            for rrset in response.answer
            for rdata in rrset
        ]

    return resolve


def controller_status(
    stack: contextlib.ExitStack | contextlib.AsyncExitStack, config: Config, publisher: FeedPublisher
) -> StatusState | None:
    """The controller's status state when ``status.enabled``; None otherwise."""
    if not config.status.enabled:
        return None
    locate = None
    if config.geo.database:
        from geo.lookup import GeoLookup

        lookup = GeoLookup(config.geo.database)
        stack.callback(lookup.close)
        locate = lookup.locate
    state = StatusState(
        role="controller", view=publisher.current, locate=locate, default_order=config.geo.default_order
    )
    stack.callback(state.close)
    return state


def edge_details(edges: Any) -> Callable[[], dict[str, EdgeDetail]]:
    """The edge registry's rows (its times are the loop's monotonic clock) with unix times."""

    def details() -> dict[str, EdgeDetail]:
        now = edges.clock()
        wall = time.time()
        return {
            r.name: EdgeDetail(
                status=r.status,
                last_report=None if r.last_seen is None else wall - (now - r.last_seen),
                reports=r.reports,
                backends_up=r.backends_up,
                backends=r.backends,
                first_report=None if r.first_seen is None else wall - (now - r.first_seen),
                reason=r.reason,
            )
            for r in edges.registry.rows(now=now)
        }

    return details


def attach_data_planes(
    state: StatusState, *, proxy: Any = None, dns_server: Any = None, edges: Any = None
) -> None:
    """In one process the page also shows the proxy's request rates, the DNS server's answers and
    what the edge registry knows of each edge (``edges`` is an ``edge.runtime.EdgeRuntime``)."""
    if edges is not None:
        state.edge_details = edge_details(edges)
    if proxy is not None:
        state.counts = counts_from_registry(proxy.collector)  # with its worker processes' counts
    if dns_server is not None:
        state.resolve = dns_resolver(dns_server)
