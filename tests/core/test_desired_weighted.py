"""A Service's weighted split in its DNS names (``steering: weighted``), where the provider can
write weighted answers; elsewhere the split is reported and the names answered as without it."""

from __future__ import annotations

import pytest

from ingressfed.core.desired import MAX_DNS_WEIGHT, desired_state, dns_weights
from ingressfed.model import (
    RecordType,
    ServiceObservation,
    Snapshot,
    Steering,
    SteeringKind,
)
from tests.core.test_desired_steering import ADDR, EU, FED, US, US2, USR, G  # the same federation

USZ = "web.default.federation.svc.us-east1-b.us-east1.example.com"
ADDR6 = {"us": "2001:db8::1", "us2": "2001:db8::2", "eu": "2001:db8:1::1"}


def svc(cluster: str, *, ready: int = 1, weights: str | None = None, v6: bool = False) -> ServiceObservation:
    steering = None
    if weights is not None:
        pairs = tuple(sorted((k, int(v)) for k, v in (p.split("=") for p in weights.split(","))))
        steering = Steering(kind=SteeringKind.WEIGHTED, weights=pairs)
    addresses = (ADDR[cluster], ADDR6[cluster]) if v6 else (ADDR[cluster],)
    return ServiceObservation(cluster, "default", "web", ready, addresses, steering=steering)


Answer = tuple[tuple[str | None, int | None, tuple[str, ...]], ...]


def answers(snap: Snapshot, *, weighted: bool = True, routed: bool = False) -> dict[str, Answer]:
    """name -> its A (or CNAME) sets as (set identifier, weight when weighted, values)."""
    st = desired_state(FED, snap, routed=routed, weighted=weighted)
    out: dict[str, list[tuple[str | None, int | None, tuple[str, ...]]]] = {}
    for d in st.records:
        rs = d.record
        if rs.type not in (RecordType.A, RecordType.CNAME):
            continue
        w = rs.routing.weight if rs.routing is not None and rs.routing.weighted else None
        out.setdefault(rs.name, []).append((rs.set_identifier, w, rs.values))
    return {name: tuple(sorted(sets, key=str)) for name, sets in out.items()}


@pytest.mark.parametrize(
    ("ready", "weights", "global_answer", "us_region"),
    [
        # Every listed cluster serves: one weighted share each, the weights as given.
        (
            {"us": 1, "us2": 1, "eu": 1},
            "eu=90,us=10,us2=0",
            (("eu", 90, ("10.1.0.1",)), ("us", 10, ("10.0.0.1",))),
            # the region covers us only among the weighted ones: its plain set
            ((None, None, ("10.0.0.1",)),),
        ),
        # A weighted cluster stops serving: it drops out, the others share its weight.
        (
            {"us": 1, "us2": 1, "eu": 1},
            "eu=50,us=30,us2=20",
            (("eu", 50, ("10.1.0.1",)), ("us", 30, ("10.0.0.1",)), ("us2", 20, ("10.0.0.2",))),
            (("us", 30, ("10.0.0.1",)), ("us2", 20, ("10.0.0.2",))),
        ),
        (
            {"us": 1, "us2": 1, "eu": 0},
            "eu=50,us=30,us2=20",
            (("us", 30, ("10.0.0.1",)), ("us2", 20, ("10.0.0.2",))),
            (("us", 30, ("10.0.0.1",)), ("us2", 20, ("10.0.0.2",))),
        ),
        # One weighted cluster left: its plain set, whoever else serves unweighted.
        (
            {"us": 1, "us2": 1, "eu": 0},
            "eu=90,us=10",
            ((None, None, ("10.0.0.1",)),),
            ((None, None, ("10.0.0.1",)),),
        ),
        # No weighted cluster serves: the unlisted (or 0) ones, as without the annotation.
        (
            {"us": 0, "us2": 1, "eu": 0},
            "eu=90,us=10,us2=0",
            ((None, None, ("10.0.0.2",)),),
            ((None, None, ("10.0.0.2",)),),
        ),
        # Names that are no member are skipped.
        (
            {"us": 1, "us2": 1, "eu": 1},
            "gone=99,us=1,eu=1",
            (("eu", 1, ("10.1.0.1",)), ("us", 1, ("10.0.0.1",))),
            ((None, None, ("10.0.0.1",)),),
        ),
    ],
)
def test_weighted_split_per_name(
    ready: dict[str, int], weights: str, global_answer: Answer, us_region: Answer
) -> None:
    snap = Snapshot(
        clusters=(US, US2, EU),
        services=tuple(svc(c, ready=ready[c], weights=weights) for c in ("us", "us2", "eu")),
    )
    got = answers(snap)
    assert got[G] == global_answer
    assert got[USR] == us_region


def test_no_name_goes_dark_and_zone_fallback_still_works() -> None:
    """The us zone's only cluster is down: its name falls back to the region (a CNAME); with
    nothing serving anywhere the global name is absent, as without a policy."""
    snap = Snapshot(
        clusters=(US, US2, EU),
        services=(svc("us", ready=0, weights="us=1,us2=1"), svc("us2", weights="us=1,us2=1"), svc("eu")),
    )
    got = answers(snap)
    assert got[USZ] == ((None, None, (USR,)),)
    assert got[USR] == ((None, None, ("10.0.0.2",)),)
    assert got[G] == ((None, None, ("10.0.0.2",)),)


def test_weighted_shares_carry_both_families_and_win_over_geo_routing() -> None:
    """Weighted names are weighted for routing providers too (the split is the policy, not the
    querier's location); AAAA shares carry the same weights as the A ones."""
    snap = Snapshot(
        clusters=(US, EU),
        services=(svc("us", weights="us=3,eu=1", v6=True), svc("eu", weights="us=3,eu=1", v6=True)),
    )
    st = desired_state(FED, snap, routed=True, weighted=True)
    top = sorted(
        (d.record.type.value, d.record.set_identifier, d.record.routing.weight, d.record.routing.weighted)
        for d in st.records
        if d.record.name == G and d.record.routing is not None
    )
    assert top == [
        ("A", "eu", 1, True),
        ("A", "us", 3, True),
        ("AAAA", "eu", 1, True),
        ("AAAA", "us", 3, True),
    ]
    assert st.problems == ()
    assert st.published["service/default/web"][G] == ("eu", "us")


def test_without_weighted_provider_the_split_is_reported_and_ignored() -> None:
    snap = Snapshot(
        clusters=(US, EU),
        services=(svc("us", weights="us=90,eu=10"), svc("eu", weights="us=90,eu=10")),
    )
    st = desired_state(FED, snap, weighted=False)
    assert answers(snap, weighted=False)[G] == ((None, None, ("10.0.0.1", "10.1.0.1")),)
    [problem] = st.problems
    assert problem.resource == "service/default/web"
    assert "federation.ingressfed.io/weights: eu=10,us=90" in problem.message
    assert "writes no weighted answers" in problem.message
    # As before for routing providers that cannot weigh: per-cluster geo sets, no weights.
    routed = desired_state(FED, snap, routed=True, weighted=False)
    assert all(d.record.routing is None or not d.record.routing.weighted for d in routed.records)
    assert {d.record.set_identifier for d in routed.records if d.record.name == G} == {"us", "eu"}


def test_the_policy_comes_from_the_first_cluster_that_sets_one() -> None:
    snap = Snapshot(
        clusters=(US, EU),
        services=(svc("us", weights="us=1,eu=0"), svc("eu", weights="us=1,eu=3")),
    )
    assert answers(snap)[G] == (("eu", 3, ("10.1.0.1",)), ("us", 1, ("10.0.0.1",)))


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ((("a", 90), ("b", 10)), {"a": 90, "b": 10}),
        ((("a", 0), ("b", 10)), {"b": 10}),
        ((("a", 1000), ("b", 500), ("c", 1)), {"a": MAX_DNS_WEIGHT, "b": 128, "c": 1}),
        ((("a", 0),), {}),
    ],
)
def test_dns_weights_fit_every_weighted_provider(
    weights: tuple[tuple[str, int], ...], expected: dict[str, int]
) -> None:
    assert dns_weights(weights) == expected
