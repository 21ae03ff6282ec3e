"""Build Gateway API inputs from YAML manifests, the way conformance tests write them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from ingressfed.gateway.parse import gateway_from, gatewayclass_from, httproute_from, referencegrant_from
from ingressfed.gateway.resources import Gateway, GatewayClass, HTTPRoute, ReferenceGrant
from ingressfed.gateway.state import GatewayInputs, GatewayState, gateway_state
from ingressfed.model import ServiceObservation

CLASS = """
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: ingressfed, generation: 1}
spec: {controllerName: ingressfed.io/gateway-controller}
"""

SAME_NAMESPACE_GATEWAY = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: same-namespace, namespace: infra, generation: 1}
spec:
  gatewayClassName: ingressfed
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    allowedRoutes: {namespaces: {from: Same}}
"""


def docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def service(
    name: str, cluster: str, *, namespace: str = "infra", address: str | None = None
) -> ServiceObservation:
    return ServiceObservation(
        cluster=cluster,
        namespace=namespace,
        name=name,
        ready_endpoints=1,
        addresses=(address or f"127.0.{len(cluster)}.{len(name)}",),
    )


def inputs(
    manifests: Mapping[str, str] | str,
    *,
    services: Iterable[ServiceObservation] = (),
    addresses: tuple[str, ...] = ("192.0.2.10",),
    **kw: Any,
) -> GatewayInputs:
    """``manifests``: YAML per member cluster (a plain string is cluster "east")."""
    per_cluster = {"east": manifests} if isinstance(manifests, str) else dict(manifests)
    classes: list[GatewayClass] = []
    gateways: list[Gateway] = []
    routes: list[HTTPRoute] = []
    grants: list[ReferenceGrant] = []
    for cluster, text in per_cluster.items():
        for d in docs(text):
            kind = d["kind"]
            if kind == "GatewayClass":
                got_c = gatewayclass_from(d, cluster=cluster)
                assert got_c.value is not None, got_c.problems
                classes.append(got_c.value)
            elif kind == "Gateway":
                got_g = gateway_from(d, cluster=cluster)
                assert got_g.value is not None, got_g.problems
                gateways.append(got_g.value)
            elif kind == "HTTPRoute":
                got_r = httproute_from(d, cluster=cluster)
                assert got_r.value is not None, got_r.problems
                routes.append(got_r.value)
            elif kind == "ReferenceGrant":
                got_rg = referencegrant_from(d, cluster=cluster)
                assert got_rg.value is not None, got_rg.problems
                grants.append(got_rg.value)
            else:
                raise AssertionError(f"unexpected kind {kind}")
    return GatewayInputs(
        classes=tuple(classes),
        gateways=tuple(gateways),
        routes=tuple(routes),
        grants=tuple(grants),
        services=tuple(services),
        global_addresses=addresses,
        **kw,
    )


def state(manifests: Mapping[str, str] | str, **kw: Any) -> GatewayState:
    return gateway_state(inputs(manifests, **kw))


def conditions(
    st: GatewayState, route: str, *, cluster: str = "east", parent: int = 0
) -> dict[str, tuple[bool, str]]:
    ns, name = route.split("/")
    parents = st.routes[(cluster, ns, name)]
    return {c.type: (c.status, c.reason) for c in parents[parent].conditions}
