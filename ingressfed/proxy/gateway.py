"""HTTPRoute rules in the proxy: the matcher beside the Ingress table, and what filters do.

``attach_gateway`` adds a compiled HTTPRoute table to a :class:`RoutingTable`: each weighted
backendRef of each rule becomes one :class:`RouteEntry` (its targets are the member clusters
serving that Service, ranked per client like any route), carrying a :class:`GatewayHop` that
says which filters apply. A request picks a backendRef by weight (``rand`` is the only impure
input, passed in), then a cluster by the usual ranking. ``gateway_outcome`` turns a hop into
the local answer (redirect, 500) or the edits of the forwarded request (pure).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from ingressfed.gateway.filters import modify_headers, redirect_location, rewritten_path
from ingressfed.gateway.resources import HeaderModifier
from ingressfed.gateway.table import (
    GatewayTable,
    RouteAction,
    ServedRule,
    WeightedBackend,
    build_gateway_table,
)
from ingressfed.model import Backend, Cluster, Location, Route
from ingressfed.proxy.table import ClusterTarget, RouteEntry, RoutingTable

__all__ = ["GatewayHop", "GatewayMatcher", "Redirect", "attach_gateway", "modified_headers", "rewrite_target"]


@dataclass(frozen=True, slots=True)
class GatewayHop:
    """Why a request reached this entry: the rule's action and the backendRef picked."""

    action: RouteAction
    backend: WeightedBackend | None  # None: every weight is 0 (the API says: 500)
    prefix: str | None  # the PathPrefix value of the rule's only match (ReplacePrefixMatch)
    listener_port: int

    @property
    def response_headers(self) -> tuple[HeaderModifier, ...]:
        mods = (self.action.response_headers, self.backend.response_headers if self.backend else None)
        return tuple(m for m in mods if m is not None)

    @property
    def request_headers(self) -> tuple[HeaderModifier, ...]:
        mods = (self.action.request_headers, self.backend.request_headers if self.backend else None)
        return tuple(m for m in mods if m is not None)


@dataclass(frozen=True, slots=True)
class Redirect:
    status: int
    location: str


def redirect_for(hop: GatewayHop, *, scheme: str, host: str, path: str, query: str) -> Redirect | None:
    r = hop.action.redirect
    if r is None:
        return None
    # The port the request reached the global address on: the listener port of the rule (HTTP
    # rules answer only on the plain listener, HTTPS rules only on the TLS one).
    location = redirect_location(
        r,
        scheme=scheme,
        host=host,
        listener_port=hop.listener_port,
        path=path,
        query=query,
        matched_prefix=hop.prefix,
    )
    return Redirect(status=r.status_code, location=location)


def modified_headers(
    headers: Sequence[tuple[bytes, bytes]], mods: Sequence[HeaderModifier]
) -> list[tuple[bytes, bytes]]:
    """Header pairs (bytes, as on the wire) after the modifiers, in order."""
    text = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]
    for m in mods:
        text = modify_headers(text, m)
    return [(n.encode("latin-1"), v.encode("latin-1")) for n, v in text]


def rewrite_target(hop: GatewayHop, target: bytes) -> bytes:
    """The request target after a URLRewrite of the path (the query string is kept)."""
    rw = hop.action.rewrite
    if rw is None or rw.path is None:
        return target
    path, sep, query = target.partition(b"?")
    new = rewritten_path(path.decode("latin-1"), rw.path, hop.prefix).encode("latin-1")
    return new + sep + query


class _Headers(Mapping[str, str]):
    """Request headers looked up by lower-case name, decoded only when a match asks (first value)."""

    __slots__ = ("_pairs",)

    def __init__(self, pairs: Sequence[tuple[bytes, bytes]]) -> None:
        self._pairs = pairs

    def __getitem__(self, name: str) -> str:
        wanted = name.encode("latin-1")
        for n, v in self._pairs:
            if len(n) == len(wanted) and n.lower() == wanted:
                return v.decode("latin-1")
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (n.decode("latin-1").lower() for n, _ in self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)


class GatewayMatcher:
    """``match`` for hosts HTTPRoutes serve; ``None`` lets the Ingress table try."""

    __slots__ = ("entries", "port", "rand", "table")

    def __init__(
        self,
        table: GatewayTable,
        entries: dict[int, tuple[RouteEntry, ...]],
        *,
        port: int,
        rand: Callable[[], float],
    ) -> None:
        self.table = table
        self.entries = entries  # id(action) -> one entry per backendRef (or one for a redirect)
        self.port = port
        self.rand = rand

    def match(self, host: str, path: str, head: object) -> RouteEntry | None:
        index = self.table.index_for(self.port, host)
        if index is None:
            return None  # not an HTTPRoute host: the Ingress table decides, at no cost here
        method = getattr(head, "method", b"GET").decode("latin-1")
        target: bytes = getattr(head, "target", b"")
        _, _, query = target.partition(b"?")
        headers = _Headers(getattr(head, "headers", ()))
        found = self.table.match_in(
            index, method=method, path=path, headers=headers, query=query.decode("latin-1")
        )
        if found is None:
            return None
        options = self.entries[id(found.action)]
        if len(options) == 1:
            return options[0]
        picked = found.action.pick(self.rand())
        if picked is None:
            return options[-1]  # the zero-weight entry: answered 500
        return options[found.action.backends.index(picked)]


class _Targets:
    """ClusterTargets per backend set, built once per table (10 rules to one Service share them)."""

    def __init__(self, clusters: Iterable[Cluster], locate: Callable[[Cluster], Location | None]) -> None:
        self.by_cluster = {c.name: c for c in clusters}
        self.locations = {name: locate(c) for name, c in self.by_cluster.items()}
        self._made: dict[tuple[Backend, ...], tuple[tuple[Backend, ...], tuple[ClusterTarget, ...]]] = {}

    def of(self, wanted: tuple[Backend, ...]) -> tuple[tuple[Backend, ...], tuple[ClusterTarget, ...]]:
        made = self._made.get(wanted)
        if made is None:
            backends = tuple(b for b in wanted if b.cluster in self.by_cluster)
            grouped: dict[str, list[Backend]] = {}
            for b in backends:
                grouped.setdefault(b.cluster, []).append(b)
            targets = tuple(
                ClusterTarget(
                    name=name,
                    location=self.locations[name],
                    weight=self.by_cluster[name].weight,
                    backends=tuple(members),
                )
                for name, members in sorted(grouped.items())
            )
            made = self._made[wanted] = (backends, targets)
        return made


def _hop_entry(index: int, hop: GatewayHop, host: str, targets_of: _Targets) -> RouteEntry:
    backends, targets = targets_of.of(hop.backend.backends if hop.backend else ())
    route = Route(host=host, path="/", path_type="Prefix", backends=backends)
    return RouteEntry(
        index=index, route=route, targets=targets, by_name={t.name: t for t in targets}, hop=hop
    )


def attach_gateway(
    table: RoutingTable,
    rules: Iterable[ServedRule],
    clusters: Iterable[Cluster],
    *,
    locate: Callable[[Cluster], Location | None],
    port: int = 80,
    tls_port: int | None = None,
    rand: Callable[[], float] = random.random,
) -> RoutingTable:
    """``table`` with HTTPRoute rules of listener ``port`` served on the plain listener and, when
    ``tls_port`` is given, those of listener ``tls_port`` on the TLS listener (other ports' rules
    are not served here)."""
    rules = tuple(rules)
    table = _attach(table, rules, clusters, locate=locate, port=port, rand=rand, tls=False)
    if tls_port is not None:
        table = _attach(table, rules, clusters, locate=locate, port=tls_port, rand=rand, tls=True)
    return table


def _attach(
    table: RoutingTable,
    rules: Iterable[ServedRule],
    clusters: Iterable[Cluster],
    *,
    locate: Callable[[Cluster], Location | None],
    port: int,
    rand: Callable[[], float],
    tls: bool,
) -> RoutingTable:
    served = [r for r in rules if r.port == port]
    if not served:
        return table
    targets_of = _Targets(clusters, locate)
    entries: dict[int, tuple[RouteEntry, ...]] = {}
    extra: list[RouteEntry] = []
    check_hosts = dict(table.check_hosts)
    index = len(table.entries)
    for rule in served:
        action = rule.action
        if id(action) in entries:
            continue
        prefix = rule.match.path.value if rule.match.path.type == "PathPrefix" else None
        host = next((h for h in rule.hostnames if not h.startswith("*")), "ingressfed-health")
        hops: list[GatewayHop] = []
        if action.redirect is not None or not action.backends:
            hops.append(GatewayHop(action=action, backend=None, prefix=prefix, listener_port=port))
        else:
            hops.extend(
                GatewayHop(action=action, backend=b, prefix=prefix, listener_port=port)
                for b in action.backends
            )
            if action.total_weight == 0:
                hops.append(GatewayHop(action=action, backend=None, prefix=prefix, listener_port=port))
        made = []
        for hop in hops:
            entry = _hop_entry(index, hop, host, targets_of)
            index += 1
            made.append(entry)
            for b in entry.route.backends:
                check_hosts.setdefault(b, host)
        entries[id(action)] = tuple(made)
        extra.extend(made)
    matcher = GatewayMatcher(build_gateway_table(served), entries, port=port, rand=rand)
    return replace(
        table,
        entries=table.entries + tuple(extra),
        backends=frozenset(check_hosts),
        check_hosts=check_hosts,
        gateway=table.gateway if tls else matcher,
        gateway_tls=matcher if tls else table.gateway_tls,
    )
