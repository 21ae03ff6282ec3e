"""The Gateway API decision for one snapshot of the federation, and what it means for DNS and MCS.

Purely computational. :func:`state_for` is memoised on exactly its inputs (frozen values), so the
reconcile, the DNS desired state, the feed and the status writer share one computation per
snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ingressfed.gateway.conditions import Condition, Reason
from ingressfed.gateway.hostnames import ANY
from ingressfed.gateway.resources import GatewayObjects
from ingressfed.gateway.state import GatewayInputs, GatewayState, gateway_state
from ingressfed.gateway.table import ServedRule
from ingressfed.model import Edge, Federation, IngressObservation, IngressRule, ServiceObservation, Snapshot

__all__ = [
    "GatewaySettings",
    "export_conditions",
    "httproute_resource",
    "route_host_claims",
    "served_rules",
    "state_for",
]


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """What the global proxy serves: listener ports per protocol, and whether it terminates TLS."""

    http_ports: tuple[int, ...] = (80,)
    https_ports: tuple[int, ...] = (443,)
    https_ready: bool = True


DEFAULT_SETTINGS = GatewaySettings()


def httproute_resource(namespace: str, name: str) -> str:
    return f"httproute/{namespace}/{name}"


def _addresses(fed: Federation, edges: tuple[Edge, ...]) -> tuple[str, ...]:
    """The global address: configured, else the live edges' addresses."""
    if fed.global_addresses or fed.global_hostnames:
        return fed.global_addresses
    return tuple(sorted({a for e in edges if e.live for a in e.addresses}))


@lru_cache(maxsize=4)
def _state(
    objects: GatewayObjects,
    services: tuple[ServiceObservation, ...],
    addresses: tuple[str, ...],
    hostnames: tuple[str, ...],
    settings: GatewaySettings,
) -> GatewayState:
    return gateway_state(
        GatewayInputs(
            classes=objects.classes,
            gateways=objects.gateways,
            routes=objects.routes,
            grants=objects.grants,
            services=services,
            global_addresses=addresses,
            global_hostnames=hostnames,
            served_ports={"HTTP": frozenset(settings.http_ports), "HTTPS": frozenset(settings.https_ports)},
            https_ready=settings.https_ready,
            namespace_labels={k: dict(v) for k, v in objects.namespace_labels},
        )
    )


EMPTY_STATE = GatewayState()


_last: list[tuple[tuple[object, ...], GatewayState]] = []


def state_for(snap: Snapshot, fed: Federation, settings: GatewaySettings = DEFAULT_SETTINGS) -> GatewayState:
    if not snap.gateway.gateways:
        return EMPTY_STATE
    # One reconcile asks four times (DNS, feed, proxy, status) with the same snapshot objects:
    # compare by identity first, so the big values are hashed once per snapshot, not four times.
    ident = (snap.gateway, snap.services, snap.edges, fed, settings)
    if _last and all(a is b for a, b in zip(_last[0][0], ident, strict=True)):
        return _last[0][1]
    state = _state(snap.gateway, snap.services, _addresses(fed, snap.edges), fed.global_hostnames, settings)
    _last[:] = [(ident, state)]
    return state


def served_rules(
    snap: Snapshot, fed: Federation, settings: GatewaySettings = DEFAULT_SETTINGS
) -> tuple[ServedRule, ...]:
    """The HTTPRoute rules the proxies serve (in the feed beside the Ingress routes)."""
    return state_for(snap, fed, settings).served


def route_host_claims(
    snap: Snapshot, fed: Federation, settings: GatewaySettings = DEFAULT_SETTINGS
) -> list[tuple[str, IngressObservation]]:
    """Accepted HTTPRoutes' exact hostnames, as claims beside Ingress hosts (resource, claim).

    Wildcard hostnames get no record (a wildcard record would answer for names other objects
    may own); routes without hostnames have nothing to publish.
    """
    state = state_for(snap, fed, settings)
    claims: list[tuple[str, IngressObservation]] = []
    routes = {r.meta.key: r for r in snap.gateway.routes}
    for key, hosts in sorted(state.hostnames.items()):
        exact = tuple(h for h in hosts if h != ANY and not h.startswith("*."))
        route = routes.get(key)
        if not exact or route is None:
            continue
        for cluster in state.route_clusters.get(key, (route.meta.cluster,)):
            claims.append(
                (
                    httproute_resource(*key),
                    IngressObservation(
                        cluster=cluster,
                        namespace=key[0],
                        name=key[1],
                        rules=tuple(IngressRule(host=h) for h in exact),
                        ttl=route.ttl,
                    ),
                )
            )
    return claims


def export_conditions(snap: Snapshot) -> dict[tuple[str, str, str], tuple[Condition, ...]]:
    """The ``Valid`` condition of each ServiceExport (MCS): is its Service federated here?"""
    federated = {(s.cluster, s.namespace, s.name) for s in snap.services}
    out: dict[tuple[str, str, str], tuple[Condition, ...]] = {}
    for e in snap.gateway.exports:
        key = (e.meta.cluster, e.meta.namespace, e.meta.name)
        gen = e.meta.generation
        if key in federated:
            cond = Condition(Reason.VALID, True, Reason.VALID, "the Service is federated by ingressfed", gen)
        else:
            cond = Condition(
                Reason.VALID,
                False,
                "NoService",
                f"no Service of type LoadBalancer named {e.meta.name} in this cluster; ingressfed "
                "federates LoadBalancer Services (create it, or change its type)",
                gen,
            )
        out[key] = (cond,)
    return out
