"""The controller's edge registry: liveness over time, quorum written to the Store, report order."""

from __future__ import annotations

from ingressfed.core.quorum import QuorumRule
from ingressfed.edge.registry import EdgeIdentity, EdgeRegistry
from ingressfed.edge.report import ClusterReport, HealthReport
from ingressfed.model import Cluster, Location
from ingressfed.status.document import EdgeDetail, edge_item
from ingressfed.store import Store

RULE = QuorumRule(stale_after=10.0)


def setup() -> tuple[Store, EdgeRegistry]:
    store = Store()
    store.set_cluster(Cluster("us", "us-east1", "us-east1-b", Location(33.2, -80.0)))
    store.set_cluster(Cluster("eu", "europe-west1", "europe-west1-b", Location(50.4, 3.8)))
    registry = EdgeRegistry(
        [
            EdgeIdentity("edge-us", "us", token="t"),
            EdgeIdentity("edge-eu", "eu", addresses=("198.51.100.2",), token="t"),
            EdgeIdentity("local", "", published=False),
        ],
        rule=RULE,
        store=store,
        started_at=0.0,
    )
    return store, registry


def report(edge: str, seq: int, **up: bool) -> HealthReport:
    clusters = tuple(ClusterReport(c, ((f"10.0.0.{i}", 80, ok),)) for i, (c, ok) in enumerate(up.items()))
    return HealthReport(edge=edge, sequence=seq, addresses=("198.51.100.1",), clusters=clusters)


def test_edges_in_the_snapshot_take_their_cluster_region_and_location() -> None:
    store, registry = setup()
    registry.refresh(now=1.0)
    edges = {e.name: e for e in store.snapshot().edges}
    assert set(edges) == {"edge-us", "edge-eu"}  # the in-process proxy votes but is not published
    assert edges["edge-eu"].region == "europe-west1" and edges["edge-eu"].location == Location(50.4, 3.8)
    assert edges["edge-eu"].addresses == ("198.51.100.2",)  # declared
    assert edges["edge-us"].addresses == ()  # nothing announced yet
    assert all(e.live for e in edges.values())  # grace window from the start


def test_an_edge_that_stops_reporting_goes_stale_and_comes_back() -> None:
    store, registry = setup()
    registry.accept(report("edge-us", 1, us=True), now=1.0)
    registry.accept(report("edge-eu", 1, us=True), now=1.0)
    registry.accept(report("edge-us", 2, us=True), now=9.0)
    registry.refresh(now=11.5)
    edges = {e.name: e for e in store.snapshot().edges}
    assert edges["edge-us"].live and not edges["edge-eu"].live
    assert edges["edge-us"].addresses == ("198.51.100.1",)  # announced
    rows = {r.name: r.status for r in registry.rows(now=11.5)}
    assert rows == {"edge-us": "Live", "edge-eu": "Stale", "local": "Stale"}
    registry.accept(report("edge-eu", 2, us=True), now=12.0)
    assert {e.name for e in store.snapshot().edges if e.live} == {"edge-us", "edge-eu"}


def test_quorum_reaches_the_store_and_expires() -> None:
    store, registry = setup()
    registry.accept(report("edge-us", 1, us=True, eu=False), now=1.0)
    registry.accept(report("edge-eu", 1, us=True, eu=False), now=1.0)
    registry.accept(report("local", 1, us=True, eu=True), now=1.0)
    us, eu = store.cluster("us"), store.cluster("eu")
    assert us is not None and us.data_plane_healthy is True
    assert eu is not None and eu.data_plane_healthy is False  # 2 of 3
    registry.refresh(now=20.0)  # every report stale: no data, the API-server status decides again
    eu = store.cluster("eu")
    assert eu is not None and eu.data_plane_healthy is None


def test_an_older_report_is_ignored_a_restarted_edge_is_not() -> None:
    store, registry = setup()
    registry.accept(report("edge-us", 1000, us=False), now=1.0)
    registry.accept(report("edge-us", 999, us=True), now=2.0)  # overtaken by 1000: ignored
    us = store.cluster("us")
    assert us is not None and us.data_plane_healthy is False
    registry.accept(report("edge-us", 5000, us=True), now=3.0)  # a restart numbers from the clock
    us = store.cluster("us")
    assert us is not None and us.data_plane_healthy is True


def test_reports_on_unknown_clusters_do_not_vote() -> None:
    store, registry = setup()
    d = registry.accept(report("edge-us", 1, mars=False), now=1.0)
    assert "mars" not in d.clusters and store.cluster("mars") is None


def test_an_edge_whose_public_address_fails_the_controller_probe_leaves_dns() -> None:
    store, registry = setup()
    registry.accept(report("edge-eu", 1, us=True), now=1.0)
    for i in range(RULE.probe_failures - 1):
        registry.observe_probe("edge-eu", ok=False, now=2.0 + i)
    assert {e.name: e.live for e in store.snapshot().edges}["edge-eu"]  # not yet: below the threshold
    registry.observe_probe("edge-eu", ok=False, now=5.0)
    assert not {e.name: e.live for e in store.snapshot().edges}["edge-eu"]
    registry.observe_probe("edge-eu", ok=True, now=6.0)  # one success brings it back
    assert {e.name: e.live for e in store.snapshot().edges}["edge-eu"]


def test_peer_votes_take_a_reporting_edge_out_and_expire_with_their_report() -> None:
    """Two published edges: edge-eu's report that edge-us is unreachable is the one peer's vote.
    edge-us keeps reporting (it is not Stale) but leaves the snapshot's live edges, the status row
    says why; once edge-eu's report is stale its peer view stops counting."""
    store, registry = setup()
    registry.accept(report("edge-us", 1, us=True), now=1.0)
    registry.accept(
        HealthReport("edge-eu", 1, (), (), peers=(("edge-us", False), ("local", False), ("nobody", False))),
        now=1.0,
    )
    live = {e.name: e.live for e in store.snapshot().edges}
    assert live == {"edge-us": False, "edge-eu": True}
    rows = {r.name: r for r in registry.rows(now=1.0)}
    assert rows["edge-us"].status == "Unreachable" and rows["edge-eu"].status == "Live"
    assert rows["edge-us"].reason.startswith("1 of 1 peers")
    (us,) = [e for e in store.snapshot().edges if e.name == "edge-us"]
    detail = EdgeDetail(
        status="Unreachable", last_report=None, reports=1, backends_up=1, backends=1, reason="x"
    )
    assert edge_item(us, transition=None, detail=detail)["reasons"][0].startswith("Unreachable: x")
    # edge-us reports on; edge-eu falls silent: its word expires, edge-eu itself goes Stale.
    registry.accept(report("edge-us", 2, us=True), now=11.5)
    rows = {r.name: r for r in registry.rows(now=11.5)}
    assert rows["edge-us"].status == "Live" and rows["edge-eu"].status == "Stale"
    assert {e.name: e.live for e in store.snapshot().edges} == {"edge-us": True, "edge-eu": False}
