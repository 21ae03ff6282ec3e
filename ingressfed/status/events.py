"""The recent-events timeline: what changed between two pictures of the federation (pure).

Events are derived, never recorded by the parts that act: the controller's
reconcile outcome (clusters before and after, the DNS changes applied) is all
that is needed, so the timeline cannot disagree with what DNS and the proxy did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from geo.select import Candidate, rank
from ingressfed.core.health import cluster_serves
from ingressfed.model import ChangeAction, Changes, Cluster, Edge

__all__ = ["Event", "EventKind", "cluster_events", "dns_events", "edge_events"]

# How many record names one DNS event lists before saying "and N more".
_NAMES_SHOWN = 3


class EventKind(StrEnum):
    JOINED = "ClusterJoined"
    REMOVED = "ClusterRemoved"
    STATUS = "ClusterStatus"  # API server Ready / NotReady / Offline
    DATA_PLANE_DOWN = "DataPlaneDown"
    DATA_PLANE_UP = "DataPlaneUp"
    FAILOVER = "Failover"  # a cluster stopped serving: its clients go elsewhere
    RECOVERED = "Recovered"  # a cluster serves again
    EDGE_JOINED = "EdgeJoined"
    EDGE_REMOVED = "EdgeRemoved"
    EDGE_STALE = "EdgeStale"  # stopped reporting within the health window: its votes no longer count
    EDGE_LIVE = "EdgeLive"
    DNS_APPLIED = "DnsChangeApplied"
    DNS_FAILED = "DnsChangeFailed"


@dataclass(frozen=True, slots=True)
class Event:
    time: float  # unix seconds
    kind: EventKind
    object: str  # the cluster or record name the event is about
    message: str
    warning: bool = False


def _next_choice(lost: Cluster, clusters: Sequence[Cluster], default_order: Sequence[str]) -> str | None:
    others = [
        Candidate(c.name, c.location, cluster_serves(c), c.weight) for c in clusters if c.name != lost.name
    ]
    order = rank(lost.location, others, default_order=default_order)
    healthy = {c.name for c in others if c.healthy}
    return next((n for n in order if n in healthy), None)


def cluster_events(
    before: Mapping[str, Cluster],
    after: Sequence[Cluster],
    *,
    now: float,
    default_order: Sequence[str] = (),
) -> list[Event]:
    """Events for every cluster whose membership, status, data plane or serving state changed."""
    out: list[Event] = []
    current = {c.name: c for c in after}
    for name in sorted(set(before) - set(current)):
        out.append(Event(now, EventKind.REMOVED, name, f"cluster {name} left the federation"))
    for c in sorted(after, key=lambda c: c.name):
        prev = before.get(c.name)
        if prev is None:
            out.append(Event(now, EventKind.JOINED, c.name, f"cluster {c.name} joined ({c.status.value})"))
            continue
        if prev.status is not c.status:
            out.append(
                Event(
                    now,
                    EventKind.STATUS,
                    c.name,
                    f"cluster {c.name} went {c.status.value} (was {prev.status.value})",
                    warning=c.status.value != "Ready",
                )
            )
        if prev.data_plane_healthy is not False and c.data_plane_healthy is False:
            out.append(
                Event(now, EventKind.DATA_PLANE_DOWN, c.name, f"data plane of {c.name} fails", warning=True)
            )
        elif prev.data_plane_healthy is False and c.data_plane_healthy is not False:
            out.append(Event(now, EventKind.DATA_PLANE_UP, c.name, f"data plane of {c.name} answers again"))
        served, serves = cluster_serves(prev), cluster_serves(c)
        if served and not serves:
            to = _next_choice(c, after, default_order)
            where = f"its clients now go to {to}" if to else "no healthy cluster is left"
            out.append(
                Event(now, EventKind.FAILOVER, c.name, f"failover: {c.name} stopped serving; {where}", True)
            )
        elif serves and not served:
            out.append(Event(now, EventKind.RECOVERED, c.name, f"{c.name} serves again"))
    return out


def edge_events(before: Mapping[str, Edge], after: Sequence[Edge], *, now: float) -> list[Event]:
    """Events for edges that appeared, went away, went stale or came back."""
    out: list[Event] = []
    current = {e.name: e for e in after}
    for name in sorted(set(before) - set(current)):
        out.append(Event(now, EventKind.EDGE_REMOVED, name, f"edge {name} is no longer declared"))
    for e in sorted(after, key=lambda e: e.name):
        prev = before.get(e.name)
        if prev is None:
            state = "live" if e.live else "stale"
            out.append(Event(now, EventKind.EDGE_JOINED, e.name, f"edge {e.name} in {e.cluster} ({state})"))
        elif prev.live and not e.live:
            message = f"edge {e.name} stopped reporting: its addresses leave DNS, its votes no longer count"
            out.append(Event(now, EventKind.EDGE_STALE, e.name, message, warning=True))
        elif e.live and not prev.live:
            out.append(Event(now, EventKind.EDGE_LIVE, e.name, f"edge {e.name} reports again"))
    return out


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_NAMES_SHOWN])
    more = len(names) - _NAMES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def dns_events(
    changes: Changes, failed: Mapping[str, str], *, now: float, error: str | None = None
) -> list[Event]:
    """One event for the changes that went through, one for those the provider refused."""
    out: list[Event] = []
    applied = [c for c in changes.items if c.record.name not in failed]
    if applied:
        counts = {a: sum(1 for c in applied if c.action is a) for a in ChangeAction}
        summary = ", ".join(f"{n} {a.value.lower()}" for a, n in counts.items() if n)
        names = sorted({c.record.name for c in applied})
        out.append(
            Event(now, EventKind.DNS_APPLIED, names[0], f"DNS change applied ({summary}): {_names(names)}")
        )
    if failed:
        names = sorted(failed)
        first = failed[names[0]]
        out.append(
            Event(
                now, EventKind.DNS_FAILED, names[0], f"DNS change refused for {_names(names)}: {first}", True
            )
        )
    elif error is not None and not applied and changes:
        out.append(Event(now, EventKind.DNS_FAILED, "", f"DNS change not applied: {error}", True))
    return out
