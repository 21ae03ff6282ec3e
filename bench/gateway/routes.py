"""The benchmark's route sets: 1,000 HTTPRoutes x 10 rules, and 1,000 plain Ingress paths."""

from __future__ import annotations

from typing import Any

from ingressfed.gateway.parse import gateway_from, gatewayclass_from, httproute_from
from ingressfed.gateway.state import GatewayInputs, GatewayState, gateway_state
from ingressfed.model import Backend, Cluster, Location, Route, ServiceObservation

HOST = "app.example.com"
ROUTES = 1000
RULES = 10
CLUSTERS = [
    Cluster(name="cluster-us-east1-b", region="us-east1", zone="us-east1-b", location=Location(33.2, -80.0)),
    Cluster(
        name="cluster-europe-west1-b",
        region="europe-west1",
        zone="europe-west1-b",
        location=Location(50.4, 3.8),
    ),
    Cluster(
        name="cluster-asia-east1-a", region="asia-east1", zone="asia-east1-a", location=Location(24.0, 120.5)
    ),
]


def ingress_routes(backend_port: int) -> list[Route]:
    backends = tuple(Backend(cluster=c.name, host="127.0.0.1", port=backend_port) for c in CLUSTERS)
    return [Route(host=HOST, path=f"/svc{i}", backends=backends) for i in range(ROUTES)]


def httproute_docs(backend_port: int) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for i in range(ROUTES):
        rules = [
            {
                "matches": [
                    {
                        "path": {"type": "PathPrefix", "value": f"/svc{i}/r{j}"},
                        "headers": [{"name": "x-variant", "value": f"v{j}"}],
                    }
                ],
                "backendRefs": [{"name": f"svc{i}", "port": backend_port}],
            }
            for j in range(RULES)
        ]
        docs.append(
            {
                "metadata": {
                    "name": f"route-{i}",
                    "namespace": "bench",
                    "creationTimestamp": "2026-01-01T00:00:00Z",
                },
                "spec": {"parentRefs": [{"name": "global"}], "hostnames": [HOST], "rules": rules},
            }
        )
    return docs


def gateway_inputs(backend_port: int) -> GatewayInputs:
    cls = gatewayclass_from(
        {"metadata": {"name": "ingressfed"}, "spec": {"controllerName": "ingressfed.io/gateway-controller"}},
        cluster=CLUSTERS[0].name,
    ).value
    gw = gateway_from(
        {
            "metadata": {"name": "global", "namespace": "bench"},
            "spec": {
                "gatewayClassName": "ingressfed",
                "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
            },
        },
        cluster=CLUSTERS[0].name,
    ).value
    routes = [httproute_from(d, cluster=CLUSTERS[0].name).value for d in httproute_docs(backend_port)]
    assert cls is not None and gw is not None and all(r is not None for r in routes)
    services = tuple(
        ServiceObservation(
            cluster=c.name, namespace="bench", name=f"svc{i}", ready_endpoints=1, addresses=("127.0.0.1",)
        )
        for i in range(ROUTES)
        for c in CLUSTERS
    )
    return GatewayInputs(
        classes=(cls,),
        gateways=(gw,),
        routes=tuple(r for r in routes if r is not None),
        services=services,
        global_addresses=("192.0.2.80",),
    )


def gateway_rules(backend_port: int) -> GatewayState:
    return gateway_state(gateway_inputs(backend_port))
