"""Steering policies as pure functions: table tests of steer() and of the annotation parser."""

from __future__ import annotations

import pytest

from geo.select import dns_steering, parse_steering, steer, steering_from_annotations
from ingressfed.model import Steering, SteeringKind

RANKED = ["eu", "us", "asia"]  # the nearest ranking for some client
ALL = {"eu", "us", "asia"}
NEAREST = Steering()
FAILOVER = Steering(kind=SteeringKind.FAILOVER, order=("us", "asia"))
CANARY = Steering(kind=SteeringKind.WEIGHTED, weights=(("asia", 10), ("us", 90)))


@pytest.mark.parametrize(
    ("steering", "healthy", "kwargs", "expected"),
    [
        (NEAREST, ALL, {}, ["eu", "us", "asia"]),
        (NEAREST, {"us", "asia"}, {}, ["us", "asia", "eu"]),  # unhealthy last
        # failover: the explicit order whoever the client; unlisted clusters after it, nearest first
        (FAILOVER, ALL, {}, ["us", "asia", "eu"]),
        (FAILOVER, {"asia", "eu"}, {}, ["asia", "eu", "us"]),
        (FAILOVER, {"eu"}, {}, ["eu", "us", "asia"]),
        # weighted: the draw picks the first cluster over cumulative weights (asia 0-10, us 10-100)
        (CANARY, ALL, {"draw": 0.05}, ["asia", "eu", "us"]),
        (CANARY, ALL, {"draw": 0.10}, ["us", "eu", "asia"]),
        (CANARY, ALL, {"draw": 0.99}, ["us", "eu", "asia"]),
        (CANARY, {"eu", "asia"}, {"draw": 0.5}, ["asia", "eu", "us"]),  # us down: all weight on asia
        (CANARY, {"eu"}, {"draw": 0.5}, ["eu", "us", "asia"]),  # no weighted cluster up: nearest
        # capacity spill-over: a full cluster goes behind those with room, order otherwise kept
        (Steering(capacity=(("eu", 2),)), ALL, {"in_flight": {"eu": 1}}, ["eu", "us", "asia"]),
        (Steering(capacity=(("eu", 2),)), ALL, {"in_flight": {"eu": 2}}, ["us", "asia", "eu"]),
        (
            Steering(capacity=(("eu", 2), ("us", 1))),
            ALL,
            {"in_flight": {"eu": 5, "us": 1}},
            ["asia", "eu", "us"],
        ),
        (Steering(capacity=(("eu", 2),)), {"eu"}, {"in_flight": {"eu": 9}}, ["eu", "us", "asia"]),
        # spill-over by rate: a cluster at its max requests/s goes behind those with room
        (Steering(rates=(("eu", 100),)), ALL, {"rates": {"eu": 99.5}}, ["eu", "us", "asia"]),
        (Steering(rates=(("eu", 100),)), ALL, {"rates": {"eu": 100.0}}, ["us", "asia", "eu"]),
        (Steering(rates=(("eu", 100),)), ALL, {}, ["eu", "us", "asia"]),  # no rates measured
        (
            Steering(rates=(("eu", 100),), capacity=(("us", 1),)),
            ALL,
            {"rates": {"eu": 150.0}, "in_flight": {"us": 1}},
            ["asia", "eu", "us"],
        ),
        (Steering(rates=(("eu", 1),)), {"eu"}, {"rates": {"eu": 9.0}}, ["eu", "us", "asia"]),
        # cookie affinity: the cookie's cluster first while healthy, else the policy's order
        (Steering(affinity_cookie="c"), ALL, {"affinity": "asia"}, ["asia", "eu", "us"]),
        (Steering(affinity_cookie="c"), {"eu", "us"}, {"affinity": "asia"}, ["eu", "us", "asia"]),
        (Steering(affinity_cookie="c"), ALL, {"affinity": "gone"}, ["eu", "us", "asia"]),
        (Steering(), ALL, {"affinity": "asia"}, ["eu", "us", "asia"]),  # no affinity configured
        (
            Steering(kind=SteeringKind.WEIGHTED, weights=(("us", 1),), affinity_cookie="c"),
            ALL,
            {"affinity": "eu"},
            ["eu", "us", "asia"],
        ),
        # affinity to a full cluster spills like anything else
        (
            Steering(affinity_cookie="c", capacity=(("asia", 1),)),
            ALL,
            {"affinity": "asia", "in_flight": {"asia": 1}},
            ["eu", "us", "asia"],
        ),
    ],
)
def test_steer(steering: Steering, healthy: set[str], kwargs: dict[str, object], expected: list[str]) -> None:
    assert steer(steering, RANKED, healthy=healthy, **kwargs) == expected  # type: ignore[arg-type]


def test_weighted_split_follows_the_weights_over_uniform_draws() -> None:
    firsts = [steer(CANARY, RANKED, healthy=ALL, draw=i / 1000)[0] for i in range(1000)]
    assert (firsts.count("us"), firsts.count("asia")) == (900, 100)


def test_annotations() -> None:
    assert steering_from_annotations({"other": "x"}) is None
    assert steering_from_annotations(
        {
            "federation.ingressfed.io/steering": "weighted",
            "federation.ingressfed.io/weights": "us=90, asia=10",
            "federation.ingressfed.io/capacity": "us=100",
            "federation.ingressfed.io/affinity-cookie": "ingressfed-cluster",
            "federation.ingressfed.io/max-rate": "us=500, asia=20",
        }
    ) == Steering(
        kind=SteeringKind.WEIGHTED,
        weights=(("asia", 10), ("us", 90)),
        capacity=(("us", 100),),
        affinity_cookie="ingressfed-cluster",
        rates=(("asia", 20), ("us", 500)),
    )
    assert steering_from_annotations({"federation.ingressfed.io/max-rate": "us=5"}) == Steering(
        rates=(("us", 5),)
    )
    assert steering_from_annotations({"federation.ingressfed.io/failover-order": "us,eu"}) == Steering(
        kind=SteeringKind.NEAREST, order=("us", "eu")
    )


@pytest.mark.parametrize(
    ("kind", "kwargs", "message"),
    [
        ("fastest", {}, "is not a steering policy; use one of nearest, failover, weighted"),
        ("failover", {}, "failover needs a cluster order"),
        ("weighted", {"weights": "a=0"}, "weighted needs weights with at least one above 0"),
        ("weighted", {"weights": "a:90"}, "must look like cluster=NUMBER"),
        ("weighted", {"weights": "a=1,a=2"}, "cluster 'a' is listed twice"),
        ("nearest", {"capacity": "a=0"}, "capacity must be at least 1"),
        ("nearest", {"rates": "a=0"}, "max rate must be at least 1 request per second"),
        ("nearest", {"rates": "a=fast"}, "max-rate: 'a=fast' must look like cluster=NUMBER"),
        ("nearest", {"affinity_cookie": "bad;cookie"}, "affinity cookie name"),
    ],
)
def test_bad_settings_are_named(kind: str, kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_steering(kind, where="proxy.steering", **kwargs)
    assert message in str(info.value)
    assert str(info.value).startswith("proxy.steering")


@pytest.mark.parametrize(
    ("steering", "kept", "dropped"),
    [
        (Steering(), None, ()),
        (
            Steering(kind=SteeringKind.FAILOVER, order=("a", "b")),
            Steering(kind=SteeringKind.FAILOVER, order=("a", "b")),
            (),
        ),
        (
            Steering(kind=SteeringKind.FAILOVER, order=("a",), capacity=(("a", 5),), affinity_cookie="c"),
            Steering(kind=SteeringKind.FAILOVER, order=("a",)),
            ("capacity", "affinity-cookie"),
        ),
        (
            Steering(kind=SteeringKind.WEIGHTED, weights=(("a", 9), ("b", 1)), affinity_cookie="c"),
            Steering(kind=SteeringKind.WEIGHTED, weights=(("a", 9), ("b", 1))),
            ("affinity-cookie",),
        ),
        (Steering(rates=(("a", 5),)), None, ("max-rate",)),
    ],
)
def test_dns_steering_keeps_what_dns_can_say(
    steering: Steering, kept: Steering | None, dropped: tuple[str, ...]
) -> None:
    assert dns_steering(steering) == (kept, dropped)
