from __future__ import annotations

import pytest

from geo.regions import region_location
from geo.select import Candidate, rank
from ingressfed.model import Location

US = region_location("us-east1")
EU = region_location("europe-west1")
ASIA = region_location("asia-east1")

NEW_YORK = Location(40.71, -74.01)
PARIS = Location(48.86, 2.35)
TOKYO = Location(35.68, 139.69)


def three(*, us: bool = True, eu: bool = True, asia: bool = True) -> list[Candidate]:
    return [
        Candidate("cluster-asia-east1-a", ASIA, asia),
        Candidate("cluster-europe-west1-b", EU, eu),
        Candidate("cluster-us-east1-b", US, us),
    ]


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        (NEW_YORK, ["cluster-us-east1-b", "cluster-europe-west1-b", "cluster-asia-east1-a"]),
        (PARIS, ["cluster-europe-west1-b", "cluster-us-east1-b", "cluster-asia-east1-a"]),
        (TOKYO, ["cluster-asia-east1-a", "cluster-europe-west1-b", "cluster-us-east1-b"]),
    ],
)
def test_nearest_first(client: Location, expected: list[str]) -> None:
    assert rank(client, three()) == expected
    assert rank(client, list(reversed(three()))) == expected  # input order does not matter


@pytest.mark.parametrize(
    ("client", "health", "expected"),
    [
        (PARIS, {"eu": False}, ["cluster-us-east1-b", "cluster-asia-east1-a", "cluster-europe-west1-b"]),
        (TOKYO, {"asia": False}, ["cluster-europe-west1-b", "cluster-us-east1-b", "cluster-asia-east1-a"]),
        (
            NEW_YORK,
            {"us": False, "eu": False},
            ["cluster-asia-east1-a", "cluster-us-east1-b", "cluster-europe-west1-b"],
        ),
        (
            NEW_YORK,
            {"us": False, "eu": False, "asia": False},
            ["cluster-us-east1-b", "cluster-europe-west1-b", "cluster-asia-east1-a"],
        ),
    ],
)
def test_unhealthy_last_even_when_nearest(
    client: Location, health: dict[str, bool], expected: list[str]
) -> None:
    assert rank(client, three(**health)) == expected


def test_weight_breaks_ties_between_equally_near() -> None:
    # Two clusters in the same metro area (a few km apart): the heavier wins.
    a = Candidate("a", Location(50.11, 8.68), True, weight=100)
    b = Candidate("b", Location(50.12, 8.70), True, weight=300)
    far = Candidate("far", US, True, weight=1000)
    assert rank(PARIS, [a, b, far]) == ["b", "a", "far"]


def test_weight_does_not_beat_distance() -> None:
    near = Candidate("near", EU, True, weight=1)
    far = Candidate("far", US, True, weight=1000)
    assert rank(PARIS, [far, near]) == ["near", "far"]


def test_equal_distance_and_weight_falls_back_to_name() -> None:
    same = Location(10, 10)
    assert rank(PARIS, [Candidate("b", same, True), Candidate("a", same, True)]) == ["a", "b"]


def test_candidate_without_location_goes_after_located_ones() -> None:
    cands = [Candidate("nowhere", None, True, weight=1000), *three()]
    assert rank(TOKYO, cands)[-1] == "nowhere"
    # ...but still before unhealthy ones
    cands = [Candidate("nowhere", None, True), *three(asia=False)]
    assert rank(TOKYO, cands) == [
        "cluster-europe-west1-b",
        "cluster-us-east1-b",
        "nowhere",
        "cluster-asia-east1-a",
    ]


def test_unknown_client_uses_default_order_then_name() -> None:
    order = ["cluster-us-east1-b", "cluster-asia-east1-a"]
    assert rank(None, three(), default_order=order) == [
        "cluster-us-east1-b",
        "cluster-asia-east1-a",
        "cluster-europe-west1-b",
    ]
    assert rank(None, three()) == ["cluster-asia-east1-a", "cluster-europe-west1-b", "cluster-us-east1-b"]
    # health still comes first, and names in default_order that are not candidates are ignored
    assert rank(None, three(us=False), default_order=["gone", *order]) == [
        "cluster-asia-east1-a",
        "cluster-europe-west1-b",
        "cluster-us-east1-b",
    ]


def test_ipv6_client_located_through_lookup_ranks_the_same(city_db: object) -> None:
    from geo.lookup import GeoLookup

    with GeoLookup(str(city_db)) as lookup:
        v6 = lookup.locate("2400:cb00::1234")
        v4 = lookup.locate("202.12.27.33")
    assert v6 is not None and v4 is not None
    assert rank(v6.location, three()) == rank(v4.location, three())
    assert rank(v6.location, three())[0] == "cluster-asia-east1-a"


def test_empty_candidates() -> None:
    assert rank(PARIS, []) == []
    assert rank(None, [], default_order=["x"]) == []
