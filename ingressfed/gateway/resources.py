"""Gateway API objects as frozen values: only the fields ingressfed acts on.

Each object carries the member cluster it was seen in and its metadata (generation for
``observedGeneration``, creation timestamp for route precedence and conflict resolution). The
``spec`` of each object is a separate value so that copies from several clusters compare equal
exactly when their definitions are the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "CONTROLLER_NAME",
    "GATEWAY_GROUP",
    "BackendRef",
    "Filter",
    "FilterType",
    "FromNamespaces",
    "Gateway",
    "GatewayClass",
    "GatewayObjects",
    "GatewaySpec",
    "GrantFrom",
    "GrantTo",
    "HTTPRoute",
    "HTTPRouteSpec",
    "HeaderMatch",
    "HeaderModifier",
    "LabelSelector",
    "Listener",
    "Match",
    "Meta",
    "ParentRef",
    "PathMatch",
    "PathModifier",
    "QueryMatch",
    "ReferenceGrant",
    "RequestRedirect",
    "Rule",
    "SecretRef",
    "SelectorRequirement",
    "ServiceExport",
    "URLRewrite",
]

GATEWAY_GROUP = "gateway.networking.k8s.io"
CONTROLLER_NAME = "ingressfed.io/gateway-controller"


@dataclass(frozen=True, slots=True)
class Meta:
    """Where and when an object was seen: the member cluster and its metadata."""

    cluster: str
    namespace: str  # "" for cluster-scoped objects (GatewayClass)
    name: str
    generation: int = 1
    created: str = ""  # RFC 3339 as the API server writes it (sorts as text)
    uid: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{where} in {self.cluster}"


# ---------------------------------------------------------------- GatewayClass, Gateway


@dataclass(frozen=True, slots=True)
class GatewayClass:
    meta: Meta
    controller_name: str


class FromNamespaces(StrEnum):
    SAME = "Same"
    ALL = "All"
    SELECTOR = "Selector"


@dataclass(frozen=True, slots=True)
class SelectorRequirement:
    key: str
    operator: str  # In | NotIn | Exists | DoesNotExist
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LabelSelector:
    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[SelectorRequirement, ...] = ()

    def matches(self, labels: dict[str, str] | None) -> bool:
        got = labels or {}
        if any(got.get(k) != v for k, v in self.match_labels):
            return False
        for req in self.match_expressions:
            present = req.key in got
            if req.operator == "In" and not (present and got[req.key] in req.values):
                return False
            if req.operator == "NotIn" and present and got[req.key] in req.values:
                return False
            if req.operator == "Exists" and not present:
                return False
            if req.operator == "DoesNotExist" and present:
                return False
        return True


@dataclass(frozen=True, slots=True)
class SecretRef:
    group: str
    kind: str
    name: str
    namespace: str | None = None


@dataclass(frozen=True, slots=True)
class Listener:
    name: str
    port: int
    protocol: str
    hostname: str | None = None
    allowed_from: FromNamespaces = FromNamespaces.SAME
    selector: LabelSelector | None = None
    # (group, kind) pairs; empty means the protocol's default (HTTPRoute for HTTP/HTTPS)
    allowed_kinds: tuple[tuple[str, str], ...] = ()
    tls_mode: str | None = None  # Terminate | Passthrough (HTTPS)
    certificate_refs: tuple[SecretRef, ...] = ()


@dataclass(frozen=True, slots=True)
class GatewaySpec:
    class_name: str
    listeners: tuple[Listener, ...]


@dataclass(frozen=True, slots=True)
class Gateway:
    meta: Meta
    spec: GatewaySpec


# ---------------------------------------------------------------- HTTPRoute


@dataclass(frozen=True, slots=True)
class ParentRef:
    name: str
    group: str = GATEWAY_GROUP
    kind: str = "Gateway"
    namespace: str | None = None  # None: the route's own namespace
    section_name: str | None = None
    port: int | None = None


@dataclass(frozen=True, slots=True)
class PathMatch:
    type: str = "PathPrefix"  # Exact | PathPrefix | RegularExpression
    value: str = "/"


@dataclass(frozen=True, slots=True)
class HeaderMatch:
    name: str  # as written; compared case-insensitively
    value: str
    type: str = "Exact"  # Exact | RegularExpression


@dataclass(frozen=True, slots=True)
class QueryMatch:
    name: str  # case-sensitive, as the spec says
    value: str
    type: str = "Exact"


@dataclass(frozen=True, slots=True)
class Match:
    path: PathMatch = PathMatch()
    headers: tuple[HeaderMatch, ...] = ()
    query: tuple[QueryMatch, ...] = ()
    method: str | None = None


class FilterType(StrEnum):
    REQUEST_HEADER_MODIFIER = "RequestHeaderModifier"
    RESPONSE_HEADER_MODIFIER = "ResponseHeaderModifier"
    REQUEST_REDIRECT = "RequestRedirect"
    URL_REWRITE = "URLRewrite"


@dataclass(frozen=True, slots=True)
class HeaderModifier:
    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PathModifier:
    type: str  # ReplaceFullPath | ReplacePrefixMatch
    value: str


@dataclass(frozen=True, slots=True)
class RequestRedirect:
    scheme: str | None = None
    hostname: str | None = None
    port: int | None = None
    path: PathModifier | None = None
    status_code: int = 302


@dataclass(frozen=True, slots=True)
class URLRewrite:
    hostname: str | None = None
    path: PathModifier | None = None


@dataclass(frozen=True, slots=True)
class Filter:
    type: FilterType
    headers: HeaderModifier | None = None
    redirect: RequestRedirect | None = None
    rewrite: URLRewrite | None = None


@dataclass(frozen=True, slots=True)
class BackendRef:
    name: str
    group: str = ""
    kind: str = "Service"
    namespace: str | None = None
    port: int | None = None
    weight: int = 1
    filters: tuple[Filter, ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    index: int  # position in spec.rules (status messages and precedence use it)
    matches: tuple[Match, ...] = (Match(),)
    filters: tuple[Filter, ...] = ()
    backend_refs: tuple[BackendRef, ...] = ()
    name: str | None = None


@dataclass(frozen=True, slots=True)
class HTTPRouteSpec:
    parent_refs: tuple[ParentRef, ...] = ()
    hostnames: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    # Rules that could not be used, as (field path, why): the route stays, those rules drop.
    invalid_rules: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class HTTPRoute:
    meta: Meta
    spec: HTTPRouteSpec
    ttl: int | None = None  # annotation federation.ingressfed.io/ttl: TTL of its DNS records


# ---------------------------------------------------------------- ReferenceGrant


@dataclass(frozen=True, slots=True)
class GrantFrom:
    group: str
    kind: str
    namespace: str


@dataclass(frozen=True, slots=True)
class GrantTo:
    group: str
    kind: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ReferenceGrant:
    meta: Meta
    from_: tuple[GrantFrom, ...]
    to: tuple[GrantTo, ...]

    def permits(
        self,
        *,
        from_group: str,
        from_kind: str,
        from_namespace: str,
        to_group: str,
        to_kind: str,
        to_name: str,
    ) -> bool:
        if not any(
            f.group == from_group and f.kind == from_kind and f.namespace == from_namespace
            for f in self.from_
        ):
            return False
        return any(t.group == to_group and t.kind == to_kind and t.name in (None, to_name) for t in self.to)


# ---------------------------------------------------------------- MCS ServiceExport


@dataclass(frozen=True, slots=True)
class ServiceExport:
    """multicluster.x-k8s.io/v1alpha1 ServiceExport: opts the Service of the same name in."""

    meta: Meta


@dataclass(frozen=True, slots=True)
class GatewayObjects:
    """Every Gateway API and MCS object the sources saw, in all member clusters (sorted)."""

    classes: tuple[GatewayClass, ...] = ()
    gateways: tuple[Gateway, ...] = ()
    routes: tuple[HTTPRoute, ...] = ()
    grants: tuple[ReferenceGrant, ...] = ()
    exports: tuple[ServiceExport, ...] = ()
    # (cluster, namespace) -> labels, for listeners that select route namespaces
    namespace_labels: tuple[tuple[tuple[str, str], tuple[tuple[str, str], ...]], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.classes or self.gateways or self.routes or self.grants or self.exports)
