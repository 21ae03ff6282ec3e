from ingressfed.core.desired import desired_state, with_companions
from ingressfed.core.ownership import companion_name, parse_owner
from ingressfed.model import (
    Cluster,
    ClusterStatus,
    Federation,
    IngressObservation,
    IngressRule,
    Location,
    RecordSet,
    RecordType,
    ServiceObservation,
    Snapshot,
)

FED = Federation(name="federation", suffix="example.com", ttl=30, global_addresses=("198.51.100.1",))
US = Cluster("us", region="us-east1", zone="us-east1-b", location=Location(33.8, -81.0))
US2 = Cluster("us2", region="us-east1", zone="us-east1-c", location=Location(33.8, -81.0))
EU = Cluster("eu", region="europe-west1", zone="europe-west1-b", location=Location(50.4, 3.8))

G = "k8shserver.default.federation.svc.example.com"
USR = "k8shserver.default.federation.svc.us-east1.example.com"
USZ = "k8shserver.default.federation.svc.us-east1-b.us-east1.example.com"
US2Z = "k8shserver.default.federation.svc.us-east1-c.us-east1.example.com"
EUR = "k8shserver.default.federation.svc.europe-west1.example.com"
EUZ = "k8shserver.default.federation.svc.europe-west1-b.europe-west1.example.com"


def svc(
    cluster: str,
    ready: int = 1,
    addrs: tuple[str, ...] = (),
    hosts: tuple[str, ...] = (),
    ttl: int | None = None,
):
    return ServiceObservation(cluster, "default", "k8shserver", ready, addrs, hosts, ttl)


def records(snap: Snapshot, **kw) -> dict[tuple[str, RecordType], tuple[str, ...]]:
    st = desired_state(FED, snap, **kw)
    return {(d.record.name, d.record.type): d.record.values for d in st.records}


def test_all_levels_healthy() -> None:
    snap = Snapshot(
        clusters=(US, EU),
        services=(svc("us", addrs=("10.0.0.1",)), svc("eu", addrs=("10.1.0.1", "2001:db8::1"))),
    )
    got = records(snap)
    assert got == {
        (G, RecordType.A): ("10.0.0.1", "10.1.0.1"),
        (G, RecordType.AAAA): ("2001:db8::1",),
        (USR, RecordType.A): ("10.0.0.1",),
        (USZ, RecordType.A): ("10.0.0.1",),
        (EUR, RecordType.A): ("10.1.0.1",),
        (EUR, RecordType.AAAA): ("2001:db8::1",),
        (EUZ, RecordType.A): ("10.1.0.1",),
        (EUZ, RecordType.AAAA): ("2001:db8::1",),
    }


def test_unhealthy_levels_fall_back_by_cname() -> None:
    snap = Snapshot(
        clusters=(US, EU),
        services=(svc("us", addrs=("10.0.0.1",)), svc("eu", ready=0, addrs=("10.1.0.1",))),
    )
    got = records(snap)
    assert got[(EUZ, RecordType.CNAME)] == (EUR,)
    assert got[(EUR, RecordType.CNAME)] == (G,)
    assert got[(G, RecordType.A)] == ("10.0.0.1",)
    assert (EUR, RecordType.A) not in got


def test_zone_falls_back_to_healthy_region() -> None:
    snap = Snapshot(
        clusters=(US, US2),
        services=(svc("us", addrs=("10.0.0.1",)), svc("us2", ready=0, addrs=("10.0.0.2",))),
    )
    got = records(snap)
    assert got[(US2Z, RecordType.CNAME)] == (USR,)
    assert got[(USR, RecordType.A)] == ("10.0.0.1",)


def test_nothing_healthy_means_no_global_record() -> None:
    snap = Snapshot(clusters=(US,), services=(svc("us", ready=0, addrs=("10.0.0.1",)),))
    got = records(snap)
    assert not any(name == G for name, _ in got)
    assert got[(USR, RecordType.CNAME)] == (G,)


def test_offline_cluster_is_dropped_unless_data_plane_answers() -> None:
    off = Cluster("us", region="us-east1", zone="us-east1-b", status=ClusterStatus.OFFLINE)
    snap = Snapshot(clusters=(off,), services=(svc("us", addrs=("10.0.0.1",)),))
    assert (G, RecordType.A) not in records(snap)
    alive = Cluster(
        "us", region="us-east1", zone="us-east1-b", status=ClusterStatus.OFFLINE, data_plane_healthy=True
    )
    snap = Snapshot(clusters=(alive,), services=(svc("us", addrs=("10.0.0.1",)),))
    assert records(snap)[(G, RecordType.A)] == ("10.0.0.1",)


def test_lone_hostname_becomes_cname_else_resolved_addresses() -> None:
    snap = Snapshot(clusters=(US,), services=(svc("us", hosts=("abc.elb.amazonaws.com.",)),))
    got = records(snap)
    assert got[(G, RecordType.CNAME)] == ("abc.elb.amazonaws.com",)
    # With another cluster's address present the hostname's resolved addresses are used.
    snap = Snapshot(
        clusters=(US, EU),
        services=(
            svc("us", addrs=("10.0.0.9",), hosts=("abc.elb.amazonaws.com",)),
            svc("eu", addrs=("10.1.0.1",)),
        ),
    )
    got = records(snap)
    assert got[(G, RecordType.A)] == ("10.0.0.9", "10.1.0.1")
    assert (G, RecordType.CNAME) not in got


def test_ttl_override_per_object() -> None:
    snap = Snapshot(clusters=(US,), services=(svc("us", addrs=("10.0.0.1",), ttl=5),))
    st = desired_state(FED, snap)
    assert {d.record.ttl for d in st.records} == {5}


def test_routed_sets_per_cluster() -> None:
    snap = Snapshot(
        clusters=(US, EU), services=(svc("us", addrs=("10.0.0.1",)), svc("eu", addrs=("10.1.0.1",)))
    )
    st = desired_state(FED, snap, routed=True)
    glob = [d.record for d in st.records if d.record.name == G]
    assert {(r.set_identifier, r.values) for r in glob} == {("eu", ("10.1.0.1",)), ("us", ("10.0.0.1",))}
    assert all(r.routing is not None and r.routing.cluster == r.set_identifier for r in glob)


def test_ingress_hosts_point_at_global_addresses() -> None:
    ing = IngressObservation("us", "default", "web", (IngressRule("k8shserver.example.com"),), ("10.0.0.1",))
    outside = IngressObservation("us", "default", "other", (IngressRule("www.other.org"),))
    st = desired_state(FED, Snapshot(clusters=(US,), ingresses=(ing, outside)))
    got = {(d.record.name, d.record.type): d.record.values for d in st.records}
    assert got == {("k8shserver.example.com", RecordType.A): ("198.51.100.1",)}
    assert any("outside the federation zone" in p.message for p in st.problems)


def test_problems_reported_not_raised() -> None:
    bad = Cluster("x", region="", zone="")
    snap = Snapshot(
        clusters=(bad,), services=(svc("x", addrs=("10.0.0.1",)), svc("ghost", addrs=("10.0.0.2",)))
    )
    st = desired_state(FED, snap)
    assert st.records == ()
    msgs = {p.message for p in st.problems}
    assert "cluster is not a federation member" in msgs
    assert any("region/zone unknown" in m for m in msgs)


def test_companions_one_per_name_with_owner() -> None:
    snap = Snapshot(clusters=(US,), services=(svc("us", addrs=("10.0.0.1", "2001:db8::2")),))
    sets = with_companions(desired_state(FED, snap).records, "me")
    txt = [r for r in sets if r.type is RecordType.TXT]
    assert {r.name for r in txt} == {companion_name(n) for n in (G, USR, USZ)}
    own = parse_owner(txt[0].values[0])
    assert own is not None and own.owner == "me" and own.resource == "service/default/k8shserver"


def test_deterministic() -> None:
    snap = Snapshot(
        clusters=(EU, US), services=(svc("eu", addrs=("10.1.0.1",)), svc("us", addrs=("10.0.0.1",)))
    )
    snap2 = Snapshot(
        clusters=(US, EU), services=(svc("us", addrs=("10.0.0.1",)), svc("eu", addrs=("10.1.0.1",)))
    )
    assert desired_state(FED, snap).records == desired_state(FED, snap2).records
    assert isinstance(desired_state(FED, snap).records[0].record, RecordSet)
