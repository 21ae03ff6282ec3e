"""The feed's value and its JSON wire form (pure).

``FeedView`` is what a data plane needs to serve without the controller:
the zone's record sets, the proxy routes and the member clusters with their
locations and health. ``version`` orders views published by one controller
instance (``epoch``); a follower compares versions only within an epoch.

Decoding is strict: every field is type-checked and a bad document raises
:class:`FeedFormatError` naming the field (``records[3].ttl``) and the rule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, NotRequired, TypedDict, TypeVar

from geo.select import parse_steering
from ingressfed.errors import IngressfedError
from ingressfed.gateway.table import ServedRule
from ingressfed.gateway.wire import RulesFormatError, rules_from_wire, rules_to_wire
from ingressfed.model import (
    Backend,
    Cluster,
    ClusterStatus,
    Location,
    RecordSet,
    RecordType,
    Route,
    Routing,
    Steering,
)

__all__ = [
    "FORMAT",
    "FeedFormatError",
    "FeedView",
    "decode_view",
    "encode_view",
    "view_from_wire",
    "view_to_wire",
]

FORMAT = "ingressfed.feed/v1"


class FeedFormatError(IngressfedError, ValueError):
    """A feed document does not have the wire form; the message names the field."""


# ------------------------------------------------------------------ wire form


class LocationWire(TypedDict):
    lat: float
    lon: float


class RoutingWire(TypedDict):
    cluster: str
    region: str
    location: LocationWire | None
    weight: int
    continent: str | None
    country: str | None
    weighted: NotRequired[bool]  # present (true) only on a weighted share; absent: false


class RecordWire(TypedDict):
    name: str
    type: str
    ttl: int
    values: list[str]
    setIdentifier: NotRequired[str | None]
    routing: NotRequired[RoutingWire | None]


class BackendWire(TypedDict):
    cluster: str
    host: str
    port: int


class SteeringWire(TypedDict):
    """A route's steering policy in the annotation syntax (geo.select.parse_steering)."""

    kind: str
    order: str
    weights: str
    capacity: str
    affinityCookie: str
    maxRate: NotRequired[str]


class RouteWire(TypedDict):
    host: str
    path: str
    pathType: str
    backends: list[BackendWire]
    steering: NotRequired[SteeringWire]  # absent: the proxy's default policy
    httpsRedirect: NotRequired[bool]  # absent: the proxy's proxy.tls.redirectHttp


class ClusterWire(TypedDict):
    name: str
    region: str
    zone: str
    location: LocationWire | None
    weight: int
    status: str
    dataPlaneHealthy: bool | None


class ViewWire(TypedDict):
    format: str
    epoch: str
    version: int
    zone: str
    records: list[RecordWire]
    routes: list[RouteWire]
    clusters: list[ClusterWire]
    gatewayRules: NotRequired[dict[str, Any]]  # HTTPRoute rules (ingressfed.gateway.wire)


# ---------------------------------------------------------------------- value


@dataclass(frozen=True, slots=True)
class FeedView:
    version: int
    records: tuple[RecordSet, ...]
    routes: tuple[Route, ...]
    clusters: tuple[Cluster, ...]
    zone: str
    epoch: str = ""
    gateway_rules: tuple[ServedRule, ...] = ()  # HTTPRoute rules the proxy serves

    def canonical(self) -> FeedView:
        """The same content in a fixed order, so equal content compares equal."""
        return replace(
            self,
            records=tuple(sorted(self.records, key=lambda r: (r.name, r.type.value, r.set_identifier or ""))),
            routes=tuple(
                sorted(
                    (replace(r, backends=tuple(sorted(r.backends, key=_backend_key))) for r in self.routes),
                    key=lambda r: (r.host, r.path, r.path_type),
                )
            ),
            clusters=tuple(sorted(self.clusters, key=lambda c: c.name)),
        )

    def same_content(self, other: FeedView) -> bool:
        """Equal records, routes, clusters and zone (version and epoch ignored)."""
        a, b = self.canonical(), other.canonical()
        return (a.records, a.routes, a.clusters, a.zone, a.gateway_rules) == (
            b.records,
            b.routes,
            b.clusters,
            b.zone,
            b.gateway_rules,
        )

    def newer_than(self, other: FeedView | None) -> bool:
        """Whether a follower holding ``other`` should take this view.

        A different epoch is a different controller instance (a restart, a new
        leader): its view replaces whatever was held, whatever its number.
        """
        if other is None:
            return True
        return self.epoch != other.epoch or self.version > other.version


def _backend_key(b: Backend) -> tuple[str, str, int]:
    return (b.cluster, b.host, b.port)


# ------------------------------------------------------------------- encoding


def _location_to_wire(loc: Location | None) -> LocationWire | None:
    return None if loc is None else {"lat": loc.lat, "lon": loc.lon}


def view_to_wire(view: FeedView) -> ViewWire:
    records: list[RecordWire] = []
    for r in view.records:
        rec: RecordWire = {"name": r.name, "type": r.type.value, "ttl": r.ttl, "values": list(r.values)}
        if r.set_identifier is not None:
            rec["setIdentifier"] = r.set_identifier
        if r.routing is not None:
            routing: RoutingWire = {
                "cluster": r.routing.cluster,
                "region": r.routing.region,
                "location": _location_to_wire(r.routing.location),
                "weight": r.routing.weight,
                "continent": r.routing.continent,
                "country": r.routing.country,
            }
            if r.routing.weighted:
                routing["weighted"] = True
            rec["routing"] = routing
        records.append(rec)
    wire: ViewWire = {
        "format": FORMAT,
        "epoch": view.epoch,
        "version": view.version,
        "zone": view.zone,
        "records": records,
        "routes": [_route_wire(r) for r in view.routes],
        "clusters": [
            {
                "name": c.name,
                "region": c.region,
                "zone": c.zone,
                "location": _location_to_wire(c.location),
                "weight": c.weight,
                "status": c.status.value,
                "dataPlaneHealthy": c.data_plane_healthy,
            }
            for c in view.clusters
        ],
    }
    if view.gateway_rules:
        wire["gatewayRules"] = rules_to_wire(view.gateway_rules)
    return wire


def encode_view(view: FeedView) -> bytes:
    return json.dumps(view_to_wire(view), separators=(",", ":"), allow_nan=False).encode()


# ------------------------------------------------------------------- decoding

_T = TypeVar("_T")


class _Reader:
    """Typed access to one JSON object, naming the field path in every error."""

    def __init__(self, doc: object, path: str) -> None:
        if not isinstance(doc, dict):
            raise FeedFormatError(f"{path or 'document'}: must be an object, got {_kind(doc)}")
        self.doc: Mapping[str, Any] = doc
        self.path = path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, typ: type[_T], *, optional: bool = False) -> _T:
        if key not in self.doc:
            if optional:
                return None  # type: ignore[return-value]
            raise FeedFormatError(f"{self.at(key)}: is required")
        value = self.doc[key]
        if value is None and optional:
            return None  # type: ignore[return-value]
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise FeedFormatError(f"{self.at(key)}: must be {typ.__name__}, got {_kind(value)}")
        return value

    def items(self, key: str) -> list[tuple[str, object]]:
        seq = self.get(key, list)
        return [(f"{self.at(key)}[{i}]", item) for i, item in enumerate(seq)]


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _location(doc: object, path: str) -> Location | None:
    if doc is None:
        return None
    r = _Reader(doc, path)
    lat, lon = r.get("lat", float), r.get("lon", float)
    if not -90 <= lat <= 90:
        raise FeedFormatError(f"{r.at('lat')}: {lat} must be between -90 and 90")
    if not -180 <= lon <= 180:
        raise FeedFormatError(f"{r.at('lon')}: {lon} must be between -180 and 180")
    return Location(lat, lon)


def _record(doc: object, path: str) -> RecordSet:
    r = _Reader(doc, path)
    type_text = r.get("type", str)
    try:
        rtype = RecordType(type_text)
    except ValueError:
        allowed = ", ".join(t.value for t in RecordType)
        raise FeedFormatError(f"{r.at('type')}: {type_text!r} must be one of {allowed}") from None
    ttl = r.get("ttl", int)
    if not 0 <= ttl <= 2**31 - 1:
        raise FeedFormatError(f"{r.at('ttl')}: {ttl} must be between 0 and 2147483647")
    values = []
    for vpath, v in r.items("values"):
        if not isinstance(v, str):
            raise FeedFormatError(f"{vpath}: must be str, got {_kind(v)}")
        values.append(v)
    routing = None
    rdoc = r.doc.get("routing")
    if rdoc is not None:
        rr = _Reader(rdoc, r.at("routing"))
        routing = Routing(
            cluster=rr.get("cluster", str),
            region=rr.get("region", str),
            location=_location(rr.doc.get("location"), rr.at("location")),
            weight=rr.get("weight", int),
            continent=rr.get("continent", str, optional=True),
            country=rr.get("country", str, optional=True),
            weighted=bool(rr.get("weighted", bool, optional=True)),
        )
    return RecordSet(
        name=r.get("name", str),
        type=rtype,
        ttl=ttl,
        values=tuple(values),
        set_identifier=r.get("setIdentifier", str, optional=True),
        routing=routing,
    )


def _route_wire(r: Route) -> RouteWire:
    wire: RouteWire = {
        "host": r.host,
        "path": r.path,
        "pathType": r.path_type,
        "backends": [{"cluster": b.cluster, "host": b.host, "port": b.port} for b in r.backends],
    }
    if r.https_redirect is not None:
        wire["httpsRedirect"] = r.https_redirect
    s = r.steering
    if s is not None:
        wire["steering"] = {
            "kind": s.kind.value,
            "order": ",".join(s.order),
            "weights": ",".join(f"{name}={w}" for name, w in s.weights),
            "capacity": ",".join(f"{name}={c}" for name, c in s.capacity),
            "affinityCookie": s.affinity_cookie,
        }
        if s.rates:  # only when set: feeds without rate limits read as before by older followers
            wire["steering"]["maxRate"] = ",".join(f"{name}={r}" for name, r in s.rates)
    return wire


def _steering(doc: object, path: str) -> Steering | None:
    if doc is None:
        return None
    r = _Reader(doc, path)
    try:
        return parse_steering(
            r.get("kind", str),
            order=r.get("order", str),
            weights=r.get("weights", str),
            capacity=r.get("capacity", str),
            affinity_cookie=r.get("affinityCookie", str),
            rates=r.get("maxRate", str, optional=True) or "",
            where=path,
            order_field=f"{path}.order",
            weights_field=f"{path}.weights",
        )
    except ValueError as exc:
        raise FeedFormatError(str(exc)) from None


def _route(doc: object, path: str) -> Route:
    r = _Reader(doc, path)
    backends = []
    for bpath, bdoc in r.items("backends"):
        b = _Reader(bdoc, bpath)
        port = b.get("port", int)
        if not 1 <= port <= 65535:
            raise FeedFormatError(f"{b.at('port')}: {port} must be between 1 and 65535")
        backends.append(Backend(cluster=b.get("cluster", str), host=b.get("host", str), port=port))
    return Route(
        host=r.get("host", str),
        path=r.get("path", str),
        path_type=r.get("pathType", str),
        backends=tuple(backends),
        steering=_steering(r.doc.get("steering"), r.at("steering")),
        https_redirect=r.get("httpsRedirect", bool, optional=True),
    )


def _cluster(doc: object, path: str) -> Cluster:
    r = _Reader(doc, path)
    status_text = r.get("status", str)
    try:
        status = ClusterStatus(status_text)
    except ValueError:
        allowed = ", ".join(s.value for s in ClusterStatus)
        raise FeedFormatError(f"{r.at('status')}: {status_text!r} must be one of {allowed}") from None
    return Cluster(
        name=r.get("name", str),
        region=r.get("region", str),
        zone=r.get("zone", str),
        location=_location(r.doc.get("location"), r.at("location")),
        weight=r.get("weight", int),
        status=status,
        data_plane_healthy=r.get("dataPlaneHealthy", bool, optional=True),
    )


def view_from_wire(doc: object) -> FeedView:
    r = _Reader(doc, "")
    fmt = r.get("format", str)
    if fmt != FORMAT:
        raise FeedFormatError(f"format: {fmt!r} is not supported; expected {FORMAT!r}")
    version = r.get("version", int)
    if version < 0:
        raise FeedFormatError(f"version: {version} must be >= 0")
    return FeedView(
        version=version,
        records=tuple(_record(d, p) for p, d in r.items("records")),
        routes=tuple(_route(d, p) for p, d in r.items("routes")),
        clusters=tuple(_cluster(d, p) for p, d in r.items("clusters")),
        zone=r.get("zone", str),
        epoch=r.get("epoch", str),
        gateway_rules=_gateway_rules(doc),
    )


def _gateway_rules(doc: object) -> tuple[ServedRule, ...]:
    raw = doc.get("gatewayRules") if isinstance(doc, Mapping) else None
    if raw is None:
        return ()
    try:
        return rules_from_wire(raw)
    except RulesFormatError as exc:
        raise FeedFormatError(str(exc)) from None


def decode_view(data: bytes | str) -> FeedView:
    """Parse and validate a JSON feed document."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FeedFormatError(f"document: not JSON: {exc}") from None
    return view_from_wire(doc)
