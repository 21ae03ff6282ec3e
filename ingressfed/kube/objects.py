"""Kubernetes objects (plain dicts from the API) mapped to what the core needs.

Purely computational: no I/O, no kubernetes imports. Every function accepts
whatever the API server (or an attacker with create rights in a member
cluster) sent: missing fields, wrong types, hostile names, giant strings. A
bad object never raises; it maps to ``None`` plus a :class:`Problem` naming
the field, which the status writer turns into a Kubernetes Event.

Only the fields the core needs are kept, so 10,000 objects in several
clusters stay small in memory.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from geo.select import dns_steering, steering_from_annotations
from ingressfed.model import (
    IngressObservation,
    IngressRule,
    IngressTLS,
    ServiceObservation,
    Steering,
)

__all__ = [
    "ACME_KEY",
    "DNS_NAMES_KEY",
    "ENABLED_KEY",
    "INGRESS_CLASS",
    "SERVICE_NAME_LABEL",
    "TTL_KEY",
    "Mapped",
    "NodeFacts",
    "ObjectRef",
    "Problem",
    "Selection",
    "SliceFacts",
    "endpoint_slice_from",
    "ingress_from",
    "is_dns_label",
    "is_dns_subdomain",
    "is_federated",
    "node_from",
    "ref_of",
    "service_from",
]

ENABLED_KEY = "federation.ingressfed.io/enabled"
TTL_KEY = "federation.ingressfed.io/ttl"
DNS_NAMES_KEY = "federation.ingressfed.io/dns-names"
INGRESS_CLASS = "ingressfed"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
REGION_LABELS = ("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region")
ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")

# Bounds that keep a hostile object from costing memory or CPU downstream.
MAX_ADDRESSES = 64
MAX_RULES = 256
MAX_ENDPOINTS = 10_000  # per slice; the API server caps slices at 1000, be lenient
MAX_TTL = 86_400
MAX_REASON = 200  # a problem message quotes at most this much of a bad value

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
_TOPOLOGY_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?\Z")
_PATH_TYPES = frozenset({"Prefix", "Exact", "ImplementationSpecific"})

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """Which object a problem is about (``name`` may be "" when the object had none)."""

    kind: str
    namespace: str
    name: str
    uid: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class Problem:
    """Why (part of) an object could not be used; ``reason`` names the field and the fix."""

    ref: ObjectRef
    reason: str


@dataclass(frozen=True, slots=True)
class Mapped(Generic[T]):
    """A mapping result: ``value`` None means not federated or unusable; see ``problems``."""

    value: T | None
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True, slots=True)
class Selection:
    """Which objects are federated besides those that opt in themselves."""

    namespaces: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SliceFacts:
    """An EndpointSlice reduced to the count the core needs."""

    namespace: str
    name: str
    service: str  # "" when the slice has no kubernetes.io/service-name label
    ready: int


@dataclass(frozen=True, slots=True)
class NodeFacts:
    name: str
    region: str
    zone: str


def is_dns_label(value: object) -> bool:
    return isinstance(value, str) and _LABEL.match(value) is not None


def is_dns_subdomain(value: object, *, wildcard: bool = False) -> bool:
    """RFC 1123 subdomain (lower case, <= 253); ``*.`` first label when ``wildcard``."""
    if not isinstance(value, str) or not value or len(value) > 253:
        return False
    labels = value.split(".")
    if wildcard and labels[0] == "*" and len(labels) > 1:
        labels = labels[1:]
    return all(_LABEL.match(label) for label in labels)


def _quote(value: object) -> str:
    text = repr(value)
    return text if len(text) <= MAX_REASON else text[:MAX_REASON] + "..."


def _mapping(value: object) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def _str_map(value: object) -> Mapping[str, Any]:
    """Labels/annotations: anything but a mapping counts as empty."""
    return value if isinstance(value, Mapping) else {}


def ref_of(obj: object, kind: str) -> ObjectRef:
    """The best identification a (possibly hostile) object allows, never raising."""
    meta = _mapping(obj.get("metadata")) if isinstance(obj, Mapping) else None
    if meta is None:
        return ObjectRef(kind, "", "")
    ns, name, uid = meta.get("namespace"), meta.get("name"), meta.get("uid")
    return ObjectRef(
        kind,
        ns if isinstance(ns, str) and is_dns_label(ns) else "",
        name if isinstance(name, str) and is_dns_subdomain(name) else "",
        uid if isinstance(uid, str) and len(uid) <= 64 else "",
    )


def _identity(obj: object, kind: str) -> tuple[ObjectRef, Mapping[str, Any], list[Problem]]:
    """Metadata of a namespaced object, or problems when it cannot be identified."""
    ref = ref_of(obj, kind)
    problems: list[Problem] = []
    meta = _mapping(obj.get("metadata")) if isinstance(obj, Mapping) else None
    if meta is None:
        return ref, {}, [Problem(ref, "metadata is missing or not an object")]
    if not ref.namespace:
        problems.append(
            Problem(ref, f"metadata.namespace {_quote(meta.get('namespace'))} is not a DNS label")
        )
    if not ref.name:
        problems.append(Problem(ref, f"metadata.name {_quote(meta.get('name'))} is not a DNS subdomain"))
    return ref, meta, problems


def is_federated(meta: Mapping[str, Any], *, selection: Selection) -> bool:
    """Opted in by label or annotation ``federation.ingressfed.io/enabled: "true"``, or by namespace."""
    for source in (meta.get("labels"), meta.get("annotations")):
        value = _str_map(source).get(ENABLED_KEY)
        if isinstance(value, str) and value.strip().lower() == "true":
            return True
    return meta.get("namespace") in selection.namespaces


def _ttl(meta: Mapping[str, Any], ref: ObjectRef, problems: list[Problem]) -> int | None:
    raw = _str_map(meta.get("annotations")).get(TTL_KEY)
    if raw is None:
        return None
    if isinstance(raw, str) and raw.strip().isdigit() and len(raw.strip()) <= 6:
        ttl = int(raw.strip())
        if 1 <= ttl <= MAX_TTL:
            return ttl
    problems.append(
        Problem(
            ref, f"annotation {TTL_KEY} {_quote(raw)} must be whole seconds in 1..{MAX_TTL}; using default"
        )
    )
    return None


SSL_REDIRECT_KEY = "federation.ingressfed.io/ssl-redirect"


def _https_redirect(meta: Mapping[str, Any], ref: ObjectRef, problems: list[Problem]) -> bool | None:
    """``federation.ingressfed.io/ssl-redirect: "true"|"false"``: this Ingress's plain HTTP requests
    are (not) redirected to HTTPS; absent, the proxy's ``proxy.tls.redirectHttp`` decides."""
    value = _str_map(meta.get("annotations")).get(SSL_REDIRECT_KEY)
    if value is None:
        return None
    word = str(value).strip().lower()
    if word in ("true", "false"):
        return word == "true"
    problems.append(Problem(ref, f'annotation {SSL_REDIRECT_KEY} {_quote(value)} must be "true" or "false"'))
    return None


ACME_KEY = "federation.ingressfed.io/acme"


def _acme_hosts(
    meta: Mapping[str, Any],
    rules: tuple[IngressRule, ...],
    tls: tuple[IngressTLS, ...],
    ref: ObjectRef,
    problems: list[Problem],
) -> tuple[str, ...]:
    """``federation.ingressfed.io/acme``: ``"true"`` orders ACME certificates for every host of the
    rules, a comma-separated list for those of this Ingress's hosts only, ``"false"`` for none.
    A bad value is reported and opts in nothing (never a part of the list)."""
    raw = _str_map(meta.get("annotations")).get(ACME_KEY)
    if raw is None:
        return ()
    text = str(raw).strip().lower()
    if text == "false":
        return ()
    own = {r.host for r in rules} | {h for entry in tls for h in entry.hosts}
    if text == "true":
        return tuple(sorted({r.host for r in rules}))
    names = [n.strip().rstrip(".") for n in text.split(",")]
    bad = [n for n in names if not is_dns_subdomain(n, wildcard=True)]
    if not text or bad:
        problems.append(
            Problem(
                ref,
                f'annotation {ACME_KEY} {_quote(raw)} must be "true", "false" or a comma-separated '
                "list of this Ingress's hosts; no ACME certificate is ordered for it",
            )
        )
        return ()
    foreign = sorted(set(names) - own)
    if foreign:
        problems.append(
            Problem(
                ref,
                f"annotation {ACME_KEY} names {', '.join(foreign)}, not a host of this Ingress's rules "
                "or spec.tls; list only its own hosts (no ACME certificate is ordered for it)",
            )
        )
        return ()
    return tuple(sorted(set(names)))


def _steering(meta: Mapping[str, Any], ref: ObjectRef, problems: list[Problem]) -> Steering | None:
    """The Ingress's steering policy from its annotations (issue 11); a bad one is reported and
    the default policy applies."""
    try:
        return steering_from_annotations(_str_map(meta.get("annotations")))
    except ValueError as exc:
        problems.append(Problem(ref, f"{exc}; using the default steering policy"))
        return None


def _lb_targets(
    status: object, ref: ObjectRef, problems: list[Problem], field: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """IP addresses and hostnames of ``status.loadBalancer.ingress``."""
    outer = _mapping(status)
    lb = _mapping(outer.get("loadBalancer")) if outer is not None else None
    entries = lb.get("ingress") if lb else None
    if entries is None:
        return (), ()
    if not isinstance(entries, list):
        problems.append(Problem(ref, f"{field}.loadBalancer.ingress is not a list"))
        return (), ()
    addresses: set[str] = set()
    hostnames: set[str] = set()
    for i, entry in enumerate(entries[:MAX_ADDRESSES]):
        item = _mapping(entry)
        if item is None:
            problems.append(Problem(ref, f"{field}.loadBalancer.ingress[{i}] is not an object"))
            continue
        ip, host = item.get("ip"), item.get("hostname")
        if ip is not None:
            try:
                if not isinstance(ip, str) or len(ip) > 45:
                    raise ValueError(ip)
                addresses.add(ipaddress.ip_address(ip).compressed)
            except ValueError:
                problems.append(
                    Problem(ref, f"{field}.loadBalancer.ingress[{i}].ip {_quote(ip)} is not an IP")
                )
        if host is not None:
            name = host.rstrip(".").lower() if isinstance(host, str) else host
            if is_dns_subdomain(name):
                assert isinstance(name, str)
                hostnames.add(name)
            else:
                problems.append(
                    Problem(
                        ref, f"{field}.loadBalancer.ingress[{i}].hostname {_quote(host)} is not a DNS name"
                    )
                )
    if len(entries) > MAX_ADDRESSES:
        problems.append(Problem(ref, f"{field}.loadBalancer.ingress has more than {MAX_ADDRESSES} entries"))
    return tuple(sorted(addresses)), tuple(sorted(hostnames))


def service_from(
    obj: object, *, cluster: str, selection: Selection, exported: bool = False
) -> Mapped[ServiceObservation]:
    """A federated ``type: LoadBalancer`` Service; ``ready_endpoints`` is left 0 (EndpointSlices say).

    ``exported``: an MCS ServiceExport of the same name opts it in, like the label.
    """
    ref, meta, problems = _identity(obj, "Service")
    if not meta or not (exported or is_federated(meta, selection=selection)):
        return Mapped(None, tuple(problems) if not meta else ())
    if problems:
        return Mapped(None, tuple(problems))
    assert isinstance(obj, Mapping)
    spec = _mapping(obj.get("spec"))
    if spec is None or spec.get("type") != "LoadBalancer":
        kind = spec.get("type") if spec is not None else None
        return Mapped(
            None, (Problem(ref, f"spec.type is {_quote(kind)}; federation needs type LoadBalancer"),)
        )
    if not is_dns_label(ref.name):
        return Mapped(
            None, (Problem(ref, "metadata.name is not a DNS label, so it cannot be part of a DNS name"),)
        )
    ttl = _ttl(meta, ref, problems)
    addresses, hostnames = _lb_targets(obj.get("status"), ref, problems, "status")
    value = ServiceObservation(
        cluster=cluster,
        namespace=ref.namespace,
        name=ref.name,
        ready_endpoints=0,
        addresses=addresses,
        hostnames=hostnames,
        ttl=ttl,
        steering=_service_steering(meta, ref, problems),
    )
    return Mapped(value, tuple(problems))


def _service_steering(meta: Mapping[str, Any], ref: ObjectRef, problems: list[Problem]) -> Steering | None:
    """A Service's steering annotations, as far as DNS answers can follow them
    (``geo.select.dns_steering``); what only a proxy can do per request is reported."""
    steering = _steering(meta, ref, problems)
    if steering is None:
        return None
    kept, dropped = dns_steering(steering)
    if dropped:
        problems.append(
            Problem(
                ref,
                f"steering annotations: {', '.join(dropped)} apply to HTTP routes through the proxy, "
                "not to a Service's DNS records; ignored here (use an Ingress or HTTPRoute for them)",
            )
        )
    return kept


def _ingress_rules(
    spec: Mapping[str, Any], ref: ObjectRef, problems: list[Problem]
) -> tuple[IngressRule, ...]:
    raw = spec.get("rules")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(Problem(ref, "spec.rules is not a list"))
        return ()
    rules: set[IngressRule] = set()
    for i, entry in enumerate(raw[:MAX_RULES]):
        rule = _mapping(entry)
        if rule is None:
            problems.append(Problem(ref, f"spec.rules[{i}] is not an object"))
            continue
        host = rule.get("host")
        if host is None:
            # A rule without host matches every host: nothing to publish for it.
            continue
        if not is_dns_subdomain(host, wildcard=True):
            problems.append(Problem(ref, f"spec.rules[{i}].host {_quote(host)} is not a DNS name"))
            continue
        assert isinstance(host, str)
        http = _mapping(rule.get("http"))
        paths = http.get("paths") if http else None
        if not isinstance(paths, list) or not paths:
            rules.add(IngressRule(host=host))
            continue
        for j, p in enumerate(paths[:MAX_RULES]):
            item = _mapping(p)
            path = item.get("path", "/") if item else None
            path_type = item.get("pathType", "Prefix") if item else None
            if not isinstance(path, str) or not path.startswith("/") or len(path) > 2048:
                problems.append(
                    Problem(ref, f"spec.rules[{i}].http.paths[{j}].path {_quote(path)} is invalid")
                )
                continue
            if path_type not in _PATH_TYPES:
                problems.append(
                    Problem(ref, f"spec.rules[{i}].http.paths[{j}].pathType {_quote(path_type)} is invalid")
                )
                continue
            assert isinstance(path_type, str)
            rules.add(IngressRule(host=host, path=path, path_type=path_type))
    if len(raw) > MAX_RULES:
        problems.append(Problem(ref, f"spec.rules has more than {MAX_RULES} entries; the rest are ignored"))
    return tuple(sorted(rules, key=lambda r: (r.host, r.path, r.path_type)))


def _ingress_tls(
    spec: Mapping[str, Any], rules: tuple[IngressRule, ...], ref: ObjectRef, problems: list[Problem]
) -> tuple[IngressTLS, ...]:
    """``spec.tls``: each entry names a Secret in the Ingress's namespace and the hosts it serves
    (none listed: every host of the rules, as ingress controllers read it)."""
    raw = spec.get("tls")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(Problem(ref, "spec.tls is not a list"))
        return ()
    out: list[IngressTLS] = []
    for i, entry in enumerate(raw[:MAX_RULES]):
        item = _mapping(entry)
        secret = item.get("secretName") if item else None
        if not is_dns_subdomain(secret):
            problems.append(Problem(ref, f"spec.tls[{i}].secretName {_quote(secret)} is not a Secret name"))
            continue
        assert isinstance(secret, str) and item is not None
        hosts = item.get("hosts") or []
        if not isinstance(hosts, list) or not all(is_dns_subdomain(h, wildcard=True) for h in hosts):
            problems.append(Problem(ref, f"spec.tls[{i}].hosts must be a list of DNS names"))
            continue
        names = tuple(sorted({h.lower() for h in hosts})) or tuple(sorted({r.host for r in rules}))
        out.append(IngressTLS(hosts=names, secret_name=secret))
    return tuple(out)


def ingress_from(obj: object, *, cluster: str, selection: Selection) -> Mapped[IngressObservation]:
    """A federated networking.k8s.io/v1 Ingress (opted in, or ``ingressClassName: ingressfed``)."""
    ref, meta, problems = _identity(obj, "Ingress")
    if not meta:
        return Mapped(None, tuple(problems))
    assert isinstance(obj, Mapping)
    spec = _mapping(obj.get("spec"))
    by_class = spec is not None and spec.get("ingressClassName") == INGRESS_CLASS
    if not by_class and not is_federated(meta, selection=selection):
        return Mapped(None)
    if problems:
        return Mapped(None, tuple(problems))
    if spec is None:
        return Mapped(None, (Problem(ref, "spec is missing or not an object"),))
    rules = _ingress_rules(spec, ref, problems)
    if not rules:
        problems.append(Problem(ref, "spec.rules has no valid host; nothing to publish"))
        return Mapped(None, tuple(problems))
    ttl = _ttl(meta, ref, problems)
    addresses, hostnames = _lb_targets(obj.get("status"), ref, problems, "status")
    tls = _ingress_tls(spec, rules, ref, problems)
    value = IngressObservation(
        cluster=cluster,
        namespace=ref.namespace,
        name=ref.name,
        rules=rules,
        addresses=addresses,
        hostnames=hostnames,
        ttl=ttl,
        tls=tls,
        steering=_steering(meta, ref, problems),
        https_redirect=_https_redirect(meta, ref, problems),
        acme_hosts=_acme_hosts(meta, rules, tls, ref, problems),
    )
    return Mapped(value, tuple(problems))


def endpoint_slice_from(obj: object) -> Mapped[SliceFacts]:
    """Ready endpoints of one slice; ``conditions.ready`` unset counts as ready (API docs)."""
    ref, meta, problems = _identity(obj, "EndpointSlice")
    if problems:
        return Mapped(None, tuple(problems))
    assert isinstance(obj, Mapping)
    service = _str_map(meta.get("labels")).get(SERVICE_NAME_LABEL)
    if not is_dns_label(service):
        service = ""
    endpoints = obj.get("endpoints")
    ready = 0
    if isinstance(endpoints, list):
        skipped = 0
        for entry in endpoints[:MAX_ENDPOINTS]:
            item = _mapping(entry)
            addresses = item.get("addresses") if item is not None else None
            conditions = item.get("conditions", {}) if item is not None else None
            if not isinstance(addresses, list) or not addresses or not isinstance(conditions, Mapping):
                skipped += 1
                continue
            # API docs: "nil should be interpreted as ready" (unknown state, serve it).
            if conditions.get("ready") is not False:
                ready += 1
        if skipped:
            problems.append(
                Problem(ref, f"endpoints: {skipped} entries without addresses/conditions skipped")
            )
    elif endpoints is not None:
        problems.append(Problem(ref, "endpoints is not a list"))
    assert isinstance(service, str)
    return Mapped(SliceFacts(ref.namespace, ref.name, service, ready), tuple(problems))


def _topology(labels: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = labels.get(key)
        if isinstance(value, str) and _TOPOLOGY_VALUE.match(value):
            return value
    return ""


def node_from(obj: object) -> Mapped[NodeFacts]:
    """Region and zone of a node; the beta failure-domain labels are the fallback."""
    ref = ref_of(obj, "Node")
    meta = _mapping(obj.get("metadata")) if isinstance(obj, Mapping) else None
    if meta is None or not ref.name:
        return Mapped(None, (Problem(ref, "metadata.name is missing or not a DNS subdomain"),))
    labels = _str_map(meta.get("labels"))
    return Mapped(NodeFacts(ref.name, _topology(labels, REGION_LABELS), _topology(labels, ZONE_LABELS)))
