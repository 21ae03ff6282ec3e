"""The one place that decides which cluster a client should try first (pure).

Order, most important first:

1. healthy before unhealthy (an unhealthy cluster is only ever a last resort);
1b. ``prefer`` (an edge's own cluster) first among the healthy, whoever the
   client: an edge DNS chose for a client sends it to the cluster beside it
   rather than hairpinning through another region;
2. for a client with a known location: nearer first, where distances are
   compared in buckets of :data:`DISTANCE_BUCKET_KM` (50 km) so that clusters
   in the same metro area count as *equally near*; candidates without a
   location come after every located one;
3. between equally near candidates: higher weight first;
4. name, so the order is total and deterministic.

For a client with unknown location the distance step is replaced by the
configured ``default_order`` (names in that order), then the remaining
candidates by name.

Buckets rather than "within 50 km of each other" keep the comparison
transitive: with a tolerance, A~B and B~C would not imply A~C and sorting
would depend on input order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from geo.distance import great_circle_km
from ingressfed.model import Location

__all__ = ["DISTANCE_BUCKET_KM", "Candidate", "rank"]

DISTANCE_BUCKET_KM = 50.0


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str
    location: Location | None
    healthy: bool
    weight: int = 100


def _bucket(client: Location, location: Location | None) -> float:
    if location is None:
        return math.inf
    return float(math.floor(great_circle_km(client, location) / DISTANCE_BUCKET_KM))


def rank(
    client: Location | None,
    candidates: Sequence[Candidate],
    *,
    default_order: Sequence[str] = (),
    prefer: str | None = None,
) -> list[str]:
    """Names of ``candidates`` in the order to try them."""
    if client is None:
        position: dict[str, int] = {}
        for i, name in enumerate(default_order):
            position.setdefault(name, i)
        unlisted = len(position)

        def unknown_key(c: Candidate) -> tuple[bool, bool, int, str]:
            return (not c.healthy, c.name != prefer, position.get(c.name, unlisted), c.name)

        return [c.name for c in sorted(candidates, key=unknown_key)]

    def known_key(c: Candidate) -> tuple[bool, bool, float, int, str]:
        return (not c.healthy, c.name != prefer, _bucket(client, c.location), -c.weight, c.name)

    return [c.name for c in sorted(candidates, key=known_key)]
