"""Domain values shared by every layer: frozen, hashable, no behaviour beyond normalising.

Names are absolute DNS names in lower case *without* the trailing dot
(``k8shserver.default.federation.svc.example.com``); IDNA labels are kept in
their ``xn--`` form. Record values are in presentation format: addresses as
text, CNAME targets as names (same convention), TXT as one or more quoted
strings (``"heritage=ingressfed,..."``), exactly as Route53 and Cloud DNS
show them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ingressfed.gateway.resources import GatewayObjects

__all__ = [
    "ADDRESS_TYPES",
    "Backend",
    "Change",
    "ChangeAction",
    "Changes",
    "Cluster",
    "ClusterStatus",
    "Edge",
    "Federation",
    "IngressObservation",
    "IngressRule",
    "IngressTLS",
    "Location",
    "Policy",
    "RecordKey",
    "RecordSet",
    "RecordType",
    "Route",
    "Routing",
    "ServiceObservation",
    "Snapshot",
    "Steering",
    "SteeringKind",
]


class RecordType(StrEnum):
    A = "A"
    AAAA = "AAAA"
    CNAME = "CNAME"
    TXT = "TXT"
    NS = "NS"
    SOA = "SOA"


# Record types the controller publishes for a name; a CNAME excludes the other two.
ADDRESS_TYPES: frozenset[RecordType] = frozenset({RecordType.A, RecordType.AAAA, RecordType.CNAME})


class Policy(StrEnum):
    """What the controller may do to records it owns (external-dns semantics)."""

    SYNC = "sync"  # create, update, delete
    UPSERT_ONLY = "upsert-only"  # create, update; never delete
    CREATE_ONLY = "create-only"  # create only


class ClusterStatus(StrEnum):
    """Member cluster status as ``kubectl get clusters`` printed it in Federation v1."""

    READY = "Ready"
    NOT_READY = "NotReady"
    OFFLINE = "Offline"


@dataclass(frozen=True, slots=True)
class Location:
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Routing:
    """Per-cluster routing data for providers that answer per client (Route53
    latency/geolocation records, the embedded server's geo answers).

    A record set with routing carries ``set_identifier`` = the cluster name.
    ``weighted``: the set is one share of a weighted split (a Service's ``steering: weighted``):
    ``weight`` is its share (relative to the name's other sets), not a tie-break between equally
    near clusters, and providers answer by weight, not by the querier's location.
    """

    cluster: str
    region: str
    location: Location | None = None
    weight: int = 100
    continent: str | None = None  # Route53 geolocation continent code, e.g. "EU"
    country: str | None = None  # ISO 3166-1 alpha-2
    weighted: bool = False


RecordKey = tuple[str, RecordType, str | None]


@dataclass(frozen=True, slots=True)
class RecordSet:
    name: str
    type: RecordType
    ttl: int
    values: tuple[str, ...]
    set_identifier: str | None = None
    routing: Routing | None = field(default=None, compare=True)
    # Zones hold 100k+ sets that plans compare as sets every reconcile: hash once.
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Normalise so that equal content compares equal whatever the source.
        object.__setattr__(self, "name", self.name.rstrip(".").lower())
        vals = self.values
        if self.type in (RecordType.CNAME, RecordType.NS):
            vals = tuple(v.rstrip(".").lower() for v in vals)
        object.__setattr__(self, "values", tuple(sorted(set(vals))))
        object.__setattr__(
            self,
            "_hash",
            hash((self.name, self.type, self.ttl, self.values, self.set_identifier, self.routing)),
        )

    def __hash__(self) -> int:
        return self._hash

    @property
    def key(self) -> RecordKey:
        return (self.name, self.type, self.set_identifier)


class ChangeAction(StrEnum):
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


@dataclass(frozen=True, slots=True)
class Change:
    """One change to one record set.

    UPDATE carries ``old`` and ``new``; they share name and set identifier but
    may differ in type (an A set replaced by a CNAME is *one* change).
    """

    action: ChangeAction
    old: RecordSet | None = None
    new: RecordSet | None = None

    def __post_init__(self) -> None:
        need_old = self.action in (ChangeAction.UPDATE, ChangeAction.DELETE)
        need_new = self.action in (ChangeAction.UPDATE, ChangeAction.CREATE)
        if need_old != (self.old is not None) or need_new != (self.new is not None):
            raise ValueError(f"{self.action} change needs old={need_old} new={need_new}")

    @property
    def record(self) -> RecordSet:
        """The record set this change leaves in place, or removes."""
        rs = self.new if self.new is not None else self.old
        assert rs is not None
        return rs


@dataclass(frozen=True, slots=True)
class Changes:
    """An ordered batch: providers apply it atomically where they can."""

    items: tuple[Change, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def creates(self) -> tuple[RecordSet, ...]:
        return tuple(c.new for c in self.items if c.action is ChangeAction.CREATE and c.new)

    @property
    def updates(self) -> tuple[tuple[RecordSet, RecordSet], ...]:
        return tuple(
            (c.old, c.new) for c in self.items if c.action is ChangeAction.UPDATE and c.old and c.new
        )

    @property
    def deletes(self) -> tuple[RecordSet, ...]:
        return tuple(c.old for c in self.items if c.action is ChangeAction.DELETE and c.old)


@dataclass(frozen=True, slots=True)
class Cluster:
    """A member cluster as the core sees it.

    ``status`` is API-server health; ``data_plane_healthy`` is what active and
    passive HTTP checks of its ingress/LB say (None: not checked).
    """

    name: str
    region: str
    zone: str
    location: Location | None = None
    weight: int = 100
    status: ClusterStatus = ClusterStatus.READY
    data_plane_healthy: bool | None = None


@dataclass(frozen=True, slots=True)
class ServiceObservation:
    """One federated Service as seen in one member cluster."""

    cluster: str
    namespace: str
    name: str
    ready_endpoints: int
    addresses: tuple[str, ...] = ()  # load-balancer IPs (v4 and v6)
    hostnames: tuple[str, ...] = ()  # load-balancer hostnames (e.g. AWS ELB)
    ttl: int | None = None  # per-object override
    # Its steering annotations: the DNS names follow what DNS can express (failover; see
    # core.desired). None: every serving cluster is published (nearest per querier when routed).
    steering: Steering | None = None


@dataclass(frozen=True, slots=True)
class IngressRule:
    host: str
    path: str = "/"
    path_type: str = "Prefix"  # Prefix | Exact | ImplementationSpecific


@dataclass(frozen=True, slots=True)
class IngressTLS:
    """One ``spec.tls`` entry: the hosts its ``kubernetes.io/tls`` Secret (same namespace) serves."""

    hosts: tuple[str, ...]
    secret_name: str


@dataclass(frozen=True, slots=True)
class IngressObservation:
    """One federated Ingress as seen in one member cluster.

    ``addresses``/``hostnames`` are its load balancer's; ``port`` is where that
    load balancer serves HTTP (the proxy's upstream).
    """

    cluster: str
    namespace: str
    name: str
    rules: tuple[IngressRule, ...]
    addresses: tuple[str, ...] = ()
    hostnames: tuple[str, ...] = ()
    port: int = 80
    ttl: int | None = None
    tls: tuple[IngressTLS, ...] = ()  # spec.tls (hosts empty in the object: the rules' hosts)
    steering: Steering | None = None  # from the federation.ingressfed.io/steering* annotations
    https_redirect: bool | None = None  # federation.ingressfed.io/ssl-redirect; None: proxy.tls default
    acme_hosts: tuple[str, ...] = ()  # federation.ingressfed.io/acme: hosts whose certificate ACME orders

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(sorted({r.host for r in self.rules}))


@dataclass(frozen=True, slots=True)
class Federation:
    name: str  # e.g. "federation"
    suffix: str  # DNS zone suffix, e.g. "example.com"
    owner_id: str = "ingressfed"
    ttl: int = 30
    policy: Policy = Policy.SYNC
    global_addresses: tuple[str, ...] = ()  # the proxy's LB addresses ("global IP")
    global_hostnames: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Edge:
    """A point of presence: a proxy (optionally with a DNS server) running in a member cluster.

    ``addresses`` are its public (load-balancer) addresses; ``live`` is whether the controller
    heard from it within the health window (core/quorum decides).
    """

    name: str
    cluster: str
    region: str
    location: Location | None = None
    addresses: tuple[str, ...] = ()
    live: bool = True


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the controller knows at one instant; the only input of ``desired``."""

    clusters: tuple[Cluster, ...] = ()
    services: tuple[ServiceObservation, ...] = ()
    ingresses: tuple[IngressObservation, ...] = ()
    edges: tuple[Edge, ...] = ()
    gateway: GatewayObjects = field(default_factory=GatewayObjects)  # Gateway API and MCS objects

    def cluster(self, name: str) -> Cluster | None:
        for c in self.clusters:
            if c.name == name:
                return c
        return None


@dataclass(frozen=True, slots=True)
class Backend:
    """Where the proxy sends a host's traffic in one cluster."""

    cluster: str
    host: str  # IP or hostname of the cluster's ingress load balancer
    port: int = 80
    # The proxy looks backends up in dicts several times per request: the hash is computed once.
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.cluster, self.host, self.port)))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[type[Backend], tuple[str, str, int]]:
        # String hashes differ between processes: a pickled backend recomputes its own.
        return (Backend, (self.cluster, self.host, self.port))


class SteeringKind(StrEnum):
    """How a route's traffic is spread over its clusters (decided by geo.select.steer)."""

    NEAREST = "nearest"  # nearest healthy cluster to the client (the default)
    FAILOVER = "failover"  # an explicit cluster priority order, whoever the client
    WEIGHTED = "weighted"  # a traffic split across healthy clusters, e.g. 90/10 for a canary


@dataclass(frozen=True, slots=True)
class Steering:
    """A steering policy: per federation (proxy.steering) or per Ingress (annotations).

    ``capacity`` (cluster -> max requests in flight through this proxy) adds spill-over to any
    kind: a cluster at its capacity is tried after the others, so the excess goes to the next
    one. ``affinity_cookie`` pins a client to the cluster that served it while that is healthy.
    """

    kind: SteeringKind = SteeringKind.NEAREST
    order: tuple[str, ...] = ()  # failover priority
    weights: tuple[tuple[str, int], ...] = ()  # weighted split, sorted by cluster name
    capacity: tuple[tuple[str, int], ...] = ()  # sorted by cluster name
    affinity_cookie: str = ""  # "" disables session affinity
    # cluster -> max requests per second through this proxy (spill-over by rate), sorted by name
    rates: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Route:
    host: str
    path: str = "/"
    path_type: str = "Prefix"
    backends: tuple[Backend, ...] = ()
    steering: Steering | None = None  # None: the proxy's default (proxy.steering)
    https_redirect: bool | None = None  # plain requests -> https (None: proxy.tls.redirectHttp)
