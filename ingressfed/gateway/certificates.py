"""HTTPS Gateway listeners' certificates: which Secrets to read, and what a bad one does to status.

Purely computational. :func:`listener_tls_refs` turns the decision's ``certificates`` into the
``TlsRef`` values the Secret reader already serves Ingress ``spec.tls`` with (same reading path,
same validation, same offers to the TLS listener). :func:`with_certificate_problems` is the other
direction: a Secret the reader found missing, of the wrong type, expired, not covering the
listener's hostnames... makes that listener ``ResolvedRefs=False InvalidCertificateRef`` and
``Programmed=False``, as the Gateway API asks, on every copy of the Gateway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from ingressfed.gateway.conditions import Condition, Reason
from ingressfed.gateway.state import GatewayState, GatewayStatus, ListenerStatus
from ingressfed.tls.secrets import SecretProblem, TlsRef

__all__ = ["listener_tls_refs", "with_certificate_problems"]

GATEWAY_KIND = "Gateway"


def listener_tls_refs(state: GatewayState) -> list[TlsRef]:
    return [
        TlsRef(
            cluster=c.cluster,
            namespace=c.namespace,
            ingress=c.gateway,
            secret=c.secret,
            hosts=c.hosts,
            kind=GATEWAY_KIND,
            secret_namespace=c.secret_namespace,
            listener=c.listener,
        )
        for c in state.certificates
    ]


def _flip(cond: Condition, reason: str, message: str) -> Condition:
    return replace(cond, status=False, reason=reason, message=message)


def _listener(st: ListenerStatus, message: str) -> ListenerStatus:
    flips = {Reason.RESOLVED_REFS: Reason.INVALID_CERTIFICATE_REF, Reason.PROGRAMMED: Reason.INVALID}
    conds = tuple(_flip(c, flips[c.type], message) if c.type in flips else c for c in st.conditions)
    return replace(st, conditions=conds)


def _gateway(st: GatewayStatus, bad: Mapping[str, str]) -> GatewayStatus:
    listeners = tuple(_listener(ls, bad[ls.name]) if ls.name in bad else ls for ls in st.listeners)
    programmed = any(c.type == Reason.PROGRAMMED and c.status for ls in listeners for c in ls.conditions)
    conds = tuple(
        _flip(c, Reason.INVALID, "no listener is programmed")
        if c.type == Reason.PROGRAMMED and c.status and not programmed
        else c
        for c in st.conditions
    )
    return replace(st, listeners=listeners, conditions=conds)


def with_certificate_problems(state: GatewayState, problems: Iterable[SecretProblem]) -> GatewayState:
    """``state`` with the listeners whose Secrets cannot serve marked so (unchanged when none)."""
    bad: dict[tuple[str, str], dict[str, str]] = {}
    for p in problems:
        if p.ref.kind != GATEWAY_KIND:
            continue
        per = bad.setdefault((p.ref.namespace, p.ref.ingress), {})
        note = f"tls.certificateRefs: {p.message()}"
        per[p.ref.listener] = f"{per[p.ref.listener]}; {note}" if p.ref.listener in per else note
    if not bad:
        return state
    gateways = {
        key: _gateway(st, bad[(key[1], key[2])]) if (key[1], key[2]) in bad else st
        for key, st in state.gateways.items()
    }
    return replace(state, gateways=gateways)
