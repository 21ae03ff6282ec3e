from ingressfed.model import Cluster, ClusterStatus, ServiceObservation
from ingressfed.store import Store


def test_changes_bump_generation_and_noops_do_not() -> None:
    calls: list[int] = []
    store = Store(on_change=lambda: calls.append(1))
    store.set_cluster(Cluster("a", "r", "z"))
    obs = ServiceObservation("a", "ns", "s", 1, ("10.0.0.1",))
    store.upsert_service(obs)
    store.upsert_service(obs)
    store.set_cluster_status("a", ClusterStatus.READY)  # already Ready
    assert len(calls) == store.generation == 2
    store.set_cluster_status("a", ClusterStatus.OFFLINE)
    assert store.snapshot().clusters[0].status is ClusterStatus.OFFLINE


def test_redeclared_cluster_keeps_probe_results() -> None:
    store = Store()
    store.set_cluster(Cluster("a", "r", "z"))
    store.set_cluster_status("a", ClusterStatus.OFFLINE)
    store.set_cluster(Cluster("a", "r", "z", weight=5))
    c = store.cluster("a")
    assert c is not None and c.status is ClusterStatus.OFFLINE and c.weight == 5


def test_replace_objects_after_relist_loses_and_duplicates_nothing() -> None:
    store = Store()
    store.set_cluster(Cluster("a", "r", "z"))
    store.set_cluster(Cluster("b", "r", "z"))
    keep = ServiceObservation("a", "ns", "keep", 1)
    gone = ServiceObservation("a", "ns", "gone", 1)
    other = ServiceObservation("b", "ns", "gone", 1)
    for o in (keep, gone, other):
        store.upsert_service(o)
    new = ServiceObservation("a", "ns", "new", 1)
    store.replace_objects("a", services=[keep, new])
    assert set(store.snapshot().services) == {keep, new, other}
    gen = store.generation
    store.replace_objects("a", services=[new, keep])
    assert store.generation == gen


def test_remove_cluster_drops_its_objects() -> None:
    store = Store()
    store.set_cluster(Cluster("a", "r", "z"))
    store.upsert_service(ServiceObservation("a", "ns", "s", 1))
    store.remove_cluster("a")
    assert store.snapshot().services == () and store.snapshot().clusters == ()
