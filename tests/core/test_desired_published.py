"""Per-level TTL, the ``published`` map written back to objects, and the Problem messages."""

from ingressfed.core.desired import desired_state
from ingressfed.model import (
    Cluster,
    ClusterStatus,
    Federation,
    IngressObservation,
    IngressRule,
    RecordType,
    ServiceObservation,
    Snapshot,
)

FED = Federation(name="federation", suffix="example.com", ttl=30, global_addresses=("198.51.100.1",))
US = Cluster("us", region="us-east1", zone="us-east1-b")
EU = Cluster("eu", region="europe-west1", zone="europe-west1-b")
AS = Cluster("as", region="asia-east1", zone="asia-east1-a")

P = "k8shserver.default.federation.svc"
G = f"{P}.example.com"
USR, USZ = f"{P}.us-east1.example.com", f"{P}.us-east1-b.us-east1.example.com"
EUR, EUZ = f"{P}.europe-west1.example.com", f"{P}.europe-west1-b.europe-west1.example.com"
ASR, ASZ = f"{P}.asia-east1.example.com", f"{P}.asia-east1-a.asia-east1.example.com"


def svc(cluster: str, ip: str, *, ttl: int | None = None, ready: int = 1, name: str = "k8shserver"):
    return ServiceObservation(cluster, "default", name, ready, (ip,), (), ttl)


def ttls(snap: Snapshot) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in desired_state(FED, snap).records:
        assert out.setdefault(d.record.name, d.record.ttl) == d.record.ttl
    return out


def test_ttl_of_one_cluster_stays_in_its_levels() -> None:
    """Finding 3: ttl=120 only in Asia must not set TTL 120 on the European (or US) records."""
    snap = Snapshot(
        clusters=(US, EU, AS),
        services=(svc("us", "10.0.0.1"), svc("eu", "10.1.0.1"), svc("as", "10.2.0.1", ttl=120)),
    )
    got = ttls(snap)
    assert got[ASZ] == 120 and got[ASR] == 120
    assert got[EUZ] == 30 and got[EUR] == 30 and got[USZ] == 30 and got[USR] == 30
    # The global name covers every cluster: the shortest TTL any of them asks for.
    assert got[G] == 30


def test_global_level_takes_the_shortest_ttl_asked_for() -> None:
    snap = Snapshot(
        clusters=(US, EU), services=(svc("us", "10.0.0.1", ttl=5), svc("eu", "10.1.0.1", ttl=300))
    )
    got = ttls(snap)
    assert (got[G], got[USR], got[USZ], got[EUR], got[EUZ]) == (5, 5, 5, 300, 300)


def test_fallback_cname_keeps_its_own_levels_ttl() -> None:
    """A zone whose only cluster is down points up with the TTL that cluster's Service asked for."""
    down = Cluster("as", region="asia-east1", zone="asia-east1-a", status=ClusterStatus.OFFLINE)
    snap = Snapshot(
        clusters=(EU, down), services=(svc("eu", "10.1.0.1"), svc("as", "10.2.0.1", ttl=60, ready=0))
    )
    st = desired_state(FED, snap)
    by = {(d.record.name, d.record.type): d.record for d in st.records}
    assert by[(ASZ, RecordType.CNAME)].values == (ASR,) and by[(ASZ, RecordType.CNAME)].ttl == 60
    assert by[(EUZ, RecordType.A)].ttl == 30


def test_published_names_and_serving_clusters() -> None:
    snap = Snapshot(clusters=(US, EU), services=(svc("us", "10.0.0.1"), svc("eu", "10.1.0.1", ready=0)))
    st = desired_state(FED, snap)
    assert st.published["service/default/k8shserver"] == {
        G: ("us",),
        USR: ("us",),
        USZ: ("us",),
        EUR: (),  # CNAME up: published, served by no cluster of its own
        EUZ: (),
    }


def test_ingress_host_dropped_for_a_service_is_not_reported_published() -> None:
    """Finding 8: the record is dropped, so the status write-back must not claim the host."""
    ing = IngressObservation("us", "default", "web", (IngressRule(G), IngressRule("www.example.com")))
    snap = Snapshot(clusters=(US,), services=(svc("us", "10.0.0.1"),), ingresses=(ing,))
    st = desired_state(FED, snap)
    assert st.published["ingress/default/web"] == {"www.example.com": ("us",)}
    assert [d.record.values for d in st.records if d.record.name == G] == [("10.0.0.1",)]
    assert [(p.resource, p.message) for p in st.problems] == [
        ("ingress/default/web", f"{G} is already published for a Service")
    ]


def test_ingress_whose_only_host_is_taken_is_not_in_published() -> None:
    ing = IngressObservation("us", "default", "web", (IngressRule(G),))
    snap = Snapshot(clusters=(US,), services=(svc("us", "10.0.0.1"),), ingresses=(ing,))
    assert "ingress/default/web" not in desired_state(FED, snap).published


def test_problem_messages_name_the_object_and_the_cluster() -> None:
    nowhere = Cluster("x", region="", zone="")
    no_lb = ServiceObservation("us", "default", "pending", 1, (), (), None)
    other = IngressObservation("us", "team", "b", (IngressRule("app.example.com"),))
    first = IngressObservation("us", "team", "a", (IngressRule("app.example.com"),))
    outside = IngressObservation("us", "team", "c", (IngressRule("www.other.org"),))
    snap = Snapshot(
        clusters=(US, nowhere),
        services=(svc("ghost", "10.9.0.1"), svc("x", "10.8.0.1", name="lost"), no_lb),
        ingresses=(other, first, outside),
    )
    got = {(p.resource, p.cluster, p.message) for p in desired_state(FED, snap).problems}
    assert got == {
        ("service/default/k8shserver", "ghost", "cluster is not a federation member"),
        ("service/default/lost", "x", "cluster region/zone unknown; not published"),
        ("service/default/pending", "us", "no load-balancer address yet"),
        ("ingress/team/b", None, "host app.example.com is already published for ingress/team/a"),
        ("ingress/team/c", None, "host www.other.org is outside the federation zone example.com"),
    }


def test_ingress_without_global_address_is_a_problem_not_published() -> None:
    fed = Federation(name="federation", suffix="example.com")
    ing = IngressObservation("us", "default", "web", (IngressRule("www.example.com"),))
    st = desired_state(fed, Snapshot(clusters=(US,), ingresses=(ing,)))
    assert st.records == () and "ingress/default/web" not in st.published
    assert [p.message for p in st.problems] == ["federation has no global address configured"]
