"""Gateway API objects (plain dicts from the API server) to frozen values, or problems.

Purely computational. The checks are those of the v1.6.1 standard-channel CRDs: their OpenAPI
schemas and their CEL rules (an API server of an older Kubernetes, or one whose CRDs were
installed without CEL, lets such objects through; we refuse them here with the CRD's own words
and the field path). A bad object never raises. Problems inside one rule drop only that rule (the
route reports ``PartiallyInvalid``); problems with the object's identity, parents or hostnames
make the whole object unusable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ingressfed.gateway.resources import (
    GATEWAY_GROUP,
    BackendRef,
    Filter,
    FilterType,
    FromNamespaces,
    Gateway,
    GatewayClass,
    GatewaySpec,
    GrantFrom,
    GrantTo,
    HeaderMatch,
    HeaderModifier,
    HTTPRoute,
    HTTPRouteSpec,
    LabelSelector,
    Listener,
    Match,
    Meta,
    ParentRef,
    PathMatch,
    PathModifier,
    QueryMatch,
    ReferenceGrant,
    RequestRedirect,
    Rule,
    SecretRef,
    SelectorRequirement,
    URLRewrite,
)

__all__ = [
    "FieldProblem",
    "Parsed",
    "compile_regex",
    "gateway_from",
    "gatewayclass_from",
    "httproute_from",
    "referencegrant_from",
]

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})*\Z")
_WILDCARD_HOST = re.compile(rf"(\*\.)?{_LABEL}(\.{_LABEL})*\Z")
_DNS_LABEL = re.compile(rf"{_LABEL}\Z")
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~]+\Z")
_KIND = re.compile(r"[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?\Z")
_GROUP = re.compile(rf"(\Z|{_LABEL}(\.{_LABEL})*\Z)")
_PROTOCOL = re.compile(
    r"([a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/[A-Za-z0-9]+)\Z"
)
_PATH_CHARS = re.compile(r"(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+\Z")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
# Filter types of the standard channel that ingressfed does not implement (yet): a rule using
# one is dropped with a problem rather than served without the filter.
UNSUPPORTED_FILTERS = frozenset({"RequestMirror", "ExtensionRef", "CORS"})
MAX_QUOTE = 120

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """``path`` is the field (``spec.rules[0].matches[1].path.value``); ``message`` says why and the fix."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True, slots=True)
class Parsed(Generic[T]):
    value: T | None
    problems: tuple[FieldProblem, ...] = ()


def _quote(value: object) -> str:
    text = repr(value)
    return text if len(text) <= MAX_QUOTE else text[:MAX_QUOTE] + "..."


def compile_regex(pattern: str) -> re.Pattern[str] | None:
    """Python ``re`` is our RegularExpression dialect (implementation-specific in the API)."""
    try:
        return re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        return None


class _Reader:
    """Collects problems while reading fields of one object, each with its full path."""

    def __init__(self) -> None:
        self.problems: list[FieldProblem] = []

    def bad(self, path: str, message: str) -> None:
        self.problems.append(FieldProblem(path, message))

    def obj(self, value: object, path: str, *, required: bool = False) -> Mapping[str, Any] | None:
        if value is None:
            if required:
                self.bad(path, "is required")
            return None
        if not isinstance(value, Mapping):
            self.bad(path, f"must be an object, got {_quote(value)}")
            return None
        return value

    def seq(self, value: object, path: str, *, max_items: int, min_items: int = 0) -> Sequence[Any]:
        if value is None:
            value = []
        if not isinstance(value, list):
            self.bad(path, f"must be a list, got {_quote(value)}")
            return []
        if len(value) > max_items:
            self.bad(path, f"has {len(value)} items; at most {max_items} are allowed")
            return []
        if len(value) < min_items:
            self.bad(path, f"needs at least {min_items} item(s)")
            return []
        return value

    def string(
        self,
        value: object,
        path: str,
        *,
        required: bool = False,
        pattern: re.Pattern[str] | None = None,
        max_len: int = 253,
        min_len: int = 1,
        hint: str = "",
    ) -> str | None:
        if value is None:
            if required:
                self.bad(path, "is required")
            return None
        if not isinstance(value, str):
            self.bad(path, f"must be a string, got {_quote(value)}")
            return None
        if not min_len <= len(value) <= max_len:
            self.bad(path, f"must be {min_len}..{max_len} characters long, got {len(value)}")
            return None
        if pattern is not None and not pattern.match(value):
            self.bad(path, f"{_quote(value)} is not valid{': ' + hint if hint else ''}")
            return None
        return value

    def integer(self, value: object, path: str, *, lo: int, hi: int, required: bool = False) -> int | None:
        if value is None:
            if required:
                self.bad(path, "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.bad(path, f"must be an integer, got {_quote(value)}")
            return None
        if not lo <= value <= hi:
            self.bad(path, f"must be in {lo}..{hi}, got {value}")
            return None
        return value

    def enum(
        self, value: object, path: str, allowed: Sequence[str], *, default: str | None = None
    ) -> str | None:
        if value is None:
            if default is None:
                self.bad(path, f"is required (one of {', '.join(allowed)})")
            return default
        if not isinstance(value, str) or value not in allowed:
            self.bad(path, f"{_quote(value)} is not one of {', '.join(allowed)}")
            return None
        return value


def _meta(r: _Reader, obj: object, cluster: str, *, namespaced: bool) -> Meta | None:
    if not isinstance(obj, Mapping):
        r.bad("", "object is not a mapping")
        return None
    meta = r.obj(obj.get("metadata"), "metadata", required=True)
    if meta is None:
        return None
    name = r.string(
        meta.get("name"), "metadata.name", required=True, pattern=_SUBDOMAIN, hint="a DNS subdomain"
    )
    ns = ""
    if namespaced:
        ns = (
            r.string(
                meta.get("namespace"), "metadata.namespace", required=True, pattern=_DNS_LABEL, max_len=63
            )
            or ""
        )
    gen = meta.get("generation", 1)
    generation = gen if isinstance(gen, int) and not isinstance(gen, bool) and gen >= 0 else 1
    created = meta.get("creationTimestamp", "")
    uid = meta.get("uid", "")
    if name is None or (namespaced and not ns):
        return None
    return Meta(
        cluster=cluster,
        namespace=ns,
        name=name,
        generation=generation,
        created=created if isinstance(created, str) and len(created) <= 64 else "",
        uid=uid if isinstance(uid, str) and len(uid) <= 64 else "",
    )


# ---------------------------------------------------------------- GatewayClass


def gatewayclass_from(obj: object, *, cluster: str) -> Parsed[GatewayClass]:
    r = _Reader()
    meta = _meta(r, obj, cluster, namespaced=False)
    spec = r.obj(obj.get("spec") if isinstance(obj, Mapping) else None, "spec", required=True)
    controller = None
    if spec is not None:
        controller = r.string(spec.get("controllerName"), "spec.controllerName", required=True)
    if meta is None or controller is None:
        return Parsed(None, tuple(r.problems))
    return Parsed(GatewayClass(meta=meta, controller_name=controller), tuple(r.problems))


# ---------------------------------------------------------------- Gateway


def _selector(r: _Reader, raw: object, path: str) -> LabelSelector | None:
    sel = r.obj(raw, path)
    if sel is None:
        return None
    labels = r.obj(sel.get("matchLabels"), f"{path}.matchLabels") or {}
    pairs = tuple(sorted((str(k), str(v)) for k, v in labels.items()))
    reqs: list[SelectorRequirement] = []
    for i, item in enumerate(r.seq(sel.get("matchExpressions"), f"{path}.matchExpressions", max_items=64)):
        ip = f"{path}.matchExpressions[{i}]"
        e = r.obj(item, ip, required=True)
        if e is None:
            continue
        key = r.string(e.get("key"), f"{ip}.key", required=True, max_len=317)
        op = r.enum(e.get("operator"), f"{ip}.operator", ("In", "NotIn", "Exists", "DoesNotExist"))
        values = tuple(str(v) for v in r.seq(e.get("values"), f"{ip}.values", max_items=64))
        if key is not None and op is not None:
            reqs.append(SelectorRequirement(key=key, operator=op, values=values))
    return LabelSelector(match_labels=pairs, match_expressions=tuple(reqs))


def _listener(r: _Reader, raw: object, path: str) -> Listener | None:
    lst = r.obj(raw, path, required=True)
    if lst is None:
        return None
    before = len(r.problems)
    name = r.string(
        lst.get("name"), f"{path}.name", required=True, pattern=_SUBDOMAIN, hint="a DNS subdomain"
    )
    hostname = r.string(
        lst.get("hostname"),
        f"{path}.hostname",
        pattern=_WILDCARD_HOST,
        hint="a DNS name, optionally '*.' first",
    )
    port = r.integer(lst.get("port"), f"{path}.port", lo=1, hi=65535, required=True)
    protocol = r.string(
        lst.get("protocol"), f"{path}.protocol", required=True, pattern=_PROTOCOL, max_len=255
    )
    tls_mode: str | None = None
    certs: list[SecretRef] = []
    tls = r.obj(lst.get("tls"), f"{path}.tls")
    if tls is not None:
        tls_mode = r.enum(
            tls.get("mode"), f"{path}.tls.mode", ("Terminate", "Passthrough"), default="Terminate"
        )
        for i, item in enumerate(
            r.seq(tls.get("certificateRefs"), f"{path}.tls.certificateRefs", max_items=64)
        ):
            cp = f"{path}.tls.certificateRefs[{i}]"
            c = r.obj(item, cp, required=True)
            if c is None:
                continue
            cname = r.string(c.get("name"), f"{cp}.name", required=True)
            group = r.string(c.get("group", ""), f"{cp}.group", pattern=_GROUP, min_len=0) or ""
            kind = r.string(c.get("kind", "Secret"), f"{cp}.kind", pattern=_KIND, max_len=63) or "Secret"
            cns = r.string(c.get("namespace"), f"{cp}.namespace", pattern=_DNS_LABEL, max_len=63)
            if cname is not None:
                certs.append(SecretRef(group=group, kind=kind, name=cname, namespace=cns))
    if protocol in ("HTTP", "TCP", "UDP") and tls is not None:
        r.bad(
            f"{path}.tls",
            f"tls must not be specified for protocols ['HTTP', 'TCP', 'UDP'] (protocol is {protocol})",
        )
    if protocol == "HTTPS" and tls is None:
        r.bad(f"{path}.tls", "tls must be specified for protocols ['HTTPS', 'TLS']")
    if protocol in ("TCP", "UDP") and hostname is not None:
        r.bad(f"{path}.hostname", "hostname must not be specified for protocols ['TCP', 'UDP']")
    if tls_mode == "Terminate" and protocol == "HTTPS" and not certs:
        r.bad(
            f"{path}.tls.certificateRefs",
            "certificateRefs or options must be specified when mode is Terminate",
        )
    allowed = r.obj(lst.get("allowedRoutes"), f"{path}.allowedRoutes") or {}
    nss = r.obj(allowed.get("namespaces"), f"{path}.allowedRoutes.namespaces") or {}
    from_raw = r.enum(
        nss.get("from"), f"{path}.allowedRoutes.namespaces.from", ("All", "Same", "Selector"), default="Same"
    )
    selector = _selector(r, nss.get("selector"), f"{path}.allowedRoutes.namespaces.selector")
    if from_raw == "Selector" and selector is None:
        r.bad(f"{path}.allowedRoutes.namespaces.selector", "is required when from is Selector")
    kinds: list[tuple[str, str]] = []
    for i, item in enumerate(r.seq(allowed.get("kinds"), f"{path}.allowedRoutes.kinds", max_items=8)):
        kp = f"{path}.allowedRoutes.kinds[{i}]"
        k = r.obj(item, kp, required=True)
        if k is None:
            continue
        rkind = r.string(k.get("kind"), f"{kp}.kind", required=True, pattern=_KIND, max_len=63)
        rgroup = r.string(k.get("group", GATEWAY_GROUP), f"{kp}.group", pattern=_GROUP, min_len=0)
        if rkind is not None and rgroup is not None:
            kinds.append((rgroup, rkind))
    if len(r.problems) > before or name is None or port is None or protocol is None or from_raw is None:
        return None
    return Listener(
        name=name,
        port=port,
        protocol=protocol,
        hostname=hostname,
        allowed_from=FromNamespaces(from_raw),
        selector=selector,
        allowed_kinds=tuple(kinds),
        tls_mode=tls_mode,
        certificate_refs=tuple(certs),
    )


def gateway_from(obj: object, *, cluster: str) -> Parsed[Gateway]:
    r = _Reader()
    meta = _meta(r, obj, cluster, namespaced=True)
    spec = r.obj(obj.get("spec") if isinstance(obj, Mapping) else None, "spec", required=True)
    if spec is None or meta is None:
        return Parsed(None, tuple(r.problems))
    class_name = r.string(spec.get("gatewayClassName"), "spec.gatewayClassName", required=True)
    listeners: list[Listener] = []
    for i, item in enumerate(r.seq(spec.get("listeners"), "spec.listeners", max_items=64, min_items=1)):
        lst = _listener(r, item, f"spec.listeners[{i}]")
        if lst is not None:
            listeners.append(lst)
    names = [x.name for x in listeners]
    if len(set(names)) != len(names):
        r.bad("spec.listeners", "Listener name must be unique within the Gateway")
    combos = [(x.port, x.protocol, x.hostname) for x in listeners]
    if len(set(combos)) != len(combos):
        r.bad("spec.listeners", "Combination of port, protocol and hostname must be unique for each listener")
    if class_name is None or r.problems:
        return Parsed(None, tuple(r.problems))
    return Parsed(Gateway(meta=meta, spec=GatewaySpec(class_name=class_name, listeners=tuple(listeners))), ())


# ---------------------------------------------------------------- ReferenceGrant


def referencegrant_from(obj: object, *, cluster: str) -> Parsed[ReferenceGrant]:
    r = _Reader()
    meta = _meta(r, obj, cluster, namespaced=True)
    spec = r.obj(obj.get("spec") if isinstance(obj, Mapping) else None, "spec", required=True)
    if spec is None or meta is None:
        return Parsed(None, tuple(r.problems))
    froms: list[GrantFrom] = []
    for i, item in enumerate(r.seq(spec.get("from"), "spec.from", max_items=16, min_items=1)):
        p = f"spec.from[{i}]"
        f = r.obj(item, p, required=True)
        if f is None:
            continue
        group = r.string(f.get("group"), f"{p}.group", pattern=_GROUP, min_len=0)
        kind = r.string(f.get("kind"), f"{p}.kind", required=True, pattern=_KIND, max_len=63)
        ns = r.string(f.get("namespace"), f"{p}.namespace", required=True, pattern=_DNS_LABEL, max_len=63)
        if f.get("group") is None:
            r.bad(f"{p}.group", "is required")
        if group is not None and kind is not None and ns is not None:
            froms.append(GrantFrom(group=group, kind=kind, namespace=ns))
    tos: list[GrantTo] = []
    for i, item in enumerate(r.seq(spec.get("to"), "spec.to", max_items=16, min_items=1)):
        p = f"spec.to[{i}]"
        t = r.obj(item, p, required=True)
        if t is None:
            continue
        group = r.string(t.get("group"), f"{p}.group", pattern=_GROUP, min_len=0)
        kind = r.string(t.get("kind"), f"{p}.kind", required=True, pattern=_KIND, max_len=63)
        name = r.string(t.get("name"), f"{p}.name")
        if t.get("group") is None:
            r.bad(f"{p}.group", "is required")
        if group is not None and kind is not None:
            tos.append(GrantTo(group=group, kind=kind, name=name))
    if r.problems:
        return Parsed(None, tuple(r.problems))
    return Parsed(ReferenceGrant(meta=meta, from_=tuple(froms), to=tuple(tos)), ())


# ---------------------------------------------------------------- HTTPRoute

TTL_ANNOTATION = "federation.ingressfed.io/ttl"
MAX_TTL = 86_400


def _ttl(obj: object, r: _Reader) -> int | None:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    ann = meta.get("annotations") if isinstance(meta, Mapping) else None
    raw = ann.get(TTL_ANNOTATION) if isinstance(ann, Mapping) else None
    if raw is None:
        return None
    if isinstance(raw, str) and raw.strip().isdigit() and 1 <= int(raw.strip()[:7]) <= MAX_TTL:
        return int(raw.strip())
    r.bad(f"metadata.annotations[{TTL_ANNOTATION}]", f"{_quote(raw)} must be whole seconds in 1..{MAX_TTL}")
    return None


def _parent_ref(r: _Reader, raw: object, path: str) -> ParentRef | None:
    p = r.obj(raw, path, required=True)
    if p is None:
        return None
    before = len(r.problems)
    name = r.string(p.get("name"), f"{path}.name", required=True)
    group = r.string(p.get("group", GATEWAY_GROUP), f"{path}.group", pattern=_GROUP, min_len=0)
    kind = r.string(p.get("kind", "Gateway"), f"{path}.kind", pattern=_KIND, max_len=63)
    ns = r.string(p.get("namespace"), f"{path}.namespace", pattern=_DNS_LABEL, max_len=63)
    section = r.string(
        p.get("sectionName"), f"{path}.sectionName", pattern=_SUBDOMAIN, hint="a DNS subdomain"
    )
    port = r.integer(p.get("port"), f"{path}.port", lo=1, hi=65535)
    if len(r.problems) > before or name is None or group is None or kind is None:
        return None
    return ParentRef(name=name, group=group, kind=kind, namespace=ns, section_name=section, port=port)


def _path_match(r: _Reader, raw: object, path: str) -> PathMatch | None:
    if raw is None:
        return PathMatch()
    p = r.obj(raw, path)
    if p is None:
        return None
    ptype = r.enum(
        p.get("type"), f"{path}.type", ("Exact", "PathPrefix", "RegularExpression"), default="PathPrefix"
    )
    value = r.string(p.get("value", "/"), f"{path}.value", max_len=1024, min_len=0)
    if ptype is None or value is None:
        return None
    vp = f"{path}.value"
    if ptype == "RegularExpression":
        if compile_regex(value) is None:
            r.bad(vp, f"{_quote(value)} is not a valid regular expression (Python re syntax)")
            return None
        return PathMatch(type=ptype, value=value)
    if not value.startswith("/"):
        r.bad(
            vp, "value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']"
        )
        return None
    for bad in ("//", "/./", "/../", "%2f", "%2F", "#"):
        if bad in value:
            r.bad(vp, f"must not contain {bad!r} when type one of ['Exact', 'PathPrefix']")
            return None
    for end in ("/..", "/."):
        if value.endswith(end):
            r.bad(vp, f"must not end with {end!r} when type one of ['Exact', 'PathPrefix']")
            return None
    if not _PATH_CHARS.match(value):
        r.bad(vp, f"{_quote(value)} must only contain valid characters (RFC 3986 path characters)")
        return None
    return PathMatch(type=ptype, value=value)


def _value_match(
    r: _Reader, raw: object, path: str, *, max_value: int, fold: bool
) -> tuple[str, str, str] | None:
    m = r.obj(raw, path, required=True)
    if m is None:
        return None
    name = r.string(
        m.get("name"), f"{path}.name", required=True, pattern=_TOKEN, max_len=256, hint="an HTTP token"
    )
    mtype = r.enum(m.get("type"), f"{path}.type", ("Exact", "RegularExpression"), default="Exact")
    value = r.string(m.get("value"), f"{path}.value", required=True, max_len=max_value)
    if name is None or mtype is None or value is None:
        return None
    if mtype == "RegularExpression" and compile_regex(value) is None:
        r.bad(f"{path}.value", f"{_quote(value)} is not a valid regular expression (Python re syntax)")
        return None
    return (name.lower() if fold else name, mtype, value)


def _match(r: _Reader, raw: object, path: str) -> Match | None:
    m = r.obj(raw, path, required=True)
    if m is None:
        return None
    before = len(r.problems)
    pm = _path_match(r, m.get("path"), f"{path}.path")
    headers: list[HeaderMatch] = []
    seen: set[str] = set()
    for i, item in enumerate(r.seq(m.get("headers"), f"{path}.headers", max_items=16)):
        got = _value_match(r, item, f"{path}.headers[{i}]", max_value=4096, fold=True)
        # The API: only the first entry with an equivalent (case-insensitive) name counts.
        if got is not None and got[0] not in seen:
            seen.add(got[0])
            headers.append(HeaderMatch(name=got[0], type=got[1], value=got[2]))
    query: list[QueryMatch] = []
    qseen: set[str] = set()
    for i, item in enumerate(r.seq(m.get("queryParams"), f"{path}.queryParams", max_items=16)):
        got = _value_match(r, item, f"{path}.queryParams[{i}]", max_value=1024, fold=False)
        if got is not None and got[0] not in qseen:
            qseen.add(got[0])
            query.append(QueryMatch(name=got[0], type=got[1], value=got[2]))
    method = None
    if m.get("method") is not None:
        method = r.enum(m.get("method"), f"{path}.method", sorted(METHODS))
    if len(r.problems) > before or pm is None:
        return None
    return Match(path=pm, headers=tuple(headers), query=tuple(query), method=method)


def _header_modifier(r: _Reader, raw: object, path: str) -> HeaderModifier | None:
    h = r.obj(raw, path, required=True)
    if h is None:
        return None
    before = len(r.problems)
    out: dict[str, tuple[tuple[str, str], ...]] = {}
    for key in ("set", "add"):
        pairs: list[tuple[str, str]] = []
        for i, item in enumerate(r.seq(h.get(key), f"{path}.{key}", max_items=16)):
            ip = f"{path}.{key}[{i}]"
            e = r.obj(item, ip, required=True)
            if e is None:
                continue
            name = r.string(
                e.get("name"), f"{ip}.name", required=True, pattern=_TOKEN, max_len=256, hint="an HTTP token"
            )
            value = r.string(e.get("value"), f"{ip}.value", required=True, max_len=4096)
            if name is not None and value is not None:
                if any(n.lower() == name.lower() for n, _ in pairs):
                    r.bad(
                        f"{ip}.name",
                        f"header {name!r} appears twice in {key}; the API allows one entry per name",
                    )
                pairs.append((name, value))
        out[key] = tuple(pairs)
    removes: list[str] = []
    for i, item in enumerate(r.seq(h.get("remove"), f"{path}.remove", max_items=16)):
        name = r.string(item, f"{path}.remove[{i}]", pattern=_TOKEN, max_len=256, hint="an HTTP token")
        if name is not None:
            removes.append(name)
    if len(r.problems) > before:
        return None
    return HeaderModifier(set=out["set"], add=out["add"], remove=tuple(removes))


def _path_modifier(r: _Reader, raw: object, path: str) -> PathModifier | None:
    p = r.obj(raw, path)
    if p is None:
        return None
    ptype = r.enum(p.get("type"), f"{path}.type", ("ReplaceFullPath", "ReplacePrefixMatch"))
    full, prefix = p.get("replaceFullPath"), p.get("replacePrefixMatch")
    if ptype == "ReplaceFullPath" and full is None:
        r.bad(
            f"{path}.replaceFullPath",
            "replaceFullPath must be specified when type is set to 'ReplaceFullPath'",
        )
    if ptype == "ReplacePrefixMatch" and prefix is None:
        r.bad(
            f"{path}.replacePrefixMatch",
            "replacePrefixMatch must be specified when type is set to 'ReplacePrefixMatch'",
        )
    if full is not None and ptype != "ReplaceFullPath":
        r.bad(f"{path}.type", "type must be 'ReplaceFullPath' when replaceFullPath is set")
    if prefix is not None and ptype != "ReplacePrefixMatch":
        r.bad(f"{path}.type", "type must be 'ReplacePrefixMatch' when replacePrefixMatch is set")
    raw_value = full if ptype == "ReplaceFullPath" else prefix
    field = "replaceFullPath" if ptype == "ReplaceFullPath" else "replacePrefixMatch"
    value = r.string(raw_value, f"{path}.{field}", max_len=1024, min_len=0)
    if ptype is None or value is None:
        return None
    if value and not value.startswith("/"):
        r.bad(f"{path}.{field}", f"{_quote(value)} must be an absolute path starting with '/'")
        return None
    return PathModifier(type=ptype, value=value)


def _filter(r: _Reader, raw: object, path: str, *, backend: bool) -> Filter | None:
    f = r.obj(raw, path, required=True)
    if f is None:
        return None
    ftype = f.get("type")
    known = {t.value for t in FilterType} | UNSUPPORTED_FILTERS
    if not isinstance(ftype, str) or ftype not in known:
        r.bad(f"{path}.type", f"{_quote(ftype)} is not one of {', '.join(sorted(known))}")
        return None
    if ftype in UNSUPPORTED_FILTERS:
        r.bad(
            f"{path}.type",
            f"filter {ftype} is not supported by ingressfed; remove it or route this rule elsewhere",
        )
        return None
    fields = {
        "RequestHeaderModifier": "requestHeaderModifier",
        "ResponseHeaderModifier": "responseHeaderModifier",
        "RequestRedirect": "requestRedirect",
        "URLRewrite": "urlRewrite",
    }
    own = fields[ftype]
    for other_type, other in fields.items():
        if other != own and f.get(other) is not None:
            r.bad(f"{path}.{other}", f"filter.{other} must be nil if the filter.type is not {other_type}")
            return None
    if f.get(own) is None:
        r.bad(f"{path}.{own}", f"filter.{own} must be specified for {ftype} filter.type")
        return None
    if backend and ftype in ("RequestRedirect", "URLRewrite"):
        r.bad(f"{path}.type", f"{ftype} on a backendRef is not supported by ingressfed; put it on the rule")
        return None
    body = f.get(own)
    sub = f"{path}.{own}"
    if ftype in ("RequestHeaderModifier", "ResponseHeaderModifier"):
        mod = _header_modifier(r, body, sub)
        return None if mod is None else Filter(type=FilterType(ftype), headers=mod)
    b = r.obj(body, sub, required=True)
    if b is None:
        return None
    before = len(r.problems)
    hostname = r.string(b.get("hostname"), f"{sub}.hostname", pattern=_SUBDOMAIN, hint="a DNS name")
    pmod = _path_modifier(r, b.get("path"), f"{sub}.path")
    if ftype == "URLRewrite":
        if len(r.problems) > before:
            return None
        return Filter(type=FilterType.URL_REWRITE, rewrite=URLRewrite(hostname=hostname, path=pmod))
    scheme = None if b.get("scheme") is None else r.enum(b.get("scheme"), f"{sub}.scheme", ("http", "https"))
    port = r.integer(b.get("port"), f"{sub}.port", lo=1, hi=65535)
    code = b.get("statusCode", 302)
    if isinstance(code, bool) or code not in REDIRECT_CODES:
        r.bad(f"{sub}.statusCode", f"{_quote(code)} is not one of 301, 302, 303, 307, 308")
        return None
    if len(r.problems) > before:
        return None
    return Filter(
        type=FilterType.REQUEST_REDIRECT,
        redirect=RequestRedirect(
            scheme=scheme, hostname=hostname, port=port, path=pmod, status_code=int(code)
        ),
    )


def _filters(r: _Reader, raw: object, path: str, *, backend: bool) -> tuple[Filter, ...] | None:
    before = len(r.problems)
    out: list[Filter] = []
    for i, item in enumerate(r.seq(raw, path, max_items=16)):
        f = _filter(r, item, f"{path}[{i}]", backend=backend)
        if f is not None:
            out.append(f)
    types = [f.type for f in out]
    for t in FilterType:
        if types.count(t) > 1:
            r.bad(path, f"{t.value} filter cannot be repeated")
    if FilterType.REQUEST_REDIRECT in types and FilterType.URL_REWRITE in types:
        r.bad(
            path,
            "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, "
            "but not both",
        )
    return None if len(r.problems) > before else tuple(out)


def _backend_ref(r: _Reader, raw: object, path: str) -> BackendRef | None:
    b = r.obj(raw, path, required=True)
    if b is None:
        return None
    before = len(r.problems)
    name = r.string(b.get("name"), f"{path}.name", required=True)
    group = r.string(b.get("group", ""), f"{path}.group", pattern=_GROUP, min_len=0)
    kind = r.string(b.get("kind", "Service"), f"{path}.kind", pattern=_KIND, max_len=63)
    ns = r.string(b.get("namespace"), f"{path}.namespace", pattern=_DNS_LABEL, max_len=63)
    port = r.integer(b.get("port"), f"{path}.port", lo=1, hi=65535)
    raw_weight = b.get("weight", 1)
    weight = r.integer(raw_weight, f"{path}.weight", lo=0, hi=1_000_000)
    if (group, kind) == ("", "Service") and port is None and b.get("port") is None:
        r.bad(f"{path}.port", "Must have port for Service reference")
    filters = _filters(r, b.get("filters"), f"{path}.filters", backend=True)
    if (
        len(r.problems) > before
        or name is None
        or group is None
        or kind is None
        or weight is None
        or filters is None
    ):
        return None
    return BackendRef(
        name=name, group=group, kind=kind, namespace=ns, port=port, weight=weight, filters=filters
    )


def _rule(r: _Reader, raw: object, path: str, index: int) -> tuple[Rule | None, int]:
    """One rule, or None when anything in it is invalid; also its number of matches."""
    ru = r.obj(raw, path, required=True)
    if ru is None:
        return None, 0
    before = len(r.problems)
    raw_matches = ru.get("matches")
    if raw_matches is None:
        raw_matches = [{"path": {"type": "PathPrefix", "value": "/"}}]
    items = r.seq(raw_matches, f"{path}.matches", max_items=64)
    matches = [
        m for m in (_match(r, item, f"{path}.matches[{i}]") for i, item in enumerate(items)) if m is not None
    ]
    filters = _filters(r, ru.get("filters"), f"{path}.filters", backend=False)
    backends = [
        b
        for b in (
            _backend_ref(r, item, f"{path}.backendRefs[{i}]")
            for i, item in enumerate(r.seq(ru.get("backendRefs"), f"{path}.backendRefs", max_items=16))
        )
        if b is not None
    ]
    name = r.string(ru.get("name"), f"{path}.name", pattern=_SUBDOMAIN, hint="a DNS subdomain")
    if filters:
        types = {f.type for f in filters}
        if FilterType.REQUEST_REDIRECT in types and backends:
            r.bad(f"{path}.filters", "RequestRedirect filter must not be used together with backendRefs")
        for f in filters:
            pmod = f.redirect.path if f.redirect else (f.rewrite.path if f.rewrite else None)
            single_prefix = len(matches) == 1 and matches[0].path.type == "PathPrefix"
            if pmod is not None and pmod.type == "ReplacePrefixMatch" and not single_prefix:
                what = "RequestRedirect" if f.redirect else "URLRewrite"
                r.bad(
                    f"{path}.filters",
                    f"When using {what} filter with path.replacePrefixMatch, "
                    "exactly one PathPrefix match must be specified",
                )
    if len(r.problems) > before or filters is None:
        return None, len(items)
    rule = Rule(index=index, matches=tuple(matches), filters=filters, backend_refs=tuple(backends), name=name)
    return rule, len(items)


def httproute_from(obj: object, *, cluster: str) -> Parsed[HTTPRoute]:
    """An HTTPRoute, or None with problems. Invalid rules are kept out and listed in ``invalid_rules``."""
    r = _Reader()
    meta = _meta(r, obj, cluster, namespaced=True)
    spec = r.obj(obj.get("spec") if isinstance(obj, Mapping) else None, "spec", required=True)
    if spec is None or meta is None:
        return Parsed(None, tuple(r.problems))
    parents: list[ParentRef] = []
    for i, item in enumerate(r.seq(spec.get("parentRefs"), "spec.parentRefs", max_items=32)):
        ref = _parent_ref(r, item, f"spec.parentRefs[{i}]")
        if ref is not None:
            parents.append(ref)
    same: dict[tuple[str, str, str | None, str], list[ParentRef]] = {}
    for p in parents:
        same.setdefault((p.group, p.kind, p.namespace, p.name), []).append(p)
    for refs in same.values():
        if len(refs) > 1:
            if any(p.section_name is None for p in refs):
                r.bad(
                    "spec.parentRefs",
                    "sectionName must be specified when parentRefs includes 2 or more references "
                    "to the same parent",
                )
            elif len({p.section_name for p in refs}) != len(refs):
                r.bad(
                    "spec.parentRefs",
                    "sectionName must be unique when parentRefs includes 2 or more references "
                    "to the same parent",
                )
    hostnames: list[str] = []
    for i, item in enumerate(r.seq(spec.get("hostnames"), "spec.hostnames", max_items=16)):
        h = r.string(
            item,
            f"spec.hostnames[{i}]",
            pattern=_WILDCARD_HOST,
            hint="a lower-case DNS name, optionally '*.' first",
        )
        if h is not None and h not in hostnames:
            hostnames.append(h)
    raw_rules = spec.get("rules")
    if raw_rules is None:
        raw_rules = [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}]
    items = r.seq(raw_rules, "spec.rules", max_items=16)
    if r.problems:
        return Parsed(None, tuple(r.problems))
    rules: list[Rule] = []
    invalid: list[tuple[str, str]] = []
    total = 0
    for i, item in enumerate(items):
        rr = _Reader()
        rule, n = _rule(rr, item, f"spec.rules[{i}]", i)
        total += n
        if rule is not None:
            rules.append(rule)
        invalid.extend((p.path, p.message) for p in rr.problems)
    if total > 128:
        r.bad(
            "spec.rules",
            "While 16 rules and 64 matches per rule are allowed, the total number of matches "
            f"across all rules in a route must be less than 128 (got {total})",
        )
        return Parsed(None, tuple(r.problems))
    names = [ru.name for ru in rules if ru.name]
    if len(set(names)) != len(names):
        r.bad("spec.rules", "Rule name must be unique within the route")
        return Parsed(None, tuple(r.problems))
    route = HTTPRoute(
        ttl=_ttl(obj, r),
        meta=meta,
        spec=HTTPRouteSpec(
            parent_refs=tuple(parents),
            hostnames=tuple(hostnames),
            rules=tuple(rules),
            invalid_rules=tuple(invalid),
        ),
    )
    return Parsed(route, (*r.problems, *(FieldProblem(p, m) for p, m in invalid)))
