"""The immutable routing table: built once per ``update``, read by every request.

Per-host structures (exact paths and prefixes in dicts) are computed here so that a
request costs a dict lookup per path element.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from geo.select import Candidate, rank
from ingressfed.model import Backend, Cluster, Location, Route, Steering, SteeringKind

__all__ = [
    "ClusterTarget",
    "ExtraMatcher",
    "HostRoutes",
    "RouteEntry",
    "RoutingTable",
    "build_table",
    "normalize_host",
    "order_targets",
]

log = logging.getLogger(__name__)

PATH_TYPES: Final = frozenset({"Prefix", "Exact", "ImplementationSpecific"})


@dataclass(frozen=True, slots=True)
class ClusterTarget:
    """A route's backends in one cluster, with what ranking needs."""

    name: str
    location: Location | None
    weight: int
    backends: tuple[Backend, ...]


NEAREST = Steering()


@dataclass(frozen=True, slots=True, eq=False)
class RouteEntry:
    index: int  # position in its table (sorted by host, path, type)
    route: Route
    targets: tuple[ClusterTarget, ...]
    by_name: dict[str, ClusterTarget] = field(repr=False)
    steering: Steering = NEAREST  # the route's policy, or the proxy's default
    https_redirect: bool | None = None  # the Ingress's ssl-redirect annotation (None: the proxy's default)
    # Does the policy change the nearest order per request (else the cached order is used)?
    # Computed once here: the data path reads it for every request.
    steered: bool = False

    hop: object | None = None  # an HTTPRoute rule's filters (proxy.gateway.GatewayHop)
    # steering.affinity_cookie, read twice per request: a compiled attribute, where Steering's
    # (a model dataclass) is a Python attribute lookup
    affinity_cookie: str | None = field(init=False, repr=False, compare=False)
    # ... and so are the two questions every attach asks of it
    counts_in_flight: bool = field(init=False, repr=False, compare=False)  # steering.capacity
    meters_rates: bool = field(init=False, repr=False, compare=False)  # steering.rates

    def __post_init__(self) -> None:
        object.__setattr__(self, "affinity_cookie", self.steering.affinity_cookie)
        object.__setattr__(self, "counts_in_flight", bool(self.steering.capacity))
        object.__setattr__(self, "meters_rates", bool(self.steering.rates))


@dataclass(frozen=True, slots=True, eq=False)
class HostRoutes:
    # dicts, not Mappings, here and below: compiled, a dict's get() is a C call, a Mapping's a
    # Python method call (ADR 0016)
    exact: dict[str, RouteEntry]
    # Prefix paths without their trailing slash ("/" for the root): a request path is looked up
    # element by element, longest first, so the cost grows with its depth, not with the host's
    # number of paths.
    prefixes: dict[str, RouteEntry]

    def match(self, path: str) -> RouteEntry | None:
        entry = self.exact.get(path)
        if entry is not None or not self.prefixes:
            return entry
        # Kubernetes Prefix semantics: element-wise, so /foo matches /foo and /foo/bar, not /foobar.
        probe = path.rstrip("/") or "/"
        while True:
            entry = self.prefixes.get(probe)
            if entry is not None or probe == "/":
                return entry
            probe = probe[: probe.rfind("/")] or "/"


class ExtraMatcher(Protocol):
    def match(self, host: str, path: str, head: object) -> RouteEntry | None: ...


@dataclass(frozen=True, slots=True, eq=False)
class RoutingTable:
    version: int
    hosts: dict[str, HostRoutes]
    wildcards: dict[str, HostRoutes]  # "example.com" for "*.example.com"
    clusters: Mapping[str, Cluster]
    entries: tuple[RouteEntry, ...]
    backends: frozenset[Backend]
    # Host header for each backend's health check: a host it serves, so an ingress routes the probe.
    check_hosts: Mapping[Backend, str] = field(default_factory=dict)
    # HTTPRoute rules (proxy.gateway.GatewayMatcher), tried before the Ingress routes: those of
    # the HTTP Gateway listener for the plain listener, those of the HTTPS one for the TLS listener
    gateway: ExtraMatcher | None = None
    gateway_tls: ExtraMatcher | None = None
    # The TLS listener's matcher, made once per table rather than per request (``for_scheme``).
    tls: _SchemeMatcher = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tls", _SchemeMatcher(self))

    def host(self, host: str) -> HostRoutes | None:
        found = self.hosts.get(host)
        if found is None and self.wildcards:
            _, dot, parent = host.partition(".")
            if dot:
                found = self.wildcards.get(parent)
        return found

    def lookup(self, host: str, path: str) -> RouteEntry | None:
        routes = self.host(host)
        return routes.match(path) if routes is not None else None

    def match(self, host: str, path: str, head: object) -> RouteEntry | None:
        """``request.RouteMatcher``: HTTPRoute rules first (method, headers, query), then Ingress
        rules, which look at host and path only."""
        if self.gateway is not None:
            found = self.gateway.match(host, path, head)
            if found is not None:
                return found
        routes = self.host(host)
        return routes.match(path) if routes is not None else None

    def match_tls(self, host: str, path: str, head: object) -> RouteEntry | None:
        """``match`` for a request that arrived on the TLS listener: the HTTPS listeners' HTTPRoute
        rules (never the HTTP listener's), then the Ingress rules, which both listeners serve."""
        if self.gateway_tls is not None:
            found = self.gateway_tls.match(host, path, head)
            if found is not None:
                return found
        routes = self.host(host)
        return routes.match(path) if routes is not None else None

    def for_scheme(self, scheme: bytes) -> _SchemeMatcher | RoutingTable:
        """The ``request.RouteMatcher`` for a listener speaking ``scheme`` (b"http" or b"https")."""
        return self if scheme == b"http" else self.tls


class _SchemeMatcher:
    """The TLS listener's view of a table: ``match`` is the table's ``match_tls``."""

    __slots__ = ("table",)

    def __init__(self, table: RoutingTable) -> None:
        self.table = table

    def match(self, host: str, path: str, head: object) -> RouteEntry | None:
        return self.table.match_tls(host, path, head)


EMPTY_TABLE = RoutingTable(version=0, hosts={}, wildcards={}, clusters={}, entries=(), backends=frozenset())


def normalize_host(value: str) -> str:
    """Host header or authority -> lower-case name without port or trailing dot; "" when malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return ""
        rest = value[end + 1 :]
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return ""
        return value[1:end]
    host, sep, port = value.rpartition(":")
    if sep:
        if not port.isdigit():
            return ""
        value = host
    return value.rstrip(".")


def _path_key(path: str) -> str:
    return path if path == "/" else path.rstrip("/") or "/"


def build_table(
    routes: Iterable[Route],
    clusters: Iterable[Cluster],
    *,
    version: int,
    locate: Callable[[Cluster], Location | None],
    default_steering: Steering = NEAREST,
) -> RoutingTable:
    """Validate and index routes. Invalid routes are skipped with a warning naming the fix.
    Routes merged into one entry (same host, path and type from several Ingresses) take the
    first policy set among them, in input order; without one, ``default_steering``."""
    by_cluster = {c.name: c for c in clusters}
    merged: dict[tuple[str, str, str], dict[Backend, None]] = {}
    policies: dict[tuple[str, str, str], Steering] = {}
    redirects: dict[tuple[str, str, str], bool] = {}
    for route in routes:
        host = normalize_host(route.host)
        ptype = route.path_type if route.path_type in PATH_TYPES else ""
        if not host or not route.path.startswith("/") or not ptype:
            log.warning(
                "skipping route: host must be a DNS name, path must start with '/', pathType one of %s",
                sorted(PATH_TYPES),
                extra={"host": route.host, "path": route.path, "path_type": route.path_type},
            )
            continue
        exact = ptype == "Exact"
        key = (host, route.path if exact else _path_key(route.path), "Exact" if exact else "Prefix")
        bucket = merged.setdefault(key, {})
        if route.steering is not None:
            policies.setdefault(key, route.steering)
        if route.https_redirect is not None:
            redirects.setdefault(key, route.https_redirect)
        for backend in route.backends:
            if backend.cluster not in by_cluster:
                log.warning("route backend names unknown cluster %s; skipped", backend.cluster)
                continue
            if not 0 < backend.port < 65536:
                log.warning("route backend %s:%s has an invalid port; skipped", backend.host, backend.port)
                continue
            bucket[backend] = None

    entries: list[RouteEntry] = []
    per_host: dict[str, tuple[dict[str, RouteEntry], dict[str, RouteEntry]]] = {}
    for index, (key, backends) in enumerate(sorted(merged.items())):
        host, path, ptype = key
        grouped: dict[str, list[Backend]] = {}
        for backend in backends:
            grouped.setdefault(backend.cluster, []).append(backend)
        targets = tuple(
            ClusterTarget(
                name=name,
                location=locate(by_cluster[name]),
                weight=by_cluster[name].weight,
                backends=tuple(members),
            )
            for name, members in sorted(grouped.items())
        )
        steering = policies.get(key, default_steering)
        route = Route(
            host=host,
            path=path,
            path_type=ptype,
            backends=tuple(backends),
            steering=steering if key in policies else None,
            https_redirect=redirects.get(key),
        )
        entry = RouteEntry(
            index=index,
            route=route,
            targets=targets,
            by_name={t.name: t for t in targets},
            steering=steering,
            https_redirect=redirects.get(key),
            steered=steering.kind is not SteeringKind.NEAREST
            or bool(steering.capacity)
            or bool(steering.rates)
            or bool(steering.affinity_cookie),
        )
        entries.append(entry)
        exact_map, prefixes = per_host.setdefault(host, ({}, {}))
        if ptype == "Exact":
            exact_map[path] = entry
        else:
            prefixes.setdefault(path.rstrip("/") or "/", entry)  # "/foo/" and "/foo" are one prefix

    hosts: dict[str, HostRoutes] = {}
    wildcards: dict[str, HostRoutes] = {}
    for host, (exact_map, prefixes) in per_host.items():
        routes_for_host = HostRoutes(exact=exact_map, prefixes=prefixes)
        if host.startswith("*."):
            wildcards[host[2:]] = routes_for_host
        else:
            hosts[host] = routes_for_host
    check_hosts: dict[Backend, str] = {}
    for entry in entries:
        for backend in entry.route.backends:
            check_hosts.setdefault(backend, entry.route.host.replace("*", "ingressfed-health", 1))
    return RoutingTable(
        version=version,
        hosts=hosts,
        wildcards=wildcards,
        clusters=by_cluster,
        entries=tuple(entries),
        backends=frozenset(check_hosts),
        check_hosts=check_hosts,
    )


def order_targets(
    entry: RouteEntry,
    client: Location | None,
    *,
    healthy: Callable[[ClusterTarget], bool],
    default_order: Sequence[str],
    prefer: str | None = None,
) -> tuple[ClusterTarget, ...]:
    """Healthy targets of a route in the order to try them for this client (pure)."""
    candidates = [
        Candidate(name=t.name, location=t.location, healthy=healthy(t), weight=t.weight)
        for t in entry.targets
    ]
    usable = {c.name for c in candidates if c.healthy}
    ranked = rank(client, candidates, default_order=default_order, prefer=prefer)
    return tuple(entry.by_name[name] for name in ranked if name in usable)
