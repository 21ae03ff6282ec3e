"""Gateway API and ServiceExport status back into each member, as ``kubectl describe`` shows it.

After each reconcile the controller hands the newest :class:`GatewayState` over (``submit``);
``run`` writes what changed: ``status.parents`` entries of our controller on HTTPRoutes (other
controllers' entries are kept), Gateway and GatewayClass status of our class, and our conditions
on ServiceExports (other condition types kept). Each write reads the object first, keeps the
``lastTransitionTime`` of conditions whose status did not change, and patches ``/status`` with
the resourceVersion it read (a concurrent writer makes it retry on the next publish).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from kubernetes_asyncio.client import ApiClient

from ingressfed.gateway.certificates import with_certificate_problems
from ingressfed.gateway.conditions import Condition, condition_dicts
from ingressfed.gateway.resources import CONTROLLER_NAME, ParentRef
from ingressfed.gateway.state import GatewayState, GatewayStatus, RouteParentStatus
from ingressfed.kube.rest import KubeApiError, request_json
from ingressfed.tls.secrets import SecretProblem

__all__ = ["GatewayStatusWriter", "gateway_status_body", "parent_ref_wire", "route_parents_body"]

log = logging.getLogger(__name__)

GW = "/apis/gateway.networking.k8s.io/v1"
MCS = "/apis/multicluster.x-k8s.io/v1alpha1"

ItemKey = tuple[str, str, str, str]  # cluster, kind, namespace, name


def _now(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parent_ref_wire(ref: ParentRef) -> dict[str, Any]:
    out: dict[str, Any] = {"group": ref.group, "kind": ref.kind, "name": ref.name}
    if ref.namespace is not None:
        out["namespace"] = ref.namespace
    if ref.section_name is not None:
        out["sectionName"] = ref.section_name
    if ref.port is not None:
        out["port"] = ref.port
    return out


def _same_parent(a: object, b: Mapping[str, Any]) -> bool:
    if not isinstance(a, Mapping):
        return False
    # The API server defaults group and kind; older objects may lack them.
    norm = {"group": "gateway.networking.k8s.io", "kind": "Gateway"}
    return {**norm, **a} == {**norm, **b}


def route_parents_body(
    old_status: Mapping[str, Any] | None, parents: Sequence[RouteParentStatus], *, now: str
) -> list[dict[str, Any]]:
    """``status.parents``: other controllers' entries as they are, ours recomputed."""
    old_parents = [p for p in (old_status or {}).get("parents") or [] if isinstance(p, Mapping)]
    foreign = [dict(p) for p in old_parents if p.get("controllerName") != CONTROLLER_NAME]
    ours: list[dict[str, Any]] = []
    for p in parents:
        wire = parent_ref_wire(p.parent)
        prev = next(
            (
                o
                for o in old_parents
                if o.get("controllerName") == CONTROLLER_NAME and _same_parent(o.get("parentRef"), wire)
            ),
            None,
        )
        ours.append(
            {
                "parentRef": wire,
                "controllerName": CONTROLLER_NAME,
                "conditions": condition_dicts(
                    p.conditions, prev.get("conditions") if prev else None, now=now
                ),
            }
        )
    return foreign + ours


def gateway_status_body(
    old_status: Mapping[str, Any] | None, st: GatewayStatus, *, now: str
) -> dict[str, Any]:
    old = old_status or {}
    old_listeners = {
        str(lst.get("name")): lst for lst in old.get("listeners") or [] if isinstance(lst, Mapping)
    }
    return {
        "addresses": [{"type": t, "value": v} for t, v in st.addresses],
        "conditions": condition_dicts(st.conditions, old.get("conditions"), now=now),
        "listeners": [
            {
                "name": lst.name,
                "supportedKinds": [{"group": g, "kind": k} for g, k in lst.supported_kinds],
                "attachedRoutes": lst.attached_routes,
                "conditions": condition_dicts(
                    lst.conditions, (old_listeners.get(lst.name) or {}).get("conditions"), now=now
                ),
            }
            for lst in st.listeners
        ],
    }


def _merged_conditions(
    old_status: Mapping[str, Any] | None, new: Sequence[Condition], *, now: str
) -> list[Any]:
    """Our condition types recomputed, other types (another MCS controller's) kept."""
    old = [c for c in (old_status or {}).get("conditions") or [] if isinstance(c, Mapping)]
    ours = {c.type for c in new}
    return [dict(c) for c in old if c.get("type") not in ours] + condition_dicts(new, old, now=now)


@dataclass(frozen=True, slots=True)
class _Item:
    key: ItemKey
    path: str
    fingerprint: object  # what we computed, without times: unchanged -> nothing to write
    build: Callable[[Mapping[str, Any] | None, str], dict[str, Any]]  # old status, now -> new status


def _cond_print(conds: Sequence[Condition]) -> tuple[object, ...]:
    return tuple((c.type, c.status, c.reason, c.message, c.observed_generation) for c in conds)


def _route_status(
    parents: Sequence[RouteParentStatus], old: Mapping[str, Any] | None, now: str
) -> dict[str, Any]:
    return {**dict(old or {}), "parents": route_parents_body(old, parents, now=now)}


def _gateway_status(st: GatewayStatus, old: Mapping[str, Any] | None, now: str) -> dict[str, Any]:
    return gateway_status_body(old, st, now=now)


def _conditions_status(conds: Sequence[Condition], old: Mapping[str, Any] | None, now: str) -> dict[str, Any]:
    return {**dict(old or {}), "conditions": _merged_conditions(old, conds, now=now)}


def _items(state: GatewayState, exports: Mapping[tuple[str, str, str], tuple[Condition, ...]]) -> list[_Item]:
    items: list[_Item] = []
    for (cluster, ns, name), parents in sorted(state.routes.items()):
        if not parents:
            continue
        items.append(
            _Item(
                key=(cluster, "HTTPRoute", ns, name),
                path=f"{GW}/namespaces/{ns}/httproutes/{name}/status",
                fingerprint=tuple((p.parent, _cond_print(p.conditions)) for p in parents),
                build=partial(_route_status, parents),
            )
        )
    for (cluster, ns, name), gst in sorted(state.gateways.items()):
        items.append(
            _Item(
                key=(cluster, "Gateway", ns, name),
                path=f"{GW}/namespaces/{ns}/gateways/{name}/status",
                fingerprint=(
                    _cond_print(gst.conditions),
                    gst.addresses,
                    tuple(
                        (x.name, x.supported_kinds, x.attached_routes, _cond_print(x.conditions))
                        for x in gst.listeners
                    ),
                ),
                build=partial(_gateway_status, gst),
            )
        )
    for (cluster, name), conds in sorted(state.classes.items()):
        items.append(
            _Item(
                key=(cluster, "GatewayClass", "", name),
                path=f"{GW}/gatewayclasses/{name}/status",
                fingerprint=_cond_print(conds),
                build=partial(_conditions_status, conds),
            )
        )
    for (cluster, ns, name), conds in sorted(exports.items()):
        items.append(
            _Item(
                key=(cluster, "ServiceExport", ns, name),
                path=f"{MCS}/namespaces/{ns}/serviceexports/{name}/status",
                fingerprint=_cond_print(conds),
                build=partial(_conditions_status, conds),
            )
        )
    return items


_Published = tuple[GatewayState, Mapping[tuple[str, str, str], tuple[Condition, ...]]]


class GatewayStatusWriter:
    """Writes Gateway API / ServiceExport status through each member's client (``client_for``)."""

    def __init__(
        self, client_for: Callable[[str], ApiClient | None], *, clock: Callable[[], float] = time.time
    ) -> None:
        self._client_for = client_for
        self._clock = clock
        self._written: dict[ItemKey, object] = {}
        self._latest: _Published | None = None
        # The last submitted pair, published again when certificate problems change.
        self._current: _Published | None = None
        self._problems: tuple[SecretProblem, ...] = ()
        self._wake = asyncio.Event()
        self.writes = 0

    def submit(
        self, state: GatewayState, exports: Mapping[tuple[str, str, str], tuple[Condition, ...]]
    ) -> None:
        """From a synchronous reconcile sink: only the newest state is written."""
        self._latest = self._current = (state, exports)
        self._wake.set()

    def standby(self) -> None:
        """Not the leader (any more): certificate news must not re-publish an old status."""
        self._latest = self._current = None

    def certificate_problems(self, problems: Sequence[SecretProblem]) -> None:
        """What the Secret reader found wrong with HTTPS listeners' certificates (their listeners'
        conditions say so); the last submitted status is written again when this changes."""
        got = tuple(p for p in problems if p.ref.kind == "Gateway")
        if got == self._problems:
            return
        self._problems = got
        if self._latest is None:
            self._latest = self._current
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            latest, self._latest = self._latest, None
            if latest is not None:
                await self.publish(*latest)

    async def publish(
        self, state: GatewayState, exports: Mapping[tuple[str, str, str], tuple[Condition, ...]]
    ) -> None:
        """Write the status that changed; errors are logged and retried on the next publish."""
        items = _items(with_certificate_problems(state, self._problems), exports)
        live = {i.key for i in items}
        self._written = {k: v for k, v in self._written.items() if k in live}
        for item in items:
            if self._written.get(item.key) == item.fingerprint:
                continue
            if await self._write(item):
                self._written[item.key] = item.fingerprint

    async def _write(self, item: _Item) -> bool:
        cluster, kind, ns, name = item.key
        api = self._client_for(cluster)
        if api is None:
            return False
        obj_path = item.path.removesuffix("/status")
        where = f"{kind} {ns + '/' if ns else ''}{name} in {cluster}"
        try:
            current = await request_json(api, "GET", obj_path)
            meta = current.get("metadata") or {}
            old = current.get("status") if isinstance(current.get("status"), Mapping) else None
            body = {
                "metadata": {"resourceVersion": meta.get("resourceVersion")},
                "status": item.build(old, _now(self._clock())),
            }
            if old == body["status"]:
                return True
            await request_json(
                api, "PATCH", item.path, body=body, content_type="application/merge-patch+json"
            )
        except KubeApiError as exc:
            if exc.status == 404:
                return True  # deleted meanwhile: nothing to write
            log.warning("cannot write the status of %s: %s", where, exc, extra={"cluster": cluster})
            return False
        self.writes += 1
        log.debug("wrote the status of %s", where, extra={"cluster": cluster})
        return True

    def forget(self, cluster: str) -> None:
        self._written = {k: v for k, v in self._written.items() if k[0] != cluster}
