"""KubeSource: watch every member cluster and record what it serves in the Store.

Per member: informers for Services, Ingresses, EndpointSlices and Nodes, and
(optionally) the API server probe loop. A Service's ``ready_endpoints`` is the
sum over its EndpointSlices; the member's region/zone come from node labels
unless declared. Members are added, changed and removed live with
:meth:`KubeSource.sync_members` (from the config, or the FederatedCluster
registry). A member that cannot be reached does not block anything: it is
reported Offline and retried in the background.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

from kubernetes_asyncio.client import ApiClient

from ingressfed.kube.backoff import FailureStreak, backoff_delay, failure_report
from ingressfed.kube.clients import ClientError, ClientPool
from ingressfed.kube.gateway_watch import GatewayWatch
from ingressfed.kube.informer import DEFAULT_OPTIONS, EventType, Informer, InformerOptions, Resource
from ingressfed.kube.members import MemberSpec, cluster_of
from ingressfed.kube.objects import (
    Mapped,
    NodeFacts,
    ObjectRef,
    Problem,
    Selection,
    SliceFacts,
    endpoint_slice_from,
    ingress_from,
    node_from,
    ref_of,
    service_from,
)
from ingressfed.kube.probes import Prober
from ingressfed.kube.rest import KubeApiError
from ingressfed.model import ClusterStatus, IngressObservation, ServiceObservation
from ingressfed.store import Store

_Obs = TypeVar("_Obs", ServiceObservation, IngressObservation)

__all__ = ["RESOURCES", "KubeSource", "LogProblems", "ProblemSink"]

log = logging.getLogger(__name__)

SERVICES = Resource("/api/v1/services", "Service")
INGRESSES = Resource("/apis/networking.k8s.io/v1/ingresses", "Ingress")
ENDPOINT_SLICES = Resource("/apis/discovery.k8s.io/v1/endpointslices", "EndpointSlice")
NODES = Resource("/api/v1/nodes", "Node")
RESOURCES = (SERVICES, INGRESSES, ENDPOINT_SLICES, NODES)

Key = tuple[str, str]  # namespace, name
ALL_OPTED_IN = Selection()  # only objects that opt in themselves


class ProblemSink(Protocol):
    def report(self, cluster: str, problem: Problem) -> None:
        """An object (or a whole watch) could not be used; becomes an Event where it can."""


class LogProblems:
    """Logs each problem and keeps the latest per cluster (bounded) for inspection."""

    def __init__(self, *, keep: int = 1000) -> None:
        self._keep = keep
        self.recent: dict[str, deque[Problem]] = {}

    def report(self, cluster: str, problem: Problem) -> None:
        log.warning("%s: %s: %s", cluster, problem.ref, problem.reason, extra={"cluster": cluster})
        self.recent.setdefault(cluster, deque(maxlen=self._keep)).append(problem)


class _Member:
    """One member's observed state and its informer handlers."""

    def __init__(self, source: KubeSource, spec: MemberSpec) -> None:
        self.spec = spec
        self._source = source
        self._store = source.store
        self.services: dict[Key, ServiceObservation] = {}  # ready_endpoints still 0 here
        self.ingresses: dict[Key, IngressObservation] = {}
        self.slices: dict[Key, SliceFacts] = {}
        self.ready: Counter[Key] = Counter()
        self.nodes: dict[str, NodeFacts] = {}
        self.topology = ("", "")
        self._failing: dict[str, FailureStreak] = {}  # resource path -> its current failure streak
        # MCS: Services opted in by a ServiceExport of the same name, and the raw LoadBalancer
        # Services that are not (yet) federated, so an export arriving later can federate them.
        self.exports: set[Key] = set()
        self.unfederated: dict[Key, Mapping[str, Any]] = {}
        self.services_handler: _Services | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def report(self, problems: Sequence[Problem]) -> None:
        for p in problems:
            self._source.problems.report(self.name, p)

    def failed(self, resource: Resource, error: KubeApiError) -> None:
        now = self._source.clock()
        streak, due = failure_report(self._failing.get(resource.path), now)
        self._failing[resource.path] = streak
        if not due:
            return  # still failing: reported when the streak began, and every REPORT_REPEAT seconds
        note = (
            "" if streak.count == 1 else f" (failing for {now - streak.since:.0f}s, {streak.count} attempts)"
        )
        self._source.problems.report(
            self.name, Problem(ObjectRef(resource.kind, "", ""), f"{resource.path}: {error}{note}")
        )

    def recovered(self, resource: Resource) -> None:
        streak = self._failing.pop(resource.path, None)
        if streak is not None:
            log.info(
                "%s: %s: reachable again after %d failed attempts",
                self.name,
                resource.path,
                streak.count,
                extra={"cluster": self.name},
            )

    def full(self, obs: ServiceObservation) -> ServiceObservation:
        return replace(obs, ready_endpoints=self.ready[(obs.namespace, obs.name)])

    def set_exports(self, keys: set[Key]) -> None:
        """The member's ServiceExports changed: (un)federate the Services they name."""
        changed = keys ^ self.exports
        self.exports = keys
        handler = self.services_handler
        if handler is None:
            return
        for key in changed:
            raw = self.unfederated.get(key)
            if key in keys and raw is not None:
                handler.changed("MODIFIED", raw)
            elif key not in keys and key in self.services:
                handler.recheck(key)

    def push_service(self, key: Key) -> None:
        obs = self.services.get(key)
        if obs is not None:
            self._store.upsert_service(self.full(obs))

    def push_all_services(self) -> None:
        self._store.replace_objects(self.name, services=[self.full(o) for o in self.services.values()])

    def declare(self) -> None:
        cluster = cluster_of(self.spec, region=self.topology[0], zone=self.topology[1])
        if self._source.prober is not None:
            # Probed members start NotReady until their API server answers (the Store keeps
            # the probed status when the member is declared again).
            cluster = replace(cluster, status=ClusterStatus.NOT_READY)
        self._store.set_cluster(cluster)

    def observe_topology(self) -> None:
        # Most nodes decide; a cluster spanning zones still has one "home" zone in the naming scheme.
        regions = Counter(n.region for n in self.nodes.values() if n.region)
        zones = Counter(n.zone for n in self.nodes.values() if n.zone)
        region = min(regions, key=lambda r: (-regions[r], r)) if regions else ""
        zone = min(zones, key=lambda z: (-zones[z], z)) if zones else ""
        if (region, zone) != self.topology:
            self.topology = (region, zone)
            self.declare()


class _Handler(ABC):
    """Shared relist bookkeeping; subclasses map objects and commit."""

    resource: Resource

    def __init__(self, member: _Member) -> None:
        self.m = member

    @abstractmethod
    def relist_started(self) -> None: ...

    def relisted_page(self, objects: Sequence[Mapping[str, Any]]) -> None:
        self._collect(objects)

    def failed(self, error: KubeApiError) -> None:
        self.m.failed(self.resource, error)

    def recovered(self) -> None:
        self.m.recovered(self.resource)

    @abstractmethod
    def _collect(self, objects: Sequence[Mapping[str, Any]]) -> None: ...


def _key(ref: ObjectRef) -> Key | None:
    return (ref.namespace, ref.name) if ref.namespace and ref.name else None


class _Federated(_Handler, Generic[_Obs]):
    """Services and Ingresses: map each object, keep the federated ones by (namespace, name)."""

    kind: str

    def __init__(self, member: _Member, selection: Selection) -> None:
        super().__init__(member)
        self._selection = selection
        self._next: dict[Key, _Obs] = {}

    @abstractmethod
    def _mapper(self, obj: Mapping[str, Any]) -> Mapped[_Obs]: ...

    @abstractmethod
    def _table(self) -> dict[Key, _Obs]: ...

    @abstractmethod
    def _commit_all(self, table: dict[Key, _Obs]) -> None: ...

    @abstractmethod
    def _commit(self, key: Key) -> None: ...

    @abstractmethod
    def _remove(self, key: Key) -> None: ...

    def _map(self, obj: Mapping[str, Any]) -> _Obs | None:
        mapped = self._mapper(obj)
        self.m.report(mapped.problems)
        return mapped.value

    def relist_started(self) -> None:
        self._next = {}

    def _collect(self, objects: Sequence[Mapping[str, Any]]) -> None:
        for obj in objects:
            value = self._map(obj)
            if value is not None:
                self._next[(value.namespace, value.name)] = value

    def relist_finished(self) -> None:
        table, self._next = self._next, {}
        self._commit_all(table)

    def changed(self, event: EventType, obj: Mapping[str, Any]) -> None:
        key = _key(ref_of(obj, self.kind))
        value = self._map(obj) if event != "DELETED" else None
        if value is not None:
            self._table()[(value.namespace, value.name)] = value
            self._commit((value.namespace, value.name))
        elif key is not None and self._table().pop(key, None) is not None:
            # Deleted, or no longer federated (opted out, type or class changed).
            self._remove(key)


class _Services(_Federated[ServiceObservation]):
    resource = SERVICES
    kind = "Service"

    def __init__(self, member: _Member, selection: Selection) -> None:
        super().__init__(member, selection)
        self.exported_raw: dict[Key, Mapping[str, Any]] = {}  # federated only by their ServiceExport
        member.services_handler = self

    def _mapper(self, obj: Mapping[str, Any]) -> Mapped[ServiceObservation]:
        key = _key(ref_of(obj, "Service"))
        exported = key is not None and key in self.m.exports
        mapped = service_from(obj, cluster=self.m.name, selection=self._selection, exported=exported)
        if key is not None:
            spec = obj.get("spec")
            is_lb = isinstance(spec, Mapping) and spec.get("type") == "LoadBalancer"
            if mapped.value is None and is_lb:
                self.m.unfederated[key] = obj
            else:
                self.m.unfederated.pop(key, None)
            if exported and mapped.value is not None:
                self.exported_raw[key] = obj
            else:
                self.exported_raw.pop(key, None)
        return mapped

    def relist_started(self) -> None:
        super().relist_started()
        self.m.unfederated = {}
        self.exported_raw = {}

    def changed(self, event: EventType, obj: Mapping[str, Any]) -> None:
        if event == "DELETED":
            key = _key(ref_of(obj, "Service"))
            if key is not None:
                self.m.unfederated.pop(key, None)
                self.exported_raw.pop(key, None)
        super().changed(event, obj)

    def recheck(self, key: Key) -> None:
        """Map a Service federated by its ServiceExport again (the export went away)."""
        obj = self.exported_raw.get(key)
        if obj is not None:
            self.changed("MODIFIED", obj)

    def _table(self) -> dict[Key, ServiceObservation]:
        return self.m.services

    def _commit_all(self, table: dict[Key, ServiceObservation]) -> None:
        self.m.services = table
        self.m.push_all_services()

    def _commit(self, key: Key) -> None:
        self.m.push_service(key)

    def _remove(self, key: Key) -> None:
        self.m._store.delete_service(self.m.name, *key)


class _Ingresses(_Federated[IngressObservation]):
    resource = INGRESSES
    kind = "Ingress"

    def _mapper(self, obj: Mapping[str, Any]) -> Mapped[IngressObservation]:
        return ingress_from(obj, cluster=self.m.name, selection=self._selection)

    def _table(self) -> dict[Key, IngressObservation]:
        return self.m.ingresses

    def _commit_all(self, table: dict[Key, IngressObservation]) -> None:
        self.m.ingresses = table
        self.m._store.replace_objects(self.m.name, ingresses=list(table.values()))

    def _commit(self, key: Key) -> None:
        self.m._store.upsert_ingress(self.m.ingresses[key])

    def _remove(self, key: Key) -> None:
        self.m._store.delete_ingress(self.m.name, *key)


class _Slices(_Handler):
    resource = ENDPOINT_SLICES

    def __init__(self, member: _Member) -> None:
        super().__init__(member)
        self._next: dict[Key, SliceFacts] = {}

    def relist_started(self) -> None:
        self._next = {}

    def _collect(self, objects: Sequence[Mapping[str, Any]]) -> None:
        for obj in objects:
            mapped = endpoint_slice_from(obj)
            self.m.report(mapped.problems)
            if mapped.value is not None:
                self._next[(mapped.value.namespace, mapped.value.name)] = mapped.value

    def relist_finished(self) -> None:
        self.m.slices, self._next = self._next, {}
        ready: Counter[Key] = Counter()
        for s in self.m.slices.values():
            if s.service:
                ready[(s.namespace, s.service)] += s.ready
        self.m.ready = ready
        self.m.push_all_services()

    def changed(self, event: EventType, obj: Mapping[str, Any]) -> None:
        ref = ref_of(obj, "EndpointSlice")
        key = _key(ref)
        if key is None:
            self.m.report([Problem(ref, "metadata.namespace/name missing; slice ignored")])
            return
        old = self.m.slices.pop(key, None)
        touched: set[Key] = set()
        if old is not None and old.service:
            self.m.ready[(old.namespace, old.service)] -= old.ready
            touched.add((old.namespace, old.service))
        if event != "DELETED":
            mapped = endpoint_slice_from(obj)
            self.m.report(mapped.problems)
            new = mapped.value
            if new is not None:
                self.m.slices[key] = new
                if new.service:
                    self.m.ready[(new.namespace, new.service)] += new.ready
                    touched.add((new.namespace, new.service))
        for svc in touched:
            if self.m.ready[svc] <= 0:
                del self.m.ready[svc]
            self.m.push_service(svc)


class _Nodes(_Handler):
    resource = NODES

    def __init__(self, member: _Member) -> None:
        super().__init__(member)
        self._next: dict[str, NodeFacts] = {}

    def relist_started(self) -> None:
        self._next = {}

    def _collect(self, objects: Sequence[Mapping[str, Any]]) -> None:
        for obj in objects:
            mapped = node_from(obj)
            self.m.report(mapped.problems)
            if mapped.value is not None:
                self._next[mapped.value.name] = mapped.value

    def relist_finished(self) -> None:
        self.m.nodes, self._next = self._next, {}
        self.m.observe_topology()

    def changed(self, event: EventType, obj: Mapping[str, Any]) -> None:
        ref = ref_of(obj, "Node")
        if event == "DELETED":
            self.m.nodes.pop(ref.name, None)
        else:
            mapped = node_from(obj)
            self.m.report(mapped.problems)
            if mapped.value is not None:
                self.m.nodes[mapped.value.name] = mapped.value
        self.m.observe_topology()


@dataclass
class _Running:
    member: _Member
    task: asyncio.Task[None]


class KubeSource:
    """Runs the member watches; use as ``async with`` (stops every member on exit)."""

    def __init__(
        self,
        store: Store,
        *,
        clients: ClientPool,
        selection: Selection = ALL_OPTED_IN,
        problems: ProblemSink | None = None,
        prober: Prober | None = None,
        options: InformerOptions = DEFAULT_OPTIONS,
        rand: Callable[[], float] = random.random,
        gateway: GatewayWatch | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock  # for rate-limiting reports of failing watches
        self.gateway = gateway  # Gateway API / MCS watches, run per member beside the others
        self.store = store
        self.clients = clients
        self.selection = selection
        self.problems: ProblemSink = problems if problems is not None else LogProblems()
        self.prober = prober
        self.options = options
        self._rand = rand
        self._running: dict[str, _Running] = {}
        self._tg: asyncio.TaskGroup | None = None

    async def __aenter__(self) -> KubeSource:
        tg = asyncio.TaskGroup()
        await tg.__aenter__()
        self._tg = tg
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Cancel every member first and wait for all of them, also when we are leaving because our
        # own task was cancelled: a member left running would outlive the clients it uses.
        running = list(self._running.items())
        self._running.clear()
        for _, r in running:
            r.task.cancel()
        await asyncio.gather(*(r.task for _, r in running), return_exceptions=True)
        for name, _ in running:
            await self.clients.drop(name)
            if self.prober is not None:
                self.prober.forget(name)
        tg, self._tg = self._tg, None
        assert tg is not None
        # Every member task is finished by now; the caller's own exception propagates unwrapped.
        await tg.__aexit__(None, None, None)

    @property
    def members(self) -> list[str]:
        return sorted(self._running)

    def member_spec(self, name: str) -> MemberSpec | None:
        running = self._running.get(name)
        return running.member.spec if running else None

    async def sync_members(self, specs: Iterable[MemberSpec]) -> None:
        """Make the watched members exactly the enabled ones in ``specs``."""
        wanted = {s.name: s for s in specs if not s.disabled}
        for name in [n for n in self._running if n not in wanted]:
            await self.remove_member(name)
        for spec in wanted.values():
            await self.add_member(spec)

    async def add_member(self, spec: MemberSpec) -> None:
        """Start watching ``spec`` (restarting if how to reach it changed; updating otherwise)."""
        if self._tg is None:
            raise RuntimeError("KubeSource is not running (use async with)")
        running = self._running.get(spec.name)
        if running is not None:
            if running.member.spec.kubeconfig == spec.kubeconfig:
                running.member.spec = spec
                running.member.declare()
                return
            await self.remove_member(spec.name, forget=False)
        member = _Member(self, spec)
        member.declare()
        task = self._tg.create_task(self._run_member(member), name=f"member {spec.name}")
        self._running[spec.name] = _Running(member, task)
        log.info("watching member cluster %s", spec.name, extra={"cluster": spec.name})

    async def remove_member(self, name: str, *, forget: bool = True) -> None:
        """Stop watching ``name``; with ``forget`` its cluster and objects leave the Store."""
        running = self._running.pop(name, None)
        if running is None:
            return
        running.task.cancel()
        try:
            await running.task
        except asyncio.CancelledError:
            # Our own cancellation of the member task; re-raise if *we* are being cancelled.
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        await self.clients.drop(name)
        if self.prober is not None:
            self.prober.forget(name)
        if forget:
            self.store.remove_cluster(name)
            log.info("stopped watching member cluster %s", name, extra={"cluster": name})

    async def _connect(self, member: _Member) -> ApiClient:
        attempt = 0
        while True:
            try:
                return await self.clients.get(member.name, member.spec.kubeconfig)
            except ClientError as exc:
                self.problems.report(
                    member.name, Problem(ObjectRef("FederatedCluster", "", member.name), str(exc))
                )
                if self.prober is not None:
                    self.prober.mark_unreachable(member.name, str(exc))
                else:
                    self.store.set_cluster_status(member.name, ClusterStatus.OFFLINE)
            await asyncio.sleep(backoff_delay(attempt, policy=self.options.backoff, rand=self._rand()))
            attempt += 1

    async def _run_member(self, member: _Member) -> None:
        api = await self._connect(member)
        handlers = (
            _Services(member, self.selection),
            _Ingresses(member, self.selection),
            _Slices(member),
            _Nodes(member),
        )
        async with asyncio.TaskGroup() as tg:
            if self.prober is not None:
                tg.create_task(self.prober.run(member.name, api))
            if self.gateway is not None:
                tg.create_task(self.gateway.run_member(member.name, api, on_exports=member.set_exports))
            for handler in handlers:
                informer = Informer(api, handler.resource, handler, options=self.options, rand=self._rand)
                tg.create_task(informer.run(), name=f"{member.name} {handler.resource.kind}")
