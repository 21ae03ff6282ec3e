"""Ingress hosts published as the live edges' addresses (pure steering tables)."""

from __future__ import annotations

from ingressfed.core.desired import desired_state
from ingressfed.model import (
    Cluster,
    Edge,
    Federation,
    IngressObservation,
    IngressRule,
    Location,
    RecordSet,
    RecordType,
    Snapshot,
)

FED = Federation(name="federation", suffix="example.com", ttl=30)
HOST = "web.example.com"
US, EU, ASIA = Location(33.2, -80.0), Location(50.4, 3.8), Location(24.0, 121.0)

CLUSTERS = (
    Cluster("us", "us-east1", "us-east1-b", US),
    Cluster("eu", "europe-west1", "europe-west1-b", EU),
    Cluster("asia", "asia-east1", "asia-east1-a", ASIA),
)
INGRESSES = tuple(
    IngressObservation(c.name, "default", "web", (IngressRule(HOST),), addresses=(f"10.0.0.{i}",))
    for i, c in enumerate(CLUSTERS, 1)
)


def edges(*, live: dict[str, bool] | None = None) -> tuple[Edge, ...]:
    live = live or {}
    return (
        Edge("edge-us", "us", "us-east1", US, ("198.51.100.1",), live.get("edge-us", True)),
        Edge("edge-eu", "eu", "europe-west1", EU, ("198.51.100.2", "2001:db8::2"), live.get("edge-eu", True)),
        Edge("edge-asia", "asia", "asia-east1", ASIA, ("198.51.100.3",), live.get("edge-asia", True)),
    )


def host_sets(fed: Federation, snap: Snapshot, *, routed: bool) -> set[RecordSet]:
    return {d.record for d in desired_state(fed, snap, routed=routed).records if d.record.name == HOST}


def test_routed_one_set_per_live_edge_with_its_location() -> None:
    got = host_sets(FED, Snapshot(CLUSTERS, (), INGRESSES, edges()), routed=True)
    by_id = {(r.set_identifier, r.type): r for r in got}
    assert set(by_id) == {
        ("edge-us", RecordType.A),
        ("edge-eu", RecordType.A),
        ("edge-eu", RecordType.AAAA),
        ("edge-asia", RecordType.A),
    }
    eu = by_id[("edge-eu", RecordType.A)]
    assert eu.values == ("198.51.100.2",)
    assert eu.routing is not None and eu.routing.location == EU and eu.routing.region == "europe-west1"


def test_dead_edge_leaves_dns() -> None:
    got = host_sets(FED, Snapshot(CLUSTERS, (), INGRESSES, edges(live={"edge-eu": False})), routed=True)
    assert {r.set_identifier for r in got} == {"edge-us", "edge-asia"}


def test_edge_whose_own_cluster_is_down_stays_in_dns() -> None:
    # The edge forwards to the next nearest cluster: its cluster's health does not remove it.
    down = tuple(
        c if c.name != "eu" else Cluster("eu", "europe-west1", "europe-west1-b", EU, data_plane_healthy=False)
        for c in CLUSTERS
    )
    got = host_sets(FED, Snapshot(down, (), INGRESSES, edges()), routed=True)
    assert "edge-eu" in {r.set_identifier for r in got}


def test_no_live_edge_publishes_all_of_them() -> None:
    dead = edges(live={"edge-us": False, "edge-eu": False, "edge-asia": False})
    got = host_sets(FED, Snapshot(CLUSTERS, (), INGRESSES, dead), routed=True)
    assert {r.set_identifier for r in got} == {"edge-us", "edge-eu", "edge-asia"}


def test_unrouted_provider_gets_the_union_of_live_edges() -> None:
    got = host_sets(FED, Snapshot(CLUSTERS, (), INGRESSES, edges(live={"edge-us": False})), routed=False)
    assert got == {
        RecordSet(HOST, RecordType.A, 30, ("198.51.100.2", "198.51.100.3")),
        RecordSet(HOST, RecordType.AAAA, 30, ("2001:db8::2",)),
    }


def test_single_live_edge_is_a_plain_set() -> None:
    only = (Edge("edge-us", "us", "us-east1", US, ("198.51.100.1",)),)
    got = host_sets(FED, Snapshot(CLUSTERS, (), INGRESSES, only), routed=True)
    assert got == {RecordSet(HOST, RecordType.A, 30, ("198.51.100.1",))}


def test_static_global_address_wins_over_edges() -> None:
    anycast = Federation(name="federation", suffix="example.com", ttl=30, global_addresses=("192.0.2.1",))
    got = host_sets(anycast, Snapshot(CLUSTERS, (), INGRESSES, edges()), routed=True)
    assert got == {RecordSet(HOST, RecordType.A, 30, ("192.0.2.1",))}


def test_edges_without_addresses_are_a_problem_not_a_record() -> None:
    bare = (Edge("edge-us", "us", "us-east1", US, ()),)
    state = desired_state(FED, Snapshot(CLUSTERS, (), INGRESSES, bare), routed=True)
    assert not [d for d in state.records if d.record.name == HOST]
    assert any("no edge has an address yet" in p.message for p in state.problems)


def test_idempotent() -> None:
    snap = Snapshot(CLUSTERS, (), INGRESSES, edges())
    assert desired_state(FED, snap, routed=True) == desired_state(FED, snap, routed=True)
