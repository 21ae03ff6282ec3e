"""Status conditions as the Gateway API defines them (types, reasons) and their wire form.

``lastTransitionTime`` changes only when a condition's status changes, as Kubernetes users
expect from ``kubectl describe``; the time is an argument (``now``), never read here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Condition",
    "Reason",
    "condition_dicts",
]


class Reason:
    """Standard condition types and reasons (gateway.networking.k8s.io/v1)."""

    ACCEPTED = "Accepted"
    PROGRAMMED = "Programmed"
    RESOLVED_REFS = "ResolvedRefs"
    CONFLICTED = "Conflicted"
    PARTIALLY_INVALID = "PartiallyInvalid"
    # Route Accepted=False
    NOT_ALLOWED_BY_LISTENERS = "NotAllowedByListeners"
    NO_MATCHING_LISTENER_HOSTNAME = "NoMatchingListenerHostname"
    NO_MATCHING_PARENT = "NoMatchingParent"
    UNSUPPORTED_VALUE = "UnsupportedValue"
    # Route ResolvedRefs=False
    REF_NOT_PERMITTED = "RefNotPermitted"
    INVALID_KIND = "InvalidKind"
    BACKEND_NOT_FOUND = "BackendNotFound"
    # Gateway / Listener
    LISTENERS_NOT_VALID = "ListenersNotValid"
    INVALID = "Invalid"
    ADDRESS_NOT_ASSIGNED = "AddressNotAssigned"
    PENDING = "Pending"
    PORT_UNAVAILABLE = "PortUnavailable"
    UNSUPPORTED_PROTOCOL = "UnsupportedProtocol"
    INVALID_CERTIFICATE_REF = "InvalidCertificateRef"
    INVALID_ROUTE_KINDS = "InvalidRouteKinds"
    NO_CONFLICTS = "NoConflicts"
    HOSTNAME_CONFLICT = "HostnameConflict"
    PROTOCOL_CONFLICT = "ProtocolConflict"
    # GatewayClass
    UNSUPPORTED = "Unsupported"
    # ingressfed: copies of one object in several member clusters disagree
    COPIES_CONFLICT = "ingressfed.io/CopiesConflict"
    # ServiceExport (MCS)
    EXPORTED = "Exported"
    VALID = "Valid"


MAX_MESSAGE = 32768  # the CRDs' maxLength for a condition message


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str
    observed_generation: int

    def to_dict(self, transition: str) -> dict[str, Any]:
        return {
            "type": self.type,
            "status": "True" if self.status else "False",
            "reason": self.reason,
            "message": self.message[:MAX_MESSAGE],
            "observedGeneration": self.observed_generation,
            "lastTransitionTime": transition,
        }


def condition_dicts(
    new: Sequence[Condition], old: Iterable[Mapping[str, Any]] | None, *, now: str
) -> list[dict[str, Any]]:
    """Wire conditions: ``old``'s lastTransitionTime kept where a type's status did not change."""
    before: dict[str, Mapping[str, Any]] = {}
    for item in old or ():
        if isinstance(item, Mapping) and isinstance(item.get("type"), str):
            before[item["type"]] = item
    out: list[dict[str, Any]] = []
    for c in new:
        prev = before.get(c.type)
        status = "True" if c.status else "False"
        keep = (
            prev is not None
            and prev.get("status") == status
            and isinstance(prev.get("lastTransitionTime"), str)
        )
        out.append(c.to_dict(str(prev["lastTransitionTime"]) if keep and prev is not None else now))
    return out
