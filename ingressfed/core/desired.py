"""The record sets a snapshot calls for: a purely computational function.

For each federated Service, at each level (zone, region, global) of
Federation v1 naming: A/AAAA of the load-balancer addresses of the clusters
at that level that serve it (cluster may serve, Service has ready endpoints);
a level with none gets a CNAME to the next level up; the global level with
none gets no record. A lone load-balancer hostname is published as a CNAME.
Ingress hosts inside the zone point at the federation's global addresses when
they are configured (a static, e.g. anycast, address), else at the live edges'
addresses: one routed set per edge when a provider answers per client, so each
client resolves to its nearest live edge. When no edge is live every edge is
published (failing open, as Route53 does when all health checks fail): an
empty answer would take the whole federation off the air.

A Service's steering annotations shape its names where DNS can say them: ``failover`` (each
name answers the first listed cluster that serves) and, when the provider writes weighted
answers, ``weighted`` (one weighted set per listed cluster that serves; see ``_dns_policy``).
"""

from __future__ import annotations

import functools
import ipaddress
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ingressfed.core.health import cluster_serves
from ingressfed.core.naming import in_zone, name_problem, service_level_names
from ingressfed.core.ownership import companion, companion_name
from ingressfed.gateway.federation import route_host_claims
from ingressfed.model import (
    Cluster,
    Edge,
    Federation,
    IngressObservation,
    RecordSet,
    RecordType,
    Routing,
    ServiceObservation,
    Snapshot,
    Steering,
    SteeringKind,
)

__all__ = [
    "MAX_DNS_WEIGHT",
    "Desired",
    "DesiredState",
    "Problem",
    "desired_records",
    "desired_state",
    "dns_weights",
    "ingress_resource",
    "service_resource",
    "with_companions",
]


_COMPANION_EXTRA = len(companion_name(""))
_WEIGHTS_ANNOTATION = "federation.ingressfed.io/weights"
# The largest weight every weighted provider stores as given (Route53 takes 0..255; Cloud DNS and
# the embedded zone more): larger splits are scaled down to it, keeping their proportions.
MAX_DNS_WEIGHT = 255


@dataclass(frozen=True, slots=True)
class Desired:
    record: RecordSet
    resource: str  # "service/<ns>/<name>" or "ingress/<ns>/<name>"


@dataclass(frozen=True, slots=True)
class Problem:
    resource: str
    message: str
    cluster: str | None = None


@dataclass(frozen=True, slots=True)
class DesiredState:
    records: tuple[Desired, ...] = ()
    problems: tuple[Problem, ...] = ()
    # resource -> names published and the clusters serving each (for status write-back)
    published: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)


def service_resource(namespace: str, name: str) -> str:
    return f"service/{namespace}/{name}"


def ingress_resource(namespace: str, name: str) -> str:
    return f"ingress/{namespace}/{name}"


@dataclass(slots=True)
class _Targets:
    v4: set[str] = field(default_factory=set)
    v6: set[str] = field(default_factory=set)
    hostnames: set[str] = field(default_factory=set)
    clusters: set[str] = field(default_factory=set)

    def add(self, obs: ServiceObservation, cluster: str) -> None:
        v4, v6 = _split_addresses(obs.addresses)
        self.v4 |= v4
        self.v6 |= v6
        self.hostnames |= {h.rstrip(".").lower() for h in obs.hostnames}
        self.clusters.add(cluster)

    @property
    def empty(self) -> bool:
        return not (self.v4 or self.v6 or self.hostnames)


def _split_addresses(addresses: Iterable[str]) -> tuple[set[str], set[str]]:
    v4: set[str] = set()
    v6: set[str] = set()
    for a in addresses:
        try:
            ip = ipaddress.ip_address(a)
        except ValueError:
            continue
        (v4 if ip.version == 4 else v6).add(ip.compressed)
    return v4, v6


def _address_sets(name: str, ttl: int, t: _Targets) -> list[RecordSet]:
    """A/AAAA for addresses; a CNAME when a single hostname is the only target."""
    if not t.v4 and not t.v6 and len(t.hostnames) == 1:
        return [RecordSet(name, RecordType.CNAME, ttl, tuple(t.hostnames))]
    out: list[RecordSet] = []
    if t.v4:
        out.append(RecordSet(name, RecordType.A, ttl, tuple(t.v4)))
    if t.v6:
        out.append(RecordSet(name, RecordType.AAAA, ttl, tuple(t.v6)))
    return out


def _routed_sets(
    name: str, ttl: int, per_cluster: dict[str, _Targets], clusters: dict[str, Cluster]
) -> list[RecordSet]:
    """One set per serving cluster, tagged so routing-capable providers answer per client."""
    out: list[RecordSet] = []
    for cname in sorted(per_cluster):
        t = per_cluster[cname]
        c = clusters[cname]
        routing = Routing(cluster=c.name, region=c.region, location=c.location, weight=c.weight)
        if t.v4:
            out.append(RecordSet(name, RecordType.A, ttl, tuple(t.v4), c.name, routing))
        if t.v6:
            out.append(RecordSet(name, RecordType.AAAA, ttl, tuple(t.v6), c.name, routing))
    return out


def _weighted_sets(
    name: str, ttl: int, per_cluster: dict[str, _Targets], weights: dict[str, int]
) -> list[RecordSet]:
    """One weighted share per serving listed cluster: the provider answers each query with one
    cluster, drawn in proportion to the weights (whoever asks)."""
    out: list[RecordSet] = []
    for cname in sorted(per_cluster):
        t = per_cluster[cname]
        routing = Routing(cluster=cname, region="", weight=weights[cname], weighted=True)
        if t.v4:
            out.append(RecordSet(name, RecordType.A, ttl, tuple(sorted(t.v4)), cname, routing))
        if t.v6:
            out.append(RecordSet(name, RecordType.AAAA, ttl, tuple(sorted(t.v6)), cname, routing))
    return out


def dns_weights(weights: Iterable[tuple[str, int]]) -> dict[str, int]:
    """The listed clusters with a share above 0, scaled down (proportions kept, each at least 1)
    when one is above ``MAX_DNS_WEIGHT``. Pure."""
    positive = {name: w for name, w in weights if w > 0}
    top = max(positive.values(), default=0)
    if top <= MAX_DNS_WEIGHT:
        return positive
    return {name: max(1, round(w * MAX_DNS_WEIGHT / top)) for name, w in positive.items()}


def _ttl(default: int, overrides: Iterable[int | None]) -> int:
    """The shortest TTL any of the objects behind a name asks for (no override: the default)."""
    chosen = [t if t is not None and t > 0 else default for t in overrides]
    return min(chosen) if chosen else default


def _service_records(
    fed: Federation,
    namespace: str,
    name: str,
    observations: Sequence[ServiceObservation],
    clusters: dict[str, Cluster],
    *,
    routed: bool,
    weighted: bool = False,
) -> tuple[list[RecordSet], list[Problem], dict[str, tuple[str, ...]]]:
    resource = service_resource(namespace, name)
    problems: list[Problem] = []
    # (region, zone) -> level names; all clusters that have the Service, healthy or not,
    # so that a level whose clusters are all down still gets its CNAME fallback.
    levels: dict[str, set[tuple[str, str]]] = {}
    serving: dict[str, ServiceObservation] = {}
    placed: list[tuple[Cluster, ServiceObservation]] = []
    for obs in observations:
        c = clusters.get(obs.cluster)
        if c is None:
            problems.append(Problem(resource, "cluster is not a federation member", obs.cluster))
            continue
        if not c.region or not c.zone:
            problems.append(Problem(resource, "cluster region/zone unknown; not published", obs.cluster))
            continue
        levels.setdefault(c.region, set()).add((c.region, c.zone))
        placed.append((c, obs))
        has_targets = bool(obs.addresses or obs.hostnames)
        if not has_targets:
            problems.append(Problem(resource, "no load-balancer address yet", obs.cluster))
        if has_targets and obs.ready_endpoints > 0 and cluster_serves(c):
            serving[obs.cluster] = obs

    out: list[RecordSet] = []
    published: dict[str, tuple[str, ...]] = {}
    if not levels:
        return out, problems, published

    policy = _dns_policy(observations)
    order = policy.order if policy is not None and policy.kind is SteeringKind.FAILOVER else ()
    weights: dict[str, int] = {}
    if policy is not None and policy.kind is SteeringKind.WEIGHTED:
        if weighted:
            weights = dns_weights(policy.weights)
        else:
            split = ",".join(f"{c}={w}" for c, w in policy.weights)
            problems.append(
                Problem(
                    resource,
                    f"steering: weighted ({_WEIGHTS_ANNOTATION}: {split}) is not in its DNS names: "
                    "the DNS provider writes no weighted answers (route53, clouddns and the embedded "
                    "DNS server do), so every serving cluster is answered as without the annotation; "
                    "for a weighted split with this provider, route the traffic through the proxy "
                    "with an Ingress or HTTPRoute",
                )
            )

    def targets_where(pred: Callable[[Cluster], bool]) -> tuple[_Targets, dict[str, _Targets], bool]:
        """The targets a name covering ``pred``'s clusters answers, per cluster, and whether
        they are weighted shares."""
        union = _Targets()
        per: dict[str, _Targets] = {}
        chosen = [cname for cname in serving if pred(clusters[cname])]
        first = next((cname for cname in order if cname in chosen), None)
        if first is not None:
            chosen = [first]  # failover: the first listed cluster that serves, alone
        shares = [cname for cname in chosen if cname in weights]
        if shares:
            chosen = shares  # weighted: the listed clusters that serve share the name
        for cname in chosen:
            obs = serving[cname]
            union.add(obs, cname)
            per.setdefault(cname, _Targets()).add(obs, cname)
        return union, per, bool(shares)

    def emit(level_name: str, pred: Callable[[Cluster], bool], fallback: str | None) -> bool:
        problem = name_problem(level_name, reserve=_COMPANION_EXTRA)
        if problem:
            problems.append(Problem(resource, f"cannot publish {level_name}: {problem}"))
            return False
        # A level's TTL comes from the objects in that level's clusters only: an override in one
        # cluster must not shorten (or lengthen) another cluster's zone- and region-level records.
        ttl = _ttl(fed.ttl, (o.ttl for c, o in placed if pred(c)))
        union, per, shares = targets_where(pred)
        if union.empty:
            if fallback is not None:
                out.append(RecordSet(level_name, RecordType.CNAME, ttl, (fallback,)))
                published[level_name] = ()
            return True
        if shares and len(per) > 1 and (union.v4 or union.v6):
            out.extend(_weighted_sets(level_name, ttl, per, weights))
        elif routed and len(per) > 1 and (union.v4 or union.v6):
            out.extend(_routed_sets(level_name, ttl, per, clusters))
        elif not union.v4 and not union.v6 and len(union.hostnames) > 1:
            # Several hostnames and no addresses: the source could not resolve them.
            problems.append(
                Problem(resource, f"{level_name}: several load-balancer hostnames and no resolved addresses")
            )
            return True
        else:
            out.extend(_address_sets(level_name, ttl, union))
        published[level_name] = tuple(sorted(union.clusters))
        return True

    region0 = min(levels)
    zone0 = min(levels[region0])[1]
    top = service_level_names(fed, namespace=namespace, service=name, region=region0, zone=zone0)
    if not emit(top.global_, lambda c: True, None):
        return [], problems, {}
    for region in sorted(levels):
        for reg, zone in sorted(levels[region]):
            names = service_level_names(fed, namespace=namespace, service=name, region=reg, zone=zone)
            if names.region not in published:
                emit(names.region, _in_region(reg), names.global_)
            emit(names.zone, _in_zone(reg, zone), names.region)
    return _dedupe(out), problems, published


def _dns_policy(observations: Sequence[ServiceObservation]) -> Steering | None:
    """A Service's DNS steering, from the first cluster (by name) whose copy sets one.

    ``failover``: each DNS name answers only the first listed cluster that serves among those it
    covers; the others (and unlisted clusters) only once none of the listed ones does. DNS can say
    this to every resolver, with every provider.

    ``weighted`` (where the provider writes weighted answers): each name answers one weighted
    set per listed cluster with a weight above 0 that serves among those it covers; the provider
    draws one per query in proportion to the weights, so a cluster that stops serving drops out
    and the others share its weight. Clusters listed with 0 or not listed are answered only when
    none of the weighted ones serves, and then as without the annotation (no name goes dark).
    A name with one weighted cluster serving is that cluster's plain set."""
    for obs in sorted(observations, key=lambda o: o.cluster):
        if obs.steering is not None and obs.steering.kind in (SteeringKind.FAILOVER, SteeringKind.WEIGHTED):
            return obs.steering
    return None


def _in_region(region: str) -> Callable[[Cluster], bool]:
    return lambda c: c.region == region


def _in_zone(region: str, zone: str) -> Callable[[Cluster], bool]:
    return lambda c: (c.region, c.zone) == (region, zone)


@functools.lru_cache(maxsize=1 << 16)
def _service_desired(
    fed: Federation,
    namespace: str,
    name: str,
    observations: tuple[ServiceObservation, ...],
    members: tuple[Cluster | None, ...],
    *,
    routed: bool,
    weighted: bool = False,
) -> tuple[tuple[Desired, ...], tuple[Problem, ...], tuple[tuple[str, tuple[str, ...]], ...]]:
    """One Service's share of the desired state, memoised on exactly its inputs.

    At 10k Services a reconcile caused by one change recomputes one entry here;
    the rest are cache hits, because observations and clusters are frozen values.
    """
    clusters = {c.name: c for c in members if c is not None}
    recs, probs, pub = _service_records(
        fed, namespace, name, observations, clusters, routed=routed, weighted=weighted
    )
    resource = service_resource(namespace, name)
    return tuple(Desired(rs, resource) for rs in recs), tuple(probs), tuple(pub.items())


def _dedupe(records: list[RecordSet]) -> list[RecordSet]:
    seen: dict[tuple[str, RecordType, str | None], RecordSet] = {}
    for rs in records:
        seen.setdefault(rs.key, rs)
    return list(seen.values())


def _edge_sets(host: str, ttl: int, edges: Sequence[Edge], *, routed: bool) -> list[RecordSet]:
    """The address sets of ``host`` pointing at ``edges`` (see the module doc)."""
    with_addresses = [e for e in edges if e.addresses]
    chosen = [e for e in with_addresses if e.live] or with_addresses
    if routed and len(chosen) > 1:
        out: list[RecordSet] = []
        for e in chosen:
            v4, v6 = _split_addresses(e.addresses)
            routing = Routing(cluster=e.cluster, region=e.region, location=e.location)
            if v4:
                out.append(RecordSet(host, RecordType.A, ttl, tuple(v4), e.name, routing))
            if v6:
                out.append(RecordSet(host, RecordType.AAAA, ttl, tuple(v6), e.name, routing))
        return out
    union = _Targets()
    for e in chosen:
        v4, v6 = _split_addresses(e.addresses)
        union.v4 |= v4
        union.v6 |= v6
    return _address_sets(host, ttl, union)


def _ingress_records(
    fed: Federation,
    ingresses: Sequence[IngressObservation],
    edges: Sequence[Edge] = (),
    *,
    routed: bool = False,
    claims: Sequence[tuple[str, IngressObservation]] = (),
) -> tuple[list[Desired], list[Problem], dict[str, dict[str, tuple[str, ...]]]]:
    """Ingress hosts, and ``claims`` of other kinds (HTTPRoute hostnames: (resource, hosts))."""
    problems: list[Problem] = []
    published: dict[str, dict[str, tuple[str, ...]]] = defaultdict(dict)
    by_host: dict[str, list[IngressObservation]] = defaultdict(list)
    resource_of: dict[int, str] = {}
    for ing in ingresses:
        for host in ing.hosts:
            by_host[host.rstrip(".").lower()].append(ing)
    for claim_resource, claim in claims:
        resource_of[id(claim)] = claim_resource
        for host in claim.hosts:
            by_host[host.rstrip(".").lower()].append(claim)

    def res(obs: IngressObservation) -> str:
        return resource_of.get(id(obs)) or ingress_resource(obs.namespace, obs.name)

    out: list[Desired] = []
    targets = _Targets()
    targets.v4, targets.v6 = _split_addresses(fed.global_addresses)
    targets.hostnames = {h.rstrip(".").lower() for h in fed.global_hostnames}
    use_edges = targets.empty and any(e.addresses for e in edges)
    for host in sorted(by_host):
        claimants = sorted(by_host[host], key=lambda i: (i.namespace, i.name, res(i), i.cluster))
        owner = claimants[0]
        resource = res(owner)
        if not in_zone(host, fed.suffix):
            problems.append(Problem(resource, f"host {host} is outside the federation zone {fed.suffix}"))
            continue
        problem = name_problem(host, reserve=_COMPANION_EXTRA)
        if problem:
            problems.append(Problem(resource, f"cannot publish {host}: {problem}"))
            continue
        for other in claimants[1:]:
            other_res = res(other)
            if other_res != resource:
                problems.append(Problem(other_res, f"host {host} is already published for {resource}"))
        if targets.empty and not use_edges:
            why = "no edge has an address yet" if edges else "federation has no global address configured"
            problems.append(Problem(resource, why))
            continue
        ttl = _ttl(fed.ttl, (i.ttl for i in claimants))
        sets = _edge_sets(host, ttl, edges, routed=routed) if use_edges else _address_sets(host, ttl, targets)
        for rs in sets:
            out.append(Desired(rs, resource))
        published[resource][host] = tuple(sorted({i.cluster for i in claimants}))
    return out, problems, dict(published)


def desired_state(
    fed: Federation,
    snap: Snapshot,
    *,
    routed: bool = False,
    routed_services: bool | None = None,
    weighted: bool = False,
) -> DesiredState:
    """Everything to publish for ``snap``, with the problems that kept objects out.

    ``routed``: per-cluster / per-edge sets for a provider that answers per client;
    ``routed_services`` (default: ``routed``) narrows that for Service names only;
    ``weighted``: the provider writes weighted sets (``Routing.weighted``), so a Service's
    ``steering: weighted`` reaches its names (else it is reported and ignored).
    """
    services_routed = routed if routed_services is None else routed and routed_services
    clusters = {c.name: c for c in snap.clusters}
    grouped: dict[tuple[str, str], list[ServiceObservation]] = defaultdict(list)
    for obs in snap.services:
        grouped[(obs.namespace, obs.name)].append(obs)
    records: list[Desired] = []
    problems: list[Problem] = []
    published: dict[str, dict[str, tuple[str, ...]]] = {}
    claimed: set[str] = set()
    for (ns, name), observations in sorted(grouped.items()):
        members = tuple(clusters.get(o.cluster) for o in observations)
        recs, probs, pub = _service_desired(
            fed, ns, name, tuple(observations), members, routed=services_routed, weighted=weighted
        )
        problems.extend(probs)
        published[service_resource(ns, name)] = dict(pub)
        records.extend(recs)
        claimed.update(d.record.name for d in recs)
    ing_records, ing_problems, ing_pub = _ingress_records(
        fed, snap.ingresses, snap.edges, routed=routed, claims=route_host_claims(snap, fed)
    )
    problems.extend(ing_problems)
    dropped: set[tuple[str, str]] = set()
    for d in ing_records:
        if d.record.name in claimed:
            if (d.resource, d.record.name) not in dropped:  # one Problem per host, not per record type
                dropped.add((d.resource, d.record.name))
                problems.append(Problem(d.resource, f"{d.record.name} is already published for a Service"))
            continue
        records.append(d)
    # What the status write-back reports must be what was kept, not what the Ingress asked for.
    for resource, host in dropped:
        ing_pub[resource].pop(host, None)
    published.update({resource: hosts for resource, hosts in ing_pub.items() if hosts})
    return DesiredState(records=tuple(records), problems=tuple(problems), published=published)


def desired_records(fed: Federation, snap: Snapshot, *, routed: bool = False) -> list[Desired]:
    return list(desired_state(fed, snap, routed=routed).records)


def with_companions(desired: Sequence[Desired], owner_id: str) -> list[RecordSet]:
    """The address sets plus one TXT companion per name (TTL of the name's sets)."""
    out: list[RecordSet] = []
    per_name: dict[str, tuple[str, int]] = {}
    for d in desired:
        out.append(d.record)
        prev = per_name.get(d.record.name)
        ttl = d.record.ttl if prev is None else min(prev[1], d.record.ttl)
        per_name[d.record.name] = (d.resource, ttl)
    for name, (resource, ttl) in per_name.items():
        out.append(companion(name, owner_id=owner_id, resource=resource, ttl=ttl))
    return out
