"""Proxy routes from a snapshot: backends per cluster, and the route's steering policy."""

from __future__ import annotations

from ingressfed.core.routes import desired_routes
from ingressfed.model import (
    Backend,
    Cluster,
    IngressObservation,
    IngressRule,
    Route,
    Snapshot,
    Steering,
    SteeringKind,
)

A = Cluster(name="a", region="r1", zone="z1")
B = Cluster(name="b", region="r2", zone="z2")
FAILOVER = Steering(kind=SteeringKind.FAILOVER, order=("b", "a"))


def ingress(cluster: str, address: str, steering: Steering | None = None) -> IngressObservation:
    return IngressObservation(
        cluster=cluster,
        namespace="web",
        name="shop",
        rules=(IngressRule("Shop.example.com."),),
        addresses=(address,),
        steering=steering,
    )


def test_one_route_per_host_and_path_with_a_backend_per_cluster() -> None:
    snap = Snapshot(clusters=(A, B), ingresses=(ingress("b", "10.0.0.2"), ingress("a", "10.0.0.1")))
    assert desired_routes(snap) == (
        Route("shop.example.com", "/", "Prefix", (Backend("a", "10.0.0.1"), Backend("b", "10.0.0.2"))),
    )


def test_the_steering_of_the_first_ingress_that_sets_one_applies() -> None:
    other = Steering(kind=SteeringKind.WEIGHTED, weights=(("a", 1),))
    snap = Snapshot(
        clusters=(A, B),
        ingresses=(ingress("b", "10.0.0.2", other), ingress("a", "10.0.0.1", FAILOVER)),
    )
    (route,) = desired_routes(snap)
    assert route.steering == FAILOVER  # cluster "a" sorts first
    assert desired_routes(snap) == desired_routes(Snapshot(clusters=(A, B), ingresses=snap.ingresses[::-1]))
