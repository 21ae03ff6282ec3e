"""backendRefs resolved across member clusters: which clusters serve each Service, or why none.

A backendRef names a Service by namespace and name, as Multi-Cluster Services' namespace
sameness has it: it is served by every member cluster where that Service is federated (the
opt-in label or a ServiceExport) and has a load-balancer address, so a route's weights split
traffic between Services and the proxy ranks each Service's clusters per client. A reference to
another namespace needs a ReferenceGrant there; the grant counts for the cluster it is in, so
each cluster's namespace owner consents for their own Service.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ingressfed.gateway.conditions import Reason
from ingressfed.gateway.resources import GATEWAY_GROUP, BackendRef, ReferenceGrant
from ingressfed.model import Backend, ServiceObservation

__all__ = ["BackendIndex", "Resolution"]


@dataclass(frozen=True, slots=True)
class Resolution:
    backends: tuple[Backend, ...] = ()
    reason: str | None = None  # a ResolvedRefs=False reason, None when resolved
    message: str = ""


class BackendIndex:
    """Services and ReferenceGrants of the whole federation, indexed for resolution."""

    def __init__(self, services: Iterable[ServiceObservation], grants: Iterable[ReferenceGrant]) -> None:
        self._services: dict[tuple[str, str], list[ServiceObservation]] = {}
        for s in services:
            self._services.setdefault((s.namespace, s.name), []).append(s)
        self._resolved: dict[tuple[BackendRef, str], Resolution] = {}
        self._grants: dict[tuple[str, str], list[ReferenceGrant]] = {}
        for g in grants:
            self._grants.setdefault((g.meta.cluster, g.meta.namespace), []).append(g)

    def permitted(
        self,
        *,
        cluster: str,
        from_kind: str,
        from_namespace: str,
        to_group: str,
        to_kind: str,
        to_namespace: str,
        to_name: str,
    ) -> bool:
        return any(
            g.permits(
                from_group=GATEWAY_GROUP,
                from_kind=from_kind,
                from_namespace=from_namespace,
                to_group=to_group,
                to_kind=to_kind,
                to_name=to_name,
            )
            for g in self._grants.get((cluster, to_namespace), ())
        )

    def granted_anywhere(
        self,
        *,
        from_kind: str,
        from_namespace: str,
        to_group: str,
        to_kind: str,
        to_namespace: str,
        to_name: str,
    ) -> bool:
        clusters = {c for c, ns in self._grants if ns == to_namespace}
        return any(
            self.permitted(
                cluster=c,
                from_kind=from_kind,
                from_namespace=from_namespace,
                to_group=to_group,
                to_kind=to_kind,
                to_namespace=to_namespace,
                to_name=to_name,
            )
            for c in clusters
        )

    def resolve(self, ref: BackendRef, *, route_namespace: str) -> Resolution:
        key = (ref, route_namespace)
        got = self._resolved.get(key)
        if got is None:
            got = self._resolved[key] = self._resolve(ref, route_namespace)
        return got

    def _resolve(self, ref: BackendRef, route_namespace: str) -> Resolution:
        ns = ref.namespace or route_namespace
        where = f"{ref.kind} {ns}/{ref.name}"
        if (ref.group, ref.kind) != ("", "Service"):
            group = ref.group or "core"
            return Resolution(
                reason=Reason.INVALID_KIND,
                message=f"backendRef {ref.name}: kind {ref.kind} of group {group} is not supported; "
                "only Services",
            )
        found: Sequence[ServiceObservation] = self._services.get((ns, ref.name), ())
        if not found:
            return Resolution(
                reason=Reason.BACKEND_NOT_FOUND,
                message=(
                    f"{where} is not federated in any member cluster: label it "
                    "federation.ingressfed.io/enabled=true or create a ServiceExport for it"
                ),
            )
        if ns != route_namespace:
            found = [
                s
                for s in found
                if self.permitted(
                    cluster=s.cluster,
                    from_kind="HTTPRoute",
                    from_namespace=route_namespace,
                    to_group="",
                    to_kind="Service",
                    to_namespace=ns,
                    to_name=ref.name,
                )
            ]
            if not found:
                return Resolution(
                    reason=Reason.REF_NOT_PERMITTED,
                    message=(
                        f"{where} is in another namespace and no ReferenceGrant in {ns} allows HTTPRoutes "
                        f"from {route_namespace} to refer to it"
                    ),
                )
        port = ref.port or 80
        backends = []
        for s in sorted(found, key=lambda o: o.cluster):
            target = s.addresses[0] if s.addresses else (s.hostnames[0] if s.hostnames else None)
            if target is not None:
                backends.append(Backend(cluster=s.cluster, host=target, port=port))
        return Resolution(backends=tuple(backends))
