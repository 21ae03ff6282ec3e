"""The Gateway API decision: from every member's objects to served rules and status.

A purely computational function (:func:`gateway_state`). Inputs are what the sources saw in all
member clusters; outputs are the compiled route table for the proxy, the hostnames to publish in
DNS and the status of every copy of every object, as ``kubectl describe`` shows it.

The global Gateway is any Gateway whose GatewayClass (in the same cluster) names the controller
``ingressfed.io/gateway-controller``; copies of one Gateway (namespace/name) in several members
are one Gateway (see :mod:`.merge` and docs/adr). Its listeners describe what the global address
serves; its addresses are the federation's global addresses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from ingressfed.gateway.backends import BackendIndex
from ingressfed.gateway.conditions import Condition, Reason
from ingressfed.gateway.hostnames import ANY, effective_hostnames
from ingressfed.gateway.merge import Merged, merge_copies
from ingressfed.gateway.resources import (
    CONTROLLER_NAME,
    GATEWAY_GROUP,
    FilterType,
    FromNamespaces,
    Gateway,
    GatewayClass,
    HTTPRoute,
    Listener,
    ParentRef,
    ReferenceGrant,
    Rule,
)
from ingressfed.gateway.table import (
    EMPTY_GATEWAY_TABLE,
    GatewayTable,
    RouteAction,
    ServedRule,
    WeightedBackend,
    build_gateway_table,
)
from ingressfed.model import ServiceObservation

__all__ = [
    "COPIES_CONFLICT",
    "GatewayInputs",
    "GatewayState",
    "GatewayStatus",
    "ListenerCertificate",
    "ListenerStatus",
    "RouteParentStatus",
    "gateway_state",
]

HTTP_ROUTE_KIND = (GATEWAY_GROUP, "HTTPRoute")
SUPPORTED_PROTOCOLS = ("HTTP", "HTTPS")
COPIES_CONFLICT = "ingressfed.io/CopiesConflict"  # condition type on every copy of a disputed object
CONFLICTING_COPIES = "ConflictingCopies"  # Accepted=False reason of a copy that is not served

ObjKey = tuple[str, str, str]  # cluster, namespace, name


@dataclass(frozen=True, slots=True)
class GatewayInputs:
    classes: tuple[GatewayClass, ...] = ()
    gateways: tuple[Gateway, ...] = ()
    routes: tuple[HTTPRoute, ...] = ()
    grants: tuple[ReferenceGrant, ...] = ()
    services: tuple[ServiceObservation, ...] = ()
    global_addresses: tuple[str, ...] = ()
    global_hostnames: tuple[str, ...] = ()
    # Ports the global proxy serves per listener protocol; a listener on another port is refused.
    served_ports: Mapping[str, frozenset[int]] = field(
        default_factory=lambda: {"HTTP": frozenset({80}), "HTTPS": frozenset({443})}
    )
    https_ready: bool = True  # the proxy terminates TLS for Gateway listeners
    namespace_labels: Mapping[tuple[str, str], Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RouteParentStatus:
    parent: ParentRef
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class ListenerStatus:
    name: str
    supported_kinds: tuple[tuple[str, str], ...]
    attached_routes: int
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    conditions: tuple[Condition, ...]
    listeners: tuple[ListenerStatus, ...]
    addresses: tuple[tuple[str, str], ...]  # (type, value): IPAddress | Hostname


@dataclass(frozen=True, slots=True)
class ListenerCertificate:
    """One ``certificateRef`` of an accepted HTTPS listener whose reference is allowed: the Secret
    to read (in ``cluster``, the served Gateway copy's member) and the hostnames it must serve."""

    cluster: str
    namespace: str  # the Gateway's
    gateway: str
    listener: str
    secret_namespace: str
    secret: str
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class GatewayState:
    served: tuple[ServedRule, ...] = ()
    classes: Mapping[tuple[str, str], tuple[Condition, ...]] = field(default_factory=dict)
    gateways: Mapping[ObjKey, GatewayStatus] = field(default_factory=dict)
    routes: Mapping[ObjKey, tuple[RouteParentStatus, ...]] = field(default_factory=dict)
    # (namespace, name) of each route with an accepted parent -> hostnames it serves (patterns)
    hostnames: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    # (namespace, name) -> the member clusters holding a copy
    route_clusters: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    # the Secrets HTTPS listeners serve (read by kube/tls_secrets, offered to the TLS listener)
    certificates: tuple[ListenerCertificate, ...] = ()

    @cached_property
    def table(self) -> GatewayTable:
        """The compiled matcher (built on first use: the controller needs only ``served``)."""
        return build_gateway_table(self.served) if self.served else EMPTY_GATEWAY_TABLE


def _cond(ctype: str, ok: bool, reason: str, message: str, generation: int) -> Condition:
    return Condition(type=ctype, status=ok, reason=reason, message=message, observed_generation=generation)


@dataclass(frozen=True, slots=True)
class _ListenerEval:
    listener: Listener
    usable: bool  # routes may attach
    supported_kinds: tuple[tuple[str, str], ...]
    # (type, status, reason, message) before generations are known
    conditions: tuple[tuple[str, bool, str, str], ...]


def _listener_eval(gw: Gateway, inputs: GatewayInputs, index: BackendIndex) -> list[_ListenerEval]:
    out: list[_ListenerEval] = []
    by_port: dict[int, set[str]] = {}
    for lst in gw.spec.listeners:
        by_port.setdefault(lst.port, set()).add(lst.protocol)
    has_address = bool(inputs.global_addresses or inputs.global_hostnames)
    for lst in gw.spec.listeners:
        accepted: tuple[bool, str, str] = (True, Reason.ACCEPTED, "listener accepted")
        resolved: tuple[bool, str, str] = (True, Reason.RESOLVED_REFS, "references resolved")
        conflicted: tuple[bool, str, str] = (False, Reason.NO_CONFLICTS, "no conflicts")
        programmed: tuple[bool, str, str] = (True, Reason.PROGRAMMED, "served by the global proxy")
        if lst.protocol not in SUPPORTED_PROTOCOLS:
            accepted = (
                False,
                Reason.UNSUPPORTED_PROTOCOL,
                f"protocol {lst.protocol} is not supported; use HTTP or HTTPS",
            )
        elif lst.port not in inputs.served_ports.get(lst.protocol, frozenset()):
            ports = (
                ", ".join(str(p) for p in sorted(inputs.served_ports.get(lst.protocol, frozenset())))
                or "none"
            )
            accepted = (
                False,
                Reason.PORT_UNAVAILABLE,
                f"the global proxy serves {lst.protocol} on port(s) {ports}, not {lst.port}; "
                "change the listener port",
            )
        if len(by_port[lst.port] & set(SUPPORTED_PROTOCOLS)) > 1:
            conflicted = (True, Reason.PROTOCOL_CONFLICT, f"HTTP and HTTPS listeners share port {lst.port}")
            accepted = (False, Reason.PROTOCOL_CONFLICT, conflicted[2])
        kinds: tuple[tuple[str, str], ...] = (HTTP_ROUTE_KIND,)
        if lst.allowed_kinds:
            kinds = tuple(k for k in lst.allowed_kinds if k == HTTP_ROUTE_KIND)
            bad = [f"{g}/{k}" for g, k in lst.allowed_kinds if (g, k) != HTTP_ROUTE_KIND]
            if bad:
                resolved = (
                    False,
                    Reason.INVALID_ROUTE_KINDS,
                    f"route kinds {', '.join(bad)} are not supported; only HTTPRoute",
                )
        if lst.protocol == "HTTPS":
            for i, ref in enumerate(lst.certificate_refs):
                ns = ref.namespace or gw.meta.namespace
                if (ref.group, ref.kind) != ("", "Secret"):
                    resolved = (
                        False,
                        Reason.INVALID_CERTIFICATE_REF,
                        f"tls.certificateRefs[{i}]: kind {ref.kind} is not supported; refer to a Secret",
                    )
                elif ns != gw.meta.namespace and not index.permitted(
                    cluster=gw.meta.cluster,
                    from_kind="Gateway",
                    from_namespace=gw.meta.namespace,
                    to_group="",
                    to_kind="Secret",
                    to_namespace=ns,
                    to_name=ref.name,
                ):
                    resolved = (
                        False,
                        Reason.REF_NOT_PERMITTED,
                        f"tls.certificateRefs[{i}]: Secret {ns}/{ref.name} is in another namespace and no "
                        f"ReferenceGrant in {ns} allows Gateways from {gw.meta.namespace}",
                    )
            if lst.tls_mode == "Passthrough":
                accepted = (
                    False,
                    Reason.UNSUPPORTED_PROTOCOL,
                    "tls.mode Passthrough is not supported on HTTPS",
                )
        usable = accepted[0]
        if not usable:
            programmed = (False, Reason.INVALID, accepted[2])
        elif not resolved[0]:
            programmed = (False, Reason.INVALID, resolved[2])
        elif lst.protocol == "HTTPS" and not inputs.https_ready:
            programmed = (
                False,
                Reason.PENDING,
                "the global proxy does not terminate TLS for Gateway listeners yet",
            )
        elif not has_address:
            programmed = (False, Reason.PENDING, "the federation has no global address yet")
        out.append(
            _ListenerEval(
                listener=lst,
                usable=usable,
                supported_kinds=kinds,
                conditions=(
                    (Reason.ACCEPTED, *accepted),
                    (Reason.RESOLVED_REFS, *resolved),
                    (Reason.CONFLICTED, *conflicted),
                    (Reason.PROGRAMMED, *programmed),
                ),
            )
        )
    return out


@dataclass(slots=True)
class _GatewayView:
    merged: Merged[Gateway]
    listeners: list[_ListenerEval]
    attached: dict[str, int]
    hosts: dict[str, set[str]] = field(default_factory=dict)  # listener -> attached route hostnames


def _addresses(inputs: GatewayInputs) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for a in inputs.global_addresses:
        try:
            out.append(("IPAddress", ipaddress.ip_address(a).compressed))
        except ValueError:
            continue
    out.extend(("Hostname", h.rstrip(".").lower()) for h in inputs.global_hostnames)
    return tuple(out)


def _namespace_allowed(lst: Listener, gw: Gateway, route: HTTPRoute, inputs: GatewayInputs) -> bool:
    if lst.allowed_from is FromNamespaces.ALL:
        return True
    if lst.allowed_from is FromNamespaces.SAME:
        return route.meta.namespace == gw.meta.namespace
    labels = inputs.namespace_labels.get((route.meta.cluster, route.meta.namespace))
    return lst.selector is not None and lst.selector.matches(dict(labels or {}))


@dataclass(frozen=True, slots=True)
class _Attachment:
    accepted: tuple[bool, str, str]
    listeners: tuple[tuple[Listener, tuple[str, ...]], ...] = ()


def _attach(ref: ParentRef, route: HTTPRoute, view: _GatewayView, inputs: GatewayInputs) -> _Attachment:
    gw = view.merged.winner
    where = f"Gateway {gw.meta.namespace}/{gw.meta.name}"
    candidates = [
        ev
        for ev in view.listeners
        if (ref.section_name is None or ev.listener.name == ref.section_name)
        and (ref.port is None or ev.listener.port == ref.port)
    ]
    if not candidates:
        what = " and ".join(
            x
            for x in (
                f"sectionName {ref.section_name}" if ref.section_name else "",
                f"port {ref.port}" if ref.port else "",
            )
            if x
        )
        return _Attachment((False, Reason.NO_MATCHING_PARENT, f"{where} has no listener with {what}"))
    usable = [ev for ev in candidates if ev.usable]
    if not usable:
        names = ", ".join(ev.listener.name for ev in candidates)
        return _Attachment(
            (False, Reason.NOT_ALLOWED_BY_LISTENERS, f"listener(s) {names} of {where} are not accepted")
        )
    allowed = [
        ev
        for ev in usable
        if HTTP_ROUTE_KIND in ev.supported_kinds and _namespace_allowed(ev.listener, gw, route, inputs)
    ]
    if not allowed:
        return _Attachment(
            (
                False,
                Reason.NOT_ALLOWED_BY_LISTENERS,
                f"no listener of {where} allows HTTPRoutes from namespace {route.meta.namespace} "
                "(see the listeners' allowedRoutes)",
            )
        )
    attached: list[tuple[Listener, tuple[str, ...]]] = []
    for ev in allowed:
        hosts = effective_hostnames(ev.listener.hostname, route.spec.hostnames)
        if hosts:
            attached.append((ev.listener, hosts))
    if not attached:
        listener_hosts = ", ".join(ev.listener.hostname or "*" for ev in allowed)
        return _Attachment(
            (
                False,
                Reason.NO_MATCHING_LISTENER_HOSTNAME,
                f"none of the route's hostnames {', '.join(route.spec.hostnames)} intersects the listener "
                f"hostnames ({listener_hosts}) of {where}",
            )
        )
    names = ", ".join(lst.name for lst, _ in attached)
    return _Attachment((True, Reason.ACCEPTED, f"accepted by {where} (listeners {names})"), tuple(attached))


def _rule_action(
    route: HTTPRoute, rule: Rule, index: BackendIndex, failures: list[tuple[str, str]]
) -> RouteAction:
    ns_name = f"{route.meta.namespace}/{route.meta.name}"
    req = resp = None
    redirect = rewrite = None
    for f in rule.filters:
        if f.type is FilterType.REQUEST_HEADER_MODIFIER:
            req = f.headers
        elif f.type is FilterType.RESPONSE_HEADER_MODIFIER:
            resp = f.headers
        elif f.type is FilterType.REQUEST_REDIRECT:
            redirect = f.redirect
        elif f.type is FilterType.URL_REWRITE:
            rewrite = f.rewrite
    backends: list[WeightedBackend] = []
    for i, ref in enumerate(rule.backend_refs):
        res = index.resolve(ref, route_namespace=route.meta.namespace)
        if res.reason is not None:
            failures.append((res.reason, f"spec.rules[{rule.index}].backendRefs[{i}]: {res.message}"))
        b_req = next((f.headers for f in ref.filters if f.type is FilterType.REQUEST_HEADER_MODIFIER), None)
        b_resp = next((f.headers for f in ref.filters if f.type is FilterType.RESPONSE_HEADER_MODIFIER), None)
        backends.append(
            WeightedBackend(
                weight=ref.weight,
                service=f"{ref.namespace or route.meta.namespace}/{ref.name}:{ref.port or 80}",
                backends=res.backends,
                error=res.message if res.reason is not None else None,
                request_headers=b_req,
                response_headers=b_resp,
            )
        )
    return RouteAction(
        route=ns_name,
        rule=rule.index,
        backends=tuple(backends),
        request_headers=req,
        response_headers=resp,
        redirect=redirect,
        rewrite=rewrite,
    )


def _route_decision(
    *,
    merged: Merged[HTTPRoute],
    views: Mapping[tuple[str, str], _GatewayView],
    inputs: GatewayInputs,
    index: BackendIndex,
    served: list[ServedRule],
    hostnames: dict[tuple[str, str], tuple[str, ...]],
) -> list[tuple[ParentRef, list[tuple[str, bool, str, str]]]]:
    """Conditions per parent (before generations) for the served definition; fills ``served``."""
    route = merged.winner
    failures: list[tuple[str, str]] = []
    actions = [(rule, _rule_action(route, rule, index, failures)) for rule in route.spec.rules]
    resolved = (
        (True, Reason.RESOLVED_REFS, "all backendRefs resolved")
        if not failures
        else (False, failures[0][0], "; ".join(msg for _, msg in failures))
    )
    out: list[tuple[ParentRef, list[tuple[str, bool, str, str]]]] = []
    served_hosts: list[str] = []
    for ref in route.spec.parent_refs:
        if ref.group != GATEWAY_GROUP or ref.kind != "Gateway":
            continue  # another kind of parent: not ours to report on
        view = views.get((ref.namespace or route.meta.namespace, ref.name))
        if view is None:
            continue  # not a Gateway of ours (or not seen yet): its controller reports
        att = _attach(ref, route, view, inputs)
        accepted = att.accepted
        conds: list[tuple[str, bool, str, str]] = []
        if accepted[0] and not route.spec.rules and route.spec.invalid_rules:
            accepted = (
                False,
                Reason.UNSUPPORTED_VALUE,
                "; ".join(f"{p}: {m}" for p, m in route.spec.invalid_rules),
            )
        conds.append((Reason.ACCEPTED, *accepted))
        conds.append((Reason.RESOLVED_REFS, *resolved))
        if route.spec.invalid_rules and route.spec.rules:
            conds.append(
                (
                    Reason.PARTIALLY_INVALID,
                    True,
                    Reason.UNSUPPORTED_VALUE,
                    "rules dropped: " + "; ".join(f"{p}: {m}" for p, m in route.spec.invalid_rules),
                )
            )
        if accepted[0]:
            for lst, hosts in att.listeners:
                view.attached[lst.name] = view.attached.get(lst.name, 0) + 1
                view.hosts.setdefault(lst.name, set()).update(h for h in hosts if h != ANY)
                served_hosts.extend(h for h in hosts if h != ANY)
                for rule, action in actions:
                    for mi, match in enumerate(rule.matches):
                        served.append(
                            ServedRule(
                                port=lst.port,
                                hostnames=hosts,
                                match=match,
                                action=action,
                                created=route.meta.created,
                                match_index=mi,
                            )
                        )
        out.append((ref, conds))
    if served_hosts:
        hostnames[route.meta.key] = tuple(sorted(set(served_hosts)))
    return out


def _certificates(view: _GatewayView) -> list[ListenerCertificate]:
    """The Secrets of accepted HTTPS listeners with resolved references, for the hostnames each
    serves: the listener's hostname, else the hostnames of the routes attached to it."""
    gw = view.merged.winner
    out: list[ListenerCertificate] = []
    for ev in view.listeners:
        lst = ev.listener
        if lst.protocol != "HTTPS" or not ev.usable or not ev.conditions[1][1]:
            continue
        hosts = (lst.hostname,) if lst.hostname else tuple(sorted(view.hosts.get(lst.name, ())))
        if not hosts:
            continue
        out.extend(
            ListenerCertificate(
                cluster=gw.meta.cluster,
                namespace=gw.meta.namespace,
                gateway=gw.meta.name,
                listener=lst.name,
                secret_namespace=ref.namespace or gw.meta.namespace,
                secret=ref.name,
                hosts=hosts,
            )
            for ref in lst.certificate_refs
        )
    return out


def gateway_state(inputs: GatewayInputs) -> GatewayState:
    """Everything the Gateway API objects call for (pure)."""
    ours = {(c.meta.cluster, c.meta.name) for c in inputs.classes if c.controller_name == CONTROLLER_NAME}
    classes = {
        (c.meta.cluster, c.meta.name): (
            _cond(Reason.ACCEPTED, True, Reason.ACCEPTED, f"handled by {CONTROLLER_NAME}", c.meta.generation),
        )
        for c in inputs.classes
        if c.controller_name == CONTROLLER_NAME
    }
    index = BackendIndex(inputs.services, inputs.grants)
    gateways = [g for g in inputs.gateways if (g.meta.cluster, g.spec.class_name) in ours]
    views: dict[tuple[str, str], _GatewayView] = {}
    for gmerged in merge_copies(gateways, lambda g: g.spec):
        views[gmerged.key] = _GatewayView(
            merged=gmerged, listeners=_listener_eval(gmerged.winner, inputs, index), attached={}
        )

    served: list[ServedRule] = []
    hostnames: dict[tuple[str, str], tuple[str, ...]] = {}
    route_status: dict[ObjKey, tuple[RouteParentStatus, ...]] = {}
    route_clusters: dict[tuple[str, str], tuple[str, ...]] = {}
    for merged in merge_copies(inputs.routes, lambda r: r.spec):
        decided = _route_decision(
            merged=merged, views=views, inputs=inputs, index=index, served=served, hostnames=hostnames
        )
        route_clusters[merged.winner.meta.key] = tuple(sorted(set(merged.clusters)))
        conflict = merged.conflict_message()
        disputed = {id(c) for c in merged.conflicting}
        for copy in merged.copies:
            gen = copy.meta.generation
            parents: list[RouteParentStatus] = []
            if id(copy) in disputed:
                # Status for the parents this copy names, saying it is not the served definition.
                for ref in copy.spec.parent_refs:
                    if (ref.namespace or copy.meta.namespace, ref.name) not in views:
                        continue
                    parents.append(
                        RouteParentStatus(
                            parent=ref,
                            conditions=(
                                _cond(Reason.ACCEPTED, False, CONFLICTING_COPIES, conflict, gen),
                                _cond(COPIES_CONFLICT, True, "SpecDiffers", conflict, gen),
                            ),
                        )
                    )
            else:
                for ref, conds in decided:
                    cs = [_cond(t, ok, reason, msg, gen) for t, ok, reason, msg in conds]
                    if conflict:
                        cs.append(_cond(COPIES_CONFLICT, True, "SpecDiffers", conflict, gen))
                    parents.append(RouteParentStatus(parent=ref, conditions=tuple(cs)))
            route_status[(copy.meta.cluster, copy.meta.namespace, copy.meta.name)] = tuple(parents)

    gateway_status: dict[ObjKey, GatewayStatus] = {}
    addresses = _addresses(inputs)
    for view in views.values():
        gm = view.merged
        conflict = gm.conflict_message()
        usable = [ev for ev in view.listeners if ev.usable]
        invalid = [ev.listener.name for ev in view.listeners if not ev.usable]
        for gcopy in gm.copies:
            gen = gcopy.meta.generation
            if gcopy in gm.conflicting:
                gconds = (
                    _cond(Reason.ACCEPTED, False, CONFLICTING_COPIES, conflict, gen),
                    _cond(Reason.PROGRAMMED, False, CONFLICTING_COPIES, conflict, gen),
                    _cond(COPIES_CONFLICT, True, "SpecDiffers", conflict, gen),
                )
                gateway_status[(gcopy.meta.cluster, gcopy.meta.namespace, gcopy.meta.name)] = GatewayStatus(
                    conditions=gconds, listeners=(), addresses=addresses
                )
                continue
            if not usable:
                accepted = _cond(
                    Reason.ACCEPTED, False, Reason.LISTENERS_NOT_VALID, "no listener is valid", gen
                )
            elif invalid:
                accepted = _cond(
                    Reason.ACCEPTED,
                    True,
                    Reason.LISTENERS_NOT_VALID,
                    f"listeners not valid: {', '.join(invalid)}",
                    gen,
                )
            else:
                accepted = _cond(Reason.ACCEPTED, True, Reason.ACCEPTED, f"handled by {CONTROLLER_NAME}", gen)
            if not addresses:
                programmed = _cond(
                    Reason.PROGRAMMED,
                    False,
                    Reason.ADDRESS_NOT_ASSIGNED,
                    "the federation has no global address yet (the proxy Service address or the configured "
                    "global addresses)",
                    gen,
                )
            elif not any(ev.conditions[3][1] for ev in view.listeners):
                programmed = _cond(Reason.PROGRAMMED, False, Reason.INVALID, "no listener is programmed", gen)
            else:
                programmed = _cond(
                    Reason.PROGRAMMED, True, Reason.PROGRAMMED, "served at the global address", gen
                )
            conds_list = [accepted, programmed]
            if conflict:
                conds_list.append(_cond(COPIES_CONFLICT, True, "SpecDiffers", conflict, gen))
            listeners = tuple(
                ListenerStatus(
                    name=ev.listener.name,
                    supported_kinds=ev.supported_kinds,
                    attached_routes=view.attached.get(ev.listener.name, 0),
                    conditions=tuple(_cond(t, ok, reason, msg, gen) for t, ok, reason, msg in ev.conditions),
                )
                for ev in view.listeners
            )
            gateway_status[(gcopy.meta.cluster, gcopy.meta.namespace, gcopy.meta.name)] = GatewayStatus(
                conditions=tuple(conds_list), listeners=listeners, addresses=addresses
            )

    return GatewayState(
        certificates=tuple(c for view in views.values() for c in _certificates(view)),
        served=tuple(served),
        classes=classes,
        gateways=gateway_status,
        routes=route_status,
        hostnames=hostnames,
        route_clusters=route_clusters,
    )
