"""Watches of Gateway API and MCS objects in one member cluster, when their CRDs are installed.

The chart installs none of these CRDs: users do. So each API group is looked up in discovery
first; while it is absent the member logs one line and looks again every ``recheck`` seconds, so
CRDs installed while the controller runs are picked up. When an installed CRD goes away (its list
or watch answers 404) the member's objects of that kind leave the Store and the group goes back
to waiting. Objects are parsed by :mod:`ingressfed.gateway.parse`; problems become Events
through the source's problem sink.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubernetes_asyncio.client import ApiClient

from ingressfed.gateway.certificates import listener_tls_refs
from ingressfed.gateway.federation import export_conditions, state_for
from ingressfed.gateway.parse import (
    FieldProblem,
    Parsed,
    gateway_from,
    gatewayclass_from,
    httproute_from,
    referencegrant_from,
)
from ingressfed.gateway.resources import Meta, ServiceExport
from ingressfed.kube.gateway_status import GatewayStatusWriter
from ingressfed.kube.informer import DEFAULT_OPTIONS, EventType, Informer, InformerOptions, Resource
from ingressfed.kube.objects import ObjectRef, Problem, ref_of
from ingressfed.kube.rest import KubeApiError, request_json
from ingressfed.store import GatewayObject, Store

if TYPE_CHECKING:
    from ingressfed.controller import Controller, ReconcileOutcome
    from ingressfed.model import Snapshot
    from ingressfed.tls.secrets import TlsRef

__all__ = ["GATEWAY_API", "MCS_API", "GatewayWatch", "WatchedKind", "gateway_sink", "serviceexport_from"]

log = logging.getLogger(__name__)

Key = tuple[str, str]
ReportProblem = Callable[[str, Problem], None]


def serviceexport_from(obj: object, *, cluster: str) -> Parsed[ServiceExport]:
    """A ServiceExport needs only its identity: its name is the Service it exports."""
    ref = ref_of(obj, "ServiceExport")
    if not ref.namespace or not ref.name:
        return Parsed(None, (FieldProblem("metadata", "namespace and name must be DNS names"),))
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    gen = meta.get("generation", 1) if isinstance(meta, Mapping) else 1
    created = meta.get("creationTimestamp", "") if isinstance(meta, Mapping) else ""
    return Parsed(
        ServiceExport(
            meta=Meta(
                cluster=cluster,
                namespace=ref.namespace,
                name=ref.name,
                generation=gen if isinstance(gen, int) and not isinstance(gen, bool) else 1,
                created=created if isinstance(created, str) else "",
                uid=ref.uid,
            )
        )
    )


@dataclass(frozen=True, slots=True)
class WatchedKind:
    plural: str
    kind: str
    version: str
    parse: Callable[..., Parsed[Any]]


@dataclass(frozen=True, slots=True)
class ApiGroup:
    group: str
    kinds: tuple[WatchedKind, ...]


GATEWAY_API = ApiGroup(
    "gateway.networking.k8s.io",
    (
        WatchedKind("gatewayclasses", "GatewayClass", "v1", gatewayclass_from),
        WatchedKind("gateways", "Gateway", "v1", gateway_from),
        WatchedKind("httproutes", "HTTPRoute", "v1", httproute_from),
        WatchedKind("referencegrants", "ReferenceGrant", "v1beta1", referencegrant_from),
    ),
)
MCS_API = ApiGroup(
    "multicluster.x-k8s.io", (WatchedKind("serviceexports", "ServiceExport", "v1alpha1", serviceexport_from),)
)


class _CrdGone(Exception):
    """A list or watch of an installed kind answered 404: its CRD was deleted."""


class _Handler:
    """Informer handler for one kind in one member: parsed objects into the Store."""

    def __init__(
        self,
        *,
        cluster: str,
        kind: WatchedKind,
        store: Store,
        report: ReportProblem,
        gone: asyncio.Event,
        on_exports: Callable[[set[Key]], None] | None,
    ) -> None:
        self.cluster = cluster
        self.kind = kind
        self.store = store
        self.report = report
        self.gone = gone
        self.on_exports = on_exports
        self._next: list[GatewayObject] = []
        self._keys: set[Key] = set()
        self._type: type[GatewayObject] | None = None

    def _parse(self, obj: Mapping[str, Any]) -> GatewayObject | None:
        got = self.kind.parse(obj, cluster=self.cluster)
        ref = ref_of(obj, self.kind.kind)
        for p in got.problems:
            self.report(self.cluster, Problem(ref, f"{p.path}: {p.message}" if p.path else p.message))
        value: GatewayObject | None = got.value
        if value is not None:
            self._type = type(value)
        return value

    def relist_started(self) -> None:
        self._next = []

    def relisted_page(self, objects: Sequence[Mapping[str, Any]]) -> None:
        for obj in objects:
            value = self._parse(obj)
            if value is not None:
                self._next.append(value)

    def relist_finished(self) -> None:
        objs, self._next = self._next, []
        kind_type = self._type or _type_of(self.kind)
        self.store.replace_gateway_objects(self.cluster, kind_type, objs)
        self._keys = {o.meta.key for o in objs}
        self._exports_changed()
        log.debug(
            "%s: %d %s objects", self.cluster, len(objs), self.kind.kind, extra={"cluster": self.cluster}
        )

    def changed(self, event: EventType, obj: Mapping[str, Any]) -> None:
        ref = ref_of(obj, self.kind.kind)
        value = self._parse(obj) if event != "DELETED" else None
        if value is not None:
            self.store.upsert_gateway_object(value)
            self._keys.add(value.meta.key)
        elif ref.name:
            self.store.delete_gateway_object(_type_of(self.kind), self.cluster, ref.namespace, ref.name)
            self._keys.discard((ref.namespace, ref.name))
        self._exports_changed()

    def failed(self, error: KubeApiError) -> None:
        if error.status == 404:
            self.gone.set()
            return
        self.report(self.cluster, Problem(ObjectRef(self.kind.kind, "", ""), f"{error.path}: {error}"))

    def clear(self) -> None:
        self.store.replace_gateway_objects(self.cluster, _type_of(self.kind), [])
        self._keys = set()
        self._exports_changed()

    def _exports_changed(self) -> None:
        if self.on_exports is not None:
            self.on_exports(set(self._keys))


NAMESPACES = Resource("/api/v1/namespaces", "Namespace")


def _labels_of(obj: Mapping[str, Any]) -> tuple[str, dict[str, str]] | None:
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
        return None
    raw = meta.get("labels")
    labels = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}
    return meta["name"], labels


class _Namespaces:
    """Namespace labels, for listeners whose ``allowedRoutes.namespaces.from`` is Selector."""

    def __init__(self, *, cluster: str, store: Store, report: ReportProblem) -> None:
        self.cluster = cluster
        self.store = store
        self.report = report
        self._next: dict[str, dict[str, str]] = {}

    def relist_started(self) -> None:
        self._next = {}

    def relisted_page(self, objects: Sequence[Mapping[str, Any]]) -> None:
        for obj in objects:
            got = _labels_of(obj)
            if got is not None:
                self._next[got[0]] = got[1]

    def relist_finished(self) -> None:
        labels, self._next = self._next, {}
        self.store.replace_namespace_labels(self.cluster, labels)

    def changed(self, event: EventType, obj: Mapping[str, Any]) -> None:
        got = _labels_of(obj)
        if got is not None:
            self.store.set_namespace_labels(self.cluster, got[0], None if event == "DELETED" else got[1])

    def failed(self, error: KubeApiError) -> None:
        self.report(self.cluster, Problem(ObjectRef("Namespace", "", ""), f"{error.path}: {error}"))

    def clear(self) -> None:
        self.store.replace_namespace_labels(self.cluster, {})


def _type_of(kind: WatchedKind) -> type[GatewayObject]:
    from ingressfed.gateway.resources import Gateway, GatewayClass, HTTPRoute, ReferenceGrant

    types: dict[str, type[GatewayObject]] = {
        "GatewayClass": GatewayClass,
        "Gateway": Gateway,
        "HTTPRoute": HTTPRoute,
        "ReferenceGrant": ReferenceGrant,
        "ServiceExport": ServiceExport,
    }
    return types[kind.kind]


async def served_kinds(api: ApiClient, group: ApiGroup) -> set[str]:
    """Plurals of ``group`` the member's API server serves (discovery); empty when the CRDs are absent."""
    found: set[str] = set()
    for version in sorted({k.version for k in group.kinds}):
        path = f"/apis/{group.group}/{version}"
        try:
            doc = await request_json(api, "GET", path, request_timeout=10.0)
        except KubeApiError as exc:
            if exc.status == 404:
                continue
            raise
        for r in doc.get("resources") or []:
            if isinstance(r, Mapping) and isinstance(r.get("name"), str):
                found.add(f"{version}/{r['name']}")
    return {k.plural for k in group.kinds if f"{k.version}/{k.plural}" in found}


class GatewayWatch:
    """Runs the Gateway API and MCS watches of each member (``run_member`` per member task)."""

    def __init__(
        self,
        store: Store,
        *,
        report: ReportProblem,
        options: InformerOptions = DEFAULT_OPTIONS,
        recheck: float = 30.0,
        groups: Sequence[ApiGroup] = (GATEWAY_API, MCS_API),
    ) -> None:
        self.store = store
        self.report = report
        self.options = options
        self.recheck = recheck
        self.groups = tuple(groups)

    async def run_member(
        self, cluster: str, api: ApiClient, *, on_exports: Callable[[set[Key]], None] | None = None
    ) -> None:
        async with asyncio.TaskGroup() as tg:
            for group in self.groups:
                tg.create_task(
                    self._guarded(cluster, api, group, on_exports), name=f"{cluster} {group.group}"
                )

    async def _guarded(
        self, cluster: str, api: ApiClient, group: ApiGroup, on_exports: Callable[[set[Key]], None] | None
    ) -> None:
        """A bug here must never stop the member's Service and Ingress watches beside it."""
        while True:
            try:
                await self._run_group(cluster, api, group, on_exports)
            except Exception:
                log.exception(
                    "%s: %s watch failed; starting again", cluster, group.group, extra={"cluster": cluster}
                )
                await asyncio.sleep(self.recheck)

    async def _run_group(
        self,
        cluster: str,
        api: ApiClient,
        group: ApiGroup,
        on_exports: Callable[[set[Key]], None] | None,
    ) -> None:
        said_absent = False
        while True:
            try:
                present = await served_kinds(api, group)
            except KubeApiError as exc:
                log.info(
                    "%s: discovery of %s failed (%s); retrying",
                    cluster,
                    group.group,
                    exc,
                    extra={"cluster": cluster},
                )
                await asyncio.sleep(self.recheck)  # unreachable is not "not installed": no claim
                continue
            if not present:
                if not said_absent:
                    log.info(
                        "%s: %s CRDs are not installed; not watching %s (looking again every %.0f s)",
                        cluster,
                        group.group,
                        ", ".join(k.kind for k in group.kinds),
                        self.recheck,
                        extra={"cluster": cluster},
                    )
                    said_absent = True
                await asyncio.sleep(self.recheck)
                continue
            said_absent = False
            kinds = [k for k in group.kinds if k.plural in present]
            log.info("%s: watching %s", cluster, ", ".join(k.kind for k in kinds), extra={"cluster": cluster})
            gone = asyncio.Event()
            handlers = [
                _Handler(
                    cluster=cluster,
                    kind=k,
                    store=self.store,
                    report=self.report,
                    gone=gone,
                    on_exports=on_exports if k.kind == "ServiceExport" else None,
                )
                for k in kinds
            ]
            tasks = [
                asyncio.create_task(
                    Informer(
                        api,
                        Resource(f"/apis/{group.group}/{h.kind.version}/{h.kind.plural}", h.kind.kind),
                        h,
                        options=self.options,
                    ).run(),
                    name=f"{cluster} {h.kind.kind}",
                )
                for h in handlers
            ]
            namespaces: _Namespaces | None = None
            if group is GATEWAY_API:
                namespaces = _Namespaces(cluster=cluster, store=self.store, report=self.report)
                informer = Informer(api, NAMESPACES, namespaces, options=self.options)
                tasks.append(asyncio.create_task(informer.run(), name=f"{cluster} Namespace"))
            waiter = asyncio.create_task(gone.wait())
            rechecker = asyncio.create_task(self._until_kinds_change(api, group, present))
            try:
                await asyncio.wait([waiter, rechecker, *tasks], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in (waiter, rechecker, *tasks):
                    t.cancel()
                await asyncio.gather(waiter, rechecker, *tasks, return_exceptions=True)
            if gone.is_set():
                log.info(
                    "%s: %s CRDs were removed; their objects are dropped",
                    cluster,
                    group.group,
                    extra={"cluster": cluster},
                )
                for h in handlers:
                    h.clear()
                if namespaces is not None:
                    namespaces.clear()
                await asyncio.sleep(min(self.recheck, 1.0))
            # Otherwise discovery serves another set of kinds now (CRDs installed one by one):
            # decide again; the new informers' relists replace what the old ones stored.

    async def _until_kinds_change(self, api: ApiClient, group: ApiGroup, present: set[str]) -> None:
        while True:
            await asyncio.sleep(self.recheck)
            try:
                now = await served_kinds(api, group)
            except KubeApiError:
                continue
            if now != present:
                return


def gateway_tls_refs(snap: Snapshot, controller: Controller) -> list[TlsRef]:
    """The Secrets HTTPS listeners of the global Gateway serve, for the Secret reader."""
    return listener_tls_refs(state_for(snap, controller.federation))


def gateway_sink(
    client_for: Callable[[str], ApiClient | None], controller: Controller
) -> tuple[GatewayStatusWriter, Callable[[ReconcileOutcome], None]]:
    """The status writer and the reconcile sink that feeds it (the leader writes status)."""
    writer = GatewayStatusWriter(client_for)

    def sink(outcome: ReconcileOutcome) -> None:
        if controller.is_leader():
            snap = outcome.snapshot
            writer.submit(state_for(snap, controller.federation), export_conditions(snap))
        else:
            writer.standby()

    return writer, sink
