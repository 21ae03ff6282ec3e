"""Route53 (moto server over HTTP): an Ingress host steered to edges is one latency record per edge."""

from __future__ import annotations

from collections.abc import Callable

import boto3
import pytest

from ingressfed.model import Cluster, Edge, Federation, IngressObservation, IngressRule, Location, Snapshot
from ingressfed.testing import OWNER
from providers.route53 import Route53Provider
from tests.providers.test_route53 import converge_routed, make

__all__ = ["make"]  # the fixture, shared with the main Route53 tests

pytestmark = pytest.mark.usefixtures("aws_env")

EDGES = {  # edge -> (cluster, region, address)
    "edge-us": ("us", "us-east-1", "198.51.100.1"),
    "edge-eu": ("eu", "eu-west-1", "198.51.100.2"),
    "edge-asia": ("asia", "ap-northeast-1", "198.51.100.3"),
}


def snapshot(*, live: set[str]) -> Snapshot:
    clusters = tuple(Cluster(c, r, f"{r}a") for c, r, _ in EDGES.values())
    ingresses = tuple(
        IngressObservation(c, "default", "web", (IngressRule("web.placeholder"),), addresses=("10.0.0.1",))
        for c, _, _ in EDGES.values()
    )
    edges = tuple(
        Edge(name, c, r, Location(0, 0), (addr,), live=name in live) for name, (c, r, addr) in EDGES.items()
    )
    return Snapshot(clusters=clusters, ingresses=ingresses, edges=edges)


def with_host(snap: Snapshot, host: str) -> Snapshot:
    ingresses = tuple(
        IngressObservation(i.cluster, i.namespace, i.name, (IngressRule(host),), addresses=i.addresses)
        for i in snap.ingresses
    )
    return Snapshot(clusters=snap.clusters, ingresses=ingresses, edges=snap.edges)


async def test_one_latency_record_per_live_edge(
    make: Callable[..., Route53Provider], moto_endpoint: str
) -> None:
    p = make(routing="latency")
    fed = Federation(name="federation", suffix=p.zone, owner_id=OWNER)
    host = f"web.{p.zone}"
    left, records = await converge_routed(p, fed, with_host(snapshot(live=set(EDGES)), host))
    assert left == 0  # read back exactly as written: no flapping
    routed = {
        rs.set_identifier: (rs.routing.region, rs.values) for rs in records if rs.name == host and rs.routing
    }
    assert routed == {name: (r, (addr,)) for name, (_, r, addr) in EDGES.items()}

    # What Route53 itself holds: one set per edge, each with its SetIdentifier and Region.
    client = boto3.client("route53", endpoint_url=moto_endpoint, region_name="us-east-1")
    zone_id = await p.zone_id()
    raw = client.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    sets = {(r["SetIdentifier"], r["Region"]) for r in raw if r["Name"] == host + "." and r["Type"] == "A"}
    assert sets == {(name, r) for name, (_, r, _) in EDGES.items()}

    # A dead edge's record goes; the others stay untouched.
    left, records = await converge_routed(p, fed, with_host(snapshot(live={"edge-us", "edge-asia"}), host))
    assert left == 0
    assert {rs.set_identifier for rs in records if rs.name == host} == {"edge-us", "edge-asia"}


async def test_one_geolocation_record_per_edge_and_a_default(make: Callable[..., Route53Provider]) -> None:
    p = make(routing="geolocation")
    fed = Federation(name="federation", suffix=p.zone, owner_id=OWNER)
    host = f"web.{p.zone}"
    left, records = await converge_routed(p, fed, with_host(snapshot(live=set(EDGES)), host))
    assert left == 0
    geo = {
        rs.set_identifier: (rs.routing.continent, rs.values)
        for rs in records
        if rs.name == host and rs.routing
    }
    # Each edge answers its continent; the default set (clients elsewhere) holds every live edge.
    assert geo["edge-us"] == ("NA", ("198.51.100.1",))
    assert geo["edge-eu"] == ("EU", ("198.51.100.2",))
    assert geo["edge-asia"] == ("AS", ("198.51.100.3",))
    assert geo["default"][1] == ("198.51.100.1", "198.51.100.2", "198.51.100.3")
