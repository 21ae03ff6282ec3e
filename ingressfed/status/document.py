"""The read API's documents: what ``/v1/status`` and ``/v1/status/<resource>`` answer (pure).

Everything is built from one :class:`StatusInputs` value: the feed view the
data planes follow (the same versioned state), plus what the status side
tracks itself (last transitions, recent events, request rates) and the extra
resources other areas register (``edges``, ``certificates``: a name and a
function returning JSON-ready items). Names are passed through as data; the
page escapes them when it renders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from ingressfed.feed.view import FeedView
from ingressfed.model import Cluster, Edge, RecordSet, Route
from ingressfed.status.events import Event
from ingressfed.status.health import cluster_health, cluster_reasons
from ingressfed.status.rates import ClusterRate
from ingressfed.status.regions import Grid

__all__ = [
    "FORMAT",
    "RESOURCES",
    "ClusterItem",
    "EdgeDetail",
    "EdgeItem",
    "StatusInputs",
    "cluster_item",
    "edge_item",
    "event_item",
    "overview",
    "record_item",
    "resource_items",
    "route_item",
]

FORMAT = "ingressfed.status/v1"

# The page lists at most this many route hosts for the "where would a client go" box.
_MAX_HOSTS = 500


class LocationWire(TypedDict):
    lat: float
    lon: float


class ClusterItem(TypedDict):
    name: str
    region: str
    zone: str
    location: LocationWire | None
    weight: int
    status: str
    dataPlaneHealthy: bool | None
    health: str
    reasons: list[str]
    lastTransition: float | None
    requestsPerSecond: float | None
    errorRate: float | None


class EdgeItem(TypedDict):
    name: str
    cluster: str
    region: str
    location: LocationWire | None
    addresses: list[str]
    live: bool
    status: str
    health: str
    reasons: list[str]
    lastTransition: float | None
    lastReport: float | None
    firstReport: float | None
    reports: int | None
    backendsUp: int | None
    backends: int | None


@dataclass(frozen=True, slots=True)
class EdgeDetail:
    """What the controller's edge registry knows beyond the snapshot's ``Edge``."""

    status: str  # Live | Pending (not heard from yet, in its grace window) | Stale | Unreachable
    last_report: float | None  # unix seconds
    reports: int
    backends_up: int
    backends: int
    first_report: float | None = None  # unix seconds; the AGE of ``get edges``
    reason: str = ""  # why a vote took it out (Unreachable: its peers' count)


class BackendItem(TypedDict):
    cluster: str
    address: str


class RouteItem(TypedDict):
    host: str
    path: str
    pathType: str
    backends: list[BackendItem]


class RecordItem(TypedDict):
    name: str
    type: str
    ttl: int
    values: list[str]
    setIdentifier: str | None
    cluster: str | None


class EventItem(TypedDict):
    time: float
    kind: str
    object: str
    message: str
    warning: bool


@dataclass(frozen=True, slots=True)
class StatusInputs:
    """One instant of everything the status side shows; ``now`` is unix seconds."""

    now: float
    role: str  # "controller" or "proxy"
    version: int  # the status version (changes with the feed view, events and extras)
    view: FeedView | None
    transitions: Mapping[str, float] = field(default_factory=dict)
    rates: Mapping[str, ClusterRate] | None = None  # None: no proxy metrics in this process
    events: Sequence[Event] = ()
    grid: Grid | None = None
    edges: Sequence[Edge] = ()
    edge_details: Mapping[str, EdgeDetail] = field(default_factory=dict)
    extras: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)


def cluster_item(
    c: Cluster, *, transition: float | None, rate: ClusterRate | None, metered: bool
) -> ClusterItem:
    return {
        "name": c.name,
        "region": c.region,
        "zone": c.zone,
        "location": None if c.location is None else {"lat": c.location.lat, "lon": c.location.lon},
        "weight": c.weight,
        "status": c.status.value,
        "dataPlaneHealthy": c.data_plane_healthy,
        "health": cluster_health(c).value,
        "reasons": cluster_reasons(c),
        "lastTransition": transition,
        # With proxy metrics in this process, a cluster that served nothing has a rate of 0.
        "requestsPerSecond": rate.requests_per_second if rate else (0.0 if metered else None),
        "errorRate": rate.error_rate if rate else None,
    }


def edge_item(e: Edge, *, transition: float | None, detail: EdgeDetail | None) -> EdgeItem:
    status = detail.status if detail is not None else ("Live" if e.live else "Stale")
    reasons: list[str] = []
    if not e.live and status == "Unreachable" and detail is not None:
        reasons.append(f"Unreachable: {detail.reason}; its addresses left DNS")
    elif not e.live:
        reasons.append("Stale: no health report within the window; its addresses left DNS")
    elif status == "Pending":
        reasons.append("Pending: not heard from yet (start-up grace)")
    if detail is not None and detail.backends and detail.backends_up < detail.backends:
        reasons.append(
            f"BackendsDown: it sees {detail.backends - detail.backends_up} of {detail.backends} down"
        )
    health = "unhealthy" if not e.live else ("degraded" if status == "Pending" else "healthy")
    return {
        "name": e.name,
        "cluster": e.cluster,
        "region": e.region,
        "location": None if e.location is None else {"lat": e.location.lat, "lon": e.location.lon},
        "addresses": list(e.addresses),
        "live": e.live,
        "status": status,
        "health": health,
        "reasons": reasons,
        "lastTransition": transition,
        "lastReport": detail.last_report if detail else None,
        "firstReport": detail.first_report if detail else None,
        "reports": detail.reports if detail else None,
        "backendsUp": detail.backends_up if detail else None,
        "backends": detail.backends if detail else None,
    }


def route_item(r: Route) -> RouteItem:
    return {
        "host": r.host,
        "path": r.path,
        "pathType": r.path_type,
        "backends": [{"cluster": b.cluster, "address": f"{b.host}:{b.port}"} for b in r.backends],
    }


def record_item(r: RecordSet) -> RecordItem:
    return {
        "name": r.name,
        "type": r.type.value,
        "ttl": r.ttl,
        "values": list(r.values),
        "setIdentifier": r.set_identifier,
        "cluster": r.routing.cluster if r.routing else None,
    }


def event_item(e: Event) -> EventItem:
    return {
        "time": e.time,
        "kind": e.kind.value,
        "object": e.object,
        "message": e.message,
        "warning": e.warning,
    }


def _clusters(inputs: StatusInputs) -> list[Any]:
    view = inputs.view
    if view is None:
        return []
    rates = inputs.rates or {}
    return [
        cluster_item(
            c,
            transition=inputs.transitions.get(c.name),
            rate=rates.get(c.name),
            metered=inputs.rates is not None,
        )
        for c in view.clusters
    ]


def _edges(inputs: StatusInputs) -> list[Any]:
    return [
        edge_item(
            e, transition=inputs.transitions.get("edge/" + e.name), detail=inputs.edge_details.get(e.name)
        )
        for e in inputs.edges
    ]


def _routes(inputs: StatusInputs) -> list[Any]:
    return [route_item(r) for r in inputs.view.routes] if inputs.view else []


def _records(inputs: StatusInputs) -> list[Any]:
    return [record_item(r) for r in inputs.view.records] if inputs.view else []


def _events(inputs: StatusInputs) -> list[Any]:
    return [event_item(e) for e in inputs.events]


# The resources every status endpoint serves; others come from ``StatusInputs.extras``.
RESOURCES: dict[str, Callable[[StatusInputs], list[Any]]] = {
    "clusters": _clusters,
    "edges": _edges,
    "routes": _routes,
    "records": _records,
    "events": _events,
}


def resource_items(inputs: StatusInputs, resource: str) -> list[Any] | None:
    """The items of one resource; None when this endpoint does not know it."""
    builder = RESOURCES.get(resource)
    if builder is not None:
        return builder(inputs)
    extra = inputs.extras.get(resource)
    return None if extra is None else [dict(item) for item in extra]


def resource_names(inputs: StatusInputs) -> list[str]:
    return sorted({*RESOURCES, *inputs.extras})


def overview(inputs: StatusInputs) -> dict[str, Any]:
    """The page's document: everything but the records themselves (a zone may hold 100k sets)."""
    view = inputs.view
    grid = inputs.grid
    hosts = sorted({r.host for r in view.routes})[:_MAX_HOSTS] if view else []
    return {
        "format": FORMAT,
        "role": inputs.role,
        "version": inputs.version,
        "generatedAt": inputs.now,
        "feed": None if view is None else {"version": view.version, "epoch": view.epoch},
        "zone": view.zone if view else "",
        "clusters": _clusters(inputs),
        "edges": _edges(inputs),
        "events": _events(inputs),
        "grid": None
        if grid is None
        else {"step": grid.step, "rows": grid.rows, "cols": grid.cols, "cells": list(grid.cells)},
        "hosts": hosts,
        "counts": {
            "routes": len(view.routes) if view else 0,
            "records": len(view.records) if view else 0,
            "edges": len(inputs.edges),
            **{name: len(items) for name, items in inputs.extras.items()},
        },
        "resources": resource_names(inputs),
    }
