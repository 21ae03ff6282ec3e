""" "Where would a client go": one client address through the DNS and proxy decisions (pure).

The adapter locates the address (GeoIP) and asks the DNS answer of whichever
server holds the zone; this module ranks the clusters for the proxy with
``geo.select.rank``, the function the proxy itself uses, and, where no DNS
server runs in this process, answers from the published records the same way
the embedded server does (nearest routed set, CNAMEs followed inside the zone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from geo.select import Candidate, rank
from ingressfed.core.health import cluster_serves
from ingressfed.model import Cluster, Location, RecordSet, RecordType, Route

__all__ = ["ProxyChoice", "answer_from_records", "proxy_choice"]

_MAX_CNAME_HOPS = 8


@dataclass(frozen=True, slots=True)
class ProxyChoice:
    host: str
    order: tuple[str, ...]  # clusters in the order the proxy tries them
    healthy: tuple[str, ...]  # the subset that may receive traffic now

    @property
    def chosen(self) -> str | None:
        return next((n for n in self.order if n in self.healthy), None)


def proxy_choice(
    host: str,
    client: Location | None,
    routes: Sequence[Route],
    clusters: Sequence[Cluster],
    *,
    default_order: Sequence[str] = (),
) -> ProxyChoice | None:
    """The proxy's ranking of the clusters serving ``host`` (its ``/`` route, else its first).

    None when no route has that host.
    """
    host = host.rstrip(".").lower()
    matching = [r for r in routes if r.host == host]
    if not matching:
        return None
    route = next((r for r in matching if r.path == "/"), matching[0])
    by_name = {c.name: c for c in clusters}
    names = sorted({b.cluster for b in route.backends})
    candidates = [
        Candidate(
            n,
            by_name[n].location if n in by_name else None,
            n in by_name and cluster_serves(by_name[n]),
            by_name[n].weight if n in by_name else 100,
        )
        for n in names
    ]
    order = rank(client, candidates, default_order=default_order)
    return ProxyChoice(host, tuple(order), tuple(c.name for c in candidates if c.healthy))


def _sets(records: Sequence[RecordSet], name: str) -> list[RecordSet]:
    return [
        r for r in records if r.name == name and r.type in (RecordType.A, RecordType.AAAA, RecordType.CNAME)
    ]


def _pick(sets: list[RecordSet], client: Location | None, default_order: Sequence[str]) -> list[RecordSet]:
    routed = [r for r in sets if r.routing is not None]
    if not routed:
        return sets
    candidates = [
        Candidate(r.set_identifier or "", r.routing.location if r.routing else None, True) for r in routed
    ]
    first = rank(client, candidates, default_order=default_order)[0]
    return [r for r in routed if r.set_identifier == first]


def answer_from_records(
    records: Sequence[RecordSet], name: str, client: Location | None, *, default_order: Sequence[str] = ()
) -> list[str]:
    """The answer chain for ``name`` as ``TYPE value`` strings (CNAMEs first, then addresses)."""
    out: list[str] = []
    current = name.rstrip(".").lower()
    for _ in range(_MAX_CNAME_HOPS):
        chosen = _pick(_sets(records, current), client, default_order)
        cname = next((r for r in chosen if r.type is RecordType.CNAME), None)
        if cname is None:
            for r in sorted(chosen, key=lambda r: r.type.value):
                out += [f"{r.type.value} {v}" for v in r.values]
            return out
        out.append(f"CNAME {cname.values[0]}")
        current = cname.values[0]
    return out
