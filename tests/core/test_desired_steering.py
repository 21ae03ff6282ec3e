"""A Service's failover order in its DNS names (the part of steering DNS can express)."""

from __future__ import annotations

import dataclasses

import pytest

from ingressfed.core.desired import desired_state
from ingressfed.model import (
    Cluster,
    Federation,
    Location,
    RecordType,
    ServiceObservation,
    Snapshot,
    Steering,
    SteeringKind,
)

FED = Federation(name="federation", suffix="example.com", ttl=30)
US = Cluster("us", region="us-east1", zone="us-east1-b", location=Location(33.8, -81.0))
US2 = Cluster("us2", region="us-east1", zone="us-east1-c", location=Location(33.8, -81.0))
EU = Cluster("eu", region="europe-west1", zone="europe-west1-b", location=Location(50.4, 3.8))
G = "web.default.federation.svc.example.com"
USR = "web.default.federation.svc.us-east1.example.com"
EUR = "web.default.federation.svc.europe-west1.example.com"
EUZ = "web.default.federation.svc.europe-west1-b.europe-west1.example.com"
ADDR = {"us": "10.0.0.1", "us2": "10.0.0.2", "eu": "10.1.0.1"}


def svc(cluster: str, *, ready: int = 1, order: tuple[str, ...] | None = None) -> ServiceObservation:
    steering = Steering(kind=SteeringKind.FAILOVER, order=order) if order is not None else None
    return ServiceObservation(cluster, "default", "web", ready, (ADDR[cluster],), steering=steering)


def a_records(snap: Snapshot, *, routed: bool = False) -> dict[str, tuple[str, ...]]:
    st = desired_state(FED, snap, routed=routed)
    out: dict[str, tuple[str, ...]] = {}
    for d in st.records:
        if d.record.type is RecordType.A:
            out[d.record.name] = tuple(sorted(out.get(d.record.name, ()) + d.record.values))
        elif d.record.type is RecordType.CNAME:
            out[d.record.name] = ("CNAME", *d.record.values)
    return out


@pytest.mark.parametrize(
    ("ready", "order", "global_answer", "us_region"),
    [
        # No policy: every serving cluster, as before.
        ({"us": 1, "us2": 1, "eu": 1}, None, ("10.0.0.1", "10.0.0.2", "10.1.0.1"), ("10.0.0.1", "10.0.0.2")),
        # The first listed cluster that serves, alone, in every name that covers it.
        ({"us": 1, "us2": 1, "eu": 1}, ("eu", "us"), ("10.1.0.1",), ("10.0.0.1",)),
        # The first one down: the next listed one takes over.
        ({"us": 1, "us2": 1, "eu": 0}, ("eu", "us"), ("10.0.0.1",), ("10.0.0.1",)),
        # Every listed cluster down: the unlisted ones that serve (no name goes dark).
        ({"us": 0, "us2": 1, "eu": 0}, ("eu", "us"), ("10.0.0.2",), ("10.0.0.2",)),
        # A listed name that is no member is skipped.
        ({"us": 1, "us2": 1, "eu": 1}, ("gone", "us2"), ("10.0.0.2",), ("10.0.0.2",)),
    ],
)
def test_failover_order_picks_the_answer(
    ready: dict[str, int],
    order: tuple[str, ...] | None,
    global_answer: tuple[str, ...],
    us_region: tuple[str, ...],
) -> None:
    snap = Snapshot(
        clusters=(US, US2, EU),
        services=tuple(svc(c, ready=ready[c], order=order) for c in ("us", "us2", "eu")),
    )
    got = a_records(snap)
    assert got[G] == global_answer
    assert got[USR] == us_region


def test_failover_is_one_plain_set_even_for_routing_providers() -> None:
    """With routed sets (Route53 latency, the embedded server's geo answers) a failover name is
    still one answer for everyone: the order is the policy, not the querier's location."""
    snap = Snapshot(
        clusters=(US, EU), services=(svc("us", order=("eu", "us")), svc("eu", order=("eu", "us")))
    )
    st = desired_state(FED, snap, routed=True)
    global_sets = [d.record for d in st.records if d.record.name == G]
    assert [(r.type, r.values, r.routing) for r in global_sets] == [(RecordType.A, ("10.1.0.1",), None)]
    # Without a policy the same snapshot gives one routed set per cluster.
    plain = Snapshot(clusters=(US, EU), services=(svc("us"), svc("eu")))
    routed = [d.record for d in desired_state(FED, plain, routed=True).records if d.record.name == G]
    assert sorted(r.set_identifier or "" for r in routed) == ["eu", "us"]


def test_zone_fallback_still_follows_failover() -> None:
    """A zone whose cluster is down still falls back by CNAME to its region, then to the global
    name, which answers the failover choice."""
    order = ("us", "eu")
    snap = Snapshot(clusters=(US, EU), services=(svc("us", order=order), svc("eu", ready=0, order=order)))
    got = a_records(snap)
    assert got[EUZ] == ("CNAME", EUR)
    assert got[EUR] == ("CNAME", G)
    assert got[G] == ("10.0.0.1",)


def test_the_policy_comes_from_the_first_cluster_that_sets_one() -> None:
    snap = Snapshot(
        clusters=(US, EU),
        services=(svc("us", order=("us", "eu")), svc("eu", order=("eu", "us"))),
    )
    assert a_records(snap)[G] == ("10.1.0.1",)  # "eu" sorts first: its order wins
    one = dataclasses.replace(svc("us"), steering=None)
    snap = Snapshot(clusters=(US, EU), services=(one, svc("eu", order=("us",))))
    assert a_records(snap)[G] == ("10.0.0.1",)
