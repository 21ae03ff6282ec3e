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
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from geo.distance import great_circle_km
from ingressfed.model import Location, Steering, SteeringKind

__all__ = [
    "AFFINITY_ANNOTATION",
    "CAPACITY_ANNOTATION",
    "DISTANCE_BUCKET_KM",
    "ORDER_ANNOTATION",
    "STEERING_ANNOTATION",
    "WEIGHTS_ANNOTATION",
    "Candidate",
    "parse_steering",
    "rank",
    "steer",
    "steering_from_annotations",
]

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


# --- steering policies -------------------------------------------------------------------------
# ``rank`` above is the "nearest" policy. ``steer`` turns a nearest ranking into the order a
# route's policy asks for; the proxy calls it per request, and a DNS server can call it per query
# (failover and affinity-free weighted choices are expressible in DNS answers; capacity and
# cookies are not, and DNS keeps the nearest ranking for them).

STEERING_ANNOTATION = "federation.ingressfed.io/steering"
ORDER_ANNOTATION = "federation.ingressfed.io/failover-order"
WEIGHTS_ANNOTATION = "federation.ingressfed.io/weights"
CAPACITY_ANNOTATION = "federation.ingressfed.io/capacity"
RATE_ANNOTATION = "federation.ingressfed.io/max-rate"
AFFINITY_ANNOTATION = "federation.ingressfed.io/affinity-cookie"


def steer(
    steering: Steering,
    ranked: Sequence[str],
    *,
    healthy: Collection[str],
    draw: float = 0.0,
    in_flight: Mapping[str, int] | None = None,
    affinity: str | None = None,
    rates: Mapping[str, float] | None = None,
) -> list[str]:
    """The order to try clusters for one request under ``steering``.

    ``ranked`` is the nearest ranking (``rank``), ``healthy`` the clusters that may take traffic,
    ``draw`` a uniform number in [0, 1) chosen by the caller for a weighted split, ``in_flight``
    the requests this proxy has open per cluster (capacity spill-over), ``rates`` the requests per
    second this proxy sends each cluster now (spill-over by rate), ``affinity`` the cluster named
    by the client's affinity cookie. Unhealthy clusters always come last.
    """
    position = {name: i for i, name in enumerate(ranked)}
    if steering.kind is SteeringKind.FAILOVER:
        priority = {name: i for i, name in enumerate(steering.order)}
        base = sorted(ranked, key=lambda n: (n not in healthy, priority.get(n, len(priority)), position[n]))
    elif steering.kind is SteeringKind.WEIGHTED:
        base = list(ranked)
        chosen = _weighted_choice(steering.weights, healthy, draw)
        if chosen is not None and chosen in position:
            base.remove(chosen)
            base.insert(0, chosen)
    else:
        base = list(ranked)
    if steering.affinity_cookie and affinity is not None and affinity in healthy and affinity in position:
        base.remove(affinity)
        base.insert(0, affinity)
    limits = dict(steering.capacity) if in_flight is not None else {}
    max_rates = dict(steering.rates) if rates is not None else {}
    if limits or max_rates:
        busy = in_flight if in_flight is not None else {}
        now = rates if rates is not None else {}

        def full(name: str) -> bool:
            limit = limits.get(name)
            if limit is not None and busy.get(name, 0) >= limit:
                return True
            max_rate = max_rates.get(name)
            return max_rate is not None and now.get(name, 0.0) >= max_rate

        # Stable: the order among clusters with room (and among full ones) is kept.
        base.sort(key=lambda n: (n not in healthy, full(n)))
    else:
        base.sort(key=lambda n: n not in healthy)
    return base


def dns_steering(steering: Steering) -> tuple[Steering | None, tuple[str, ...]]:
    """The part of ``steering`` DNS answers can follow for every resolver, and the parts they
    cannot (a proxy applies those per request): a failover order and a weighted split are kept
    (whether the DNS provider can write weighted answers is core.desired's to say); capacity,
    max-rate and affinity cookies are not. None: no DNS policy (every serving cluster)."""
    dropped = tuple(
        what
        for what, on in (
            ("capacity", bool(steering.capacity)),
            ("max-rate", bool(steering.rates)),
            ("affinity-cookie", bool(steering.affinity_cookie)),
        )
        if on
    )
    if steering.kind is SteeringKind.FAILOVER:
        return Steering(kind=SteeringKind.FAILOVER, order=steering.order), dropped
    if steering.kind is SteeringKind.WEIGHTED:
        return Steering(kind=SteeringKind.WEIGHTED, weights=steering.weights), dropped
    return None, dropped


def _weighted_choice(weights: Sequence[tuple[str, int]], healthy: Collection[str], draw: float) -> str | None:
    usable = [(name, w) for name, w in weights if w > 0 and name in healthy]
    total = sum(w for _, w in usable)
    if total == 0:
        return None
    point = draw * total
    for name, weight in usable:
        if point < weight:
            return name
        point -= weight
    return usable[-1][0]


def _pairs(text: str, what: str) -> tuple[tuple[str, int], ...]:
    pairs: dict[str, int] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, eq, number = item.partition("=")
        name = name.strip()
        if not eq or not name or not number.strip().isdigit():
            raise ValueError(
                f"{what}: {item!r} must look like cluster=NUMBER (e.g. cluster-a=90,cluster-b=10)"
            )
        if name in pairs:
            raise ValueError(f"{what}: cluster {name!r} is listed twice")
        pairs[name] = int(number)
    return tuple(sorted(pairs.items()))


def parse_steering(
    kind: str,
    *,
    order: str = "",
    weights: str = "",
    capacity: str = "",
    affinity_cookie: str = "",
    rates: str = "",
    where: str = "steering",
    order_field: str = "order",
    weights_field: str = "weights",
) -> Steering:
    """A policy from its textual settings (annotations or config); ValueError names the field
    (``order_field``/``weights_field``: where the order and the weights are set)."""
    try:
        steering_kind = SteeringKind(kind.strip().lower() or "nearest")
    except ValueError:
        choices = ", ".join(k.value for k in SteeringKind)
        raise ValueError(f"{where}: {kind!r} is not a steering policy; use one of {choices}") from None
    names = tuple(n.strip() for n in order.split(",") if n.strip())
    split = _pairs(weights, f"{where} weights")
    limits = _pairs(capacity, f"{where} capacity")
    max_rates = _pairs(rates, f"{where} max-rate")
    if steering_kind is SteeringKind.FAILOVER and not names:
        raise ValueError(
            f"{where}: failover needs a cluster order in {order_field} (e.g. cluster-a,cluster-b)"
        )
    if steering_kind is SteeringKind.WEIGHTED and not any(w > 0 for _, w in split):
        raise ValueError(
            f"{where}: weighted needs weights with at least one above 0 in {weights_field} (e.g. a=90,b=10)"
        )
    if any(limit == 0 for _, limit in limits):
        raise ValueError(f"{where} capacity: a cluster's capacity must be at least 1 request in flight")
    if any(limit == 0 for _, limit in max_rates):
        raise ValueError(f"{where} max-rate: a cluster's max rate must be at least 1 request per second")
    cookie = affinity_cookie.strip()
    if cookie and not all(c.isalnum() or c in "-_." for c in cookie):
        raise ValueError(f"{where}: affinity cookie name {cookie!r} may hold letters, digits, '-', '_', '.'")
    return Steering(
        kind=steering_kind,
        order=names,
        weights=split,
        capacity=limits,
        affinity_cookie=cookie,
        rates=max_rates,
    )


def steering_from_annotations(annotations: Mapping[str, str]) -> Steering | None:
    """An Ingress's policy from its annotations; None when it sets none (the default applies)."""
    keys = (
        STEERING_ANNOTATION,
        ORDER_ANNOTATION,
        WEIGHTS_ANNOTATION,
        CAPACITY_ANNOTATION,
        AFFINITY_ANNOTATION,
        RATE_ANNOTATION,
    )
    if not any(k in annotations for k in keys):
        return None
    return parse_steering(
        annotations.get(STEERING_ANNOTATION, "nearest"),
        order=annotations.get(ORDER_ANNOTATION, ""),
        weights=annotations.get(WEIGHTS_ANNOTATION, ""),
        capacity=annotations.get(CAPACITY_ANNOTATION, ""),
        affinity_cookie=annotations.get(AFFINITY_ANNOTATION, ""),
        rates=annotations.get(RATE_ANNOTATION, ""),
        where=f"metadata.annotations[{STEERING_ANNOTATION}]",
        order_field=f"metadata.annotations[{ORDER_ANNOTATION}]",
        weights_field=f"metadata.annotations[{WEIGHTS_ANNOTATION}]",
    )
