"""An edge's own cluster first while healthy, then the nearest healthy (steering table, pure)."""

from __future__ import annotations

import pytest

from geo.select import Candidate, rank
from ingressfed.model import Location

US, EU, ASIA = Location(33.2, -80.0), Location(50.4, 3.8), Location(24.0, 121.0)
PARIS = Location(48.9, 2.3)


def clusters(**healthy: bool) -> list[Candidate]:
    return [
        Candidate("us", US, healthy.get("us", True)),
        Candidate("eu", EU, healthy.get("eu", True)),
        Candidate("asia", ASIA, healthy.get("asia", True)),
    ]


@pytest.mark.parametrize(
    ("case", "client", "healthy", "prefer", "first_two"),
    [
        ("own cluster healthy, nearby client", PARIS, {}, "eu", ["eu", "us"]),
        ("own cluster healthy, far client: no hairpin", PARIS, {}, "asia", ["asia", "eu"]),
        ("own cluster down: nearest healthy", PARIS, {"asia": False}, "asia", ["eu", "us"]),
        ("own cluster down, unknown client: default order", None, {"eu": False}, "eu", ["us", "asia"]),
        ("unknown client: own cluster first", None, {}, "asia", ["asia", "us"]),
        ("no preference: nearest", PARIS, {}, None, ["eu", "us"]),
    ],
)
def test_prefer_own_cluster(
    case: str, client: Location | None, healthy: dict[str, bool], prefer: str | None, first_two: list[str]
) -> None:
    order = rank(client, clusters(**healthy), default_order=("us", "asia", "eu"), prefer=prefer)
    assert order[:2] == first_two, case
