"""The member registry: FederatedCluster resources in the host cluster, watched live.

Adding a FederatedCluster starts watching that member, deleting (or
disabling) it stops and removes its objects from the Store. The probe results
are written back to ``status`` (conditions Ready and Offline, observed
region/zone) through the status subresource, only when they change, and at
most every ``refresh`` seconds to move ``lastProbeTime`` on.

The CRD (``crd.yaml`` beside this module) is cluster-scoped: a member cluster
is a cluster-wide concept (like Nodes and the old Federation ``Cluster``),
its name is a DNS label that appears in published names and must be unique
federation-wide, and the kubeconfig Secret it references names its own
namespace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio.client import ApiClient

from geo.regions import Placement, member_location
from ingressfed.core.health import ClusterHealth
from ingressfed.kube.informer import DEFAULT_OPTIONS, EventType, Informer, InformerOptions, Resource
from ingressfed.kube.members import GROUP, PLURAL, VERSION, MemberSpec, member_from_resource
from ingressfed.kube.objects import ObjectRef, Problem
from ingressfed.kube.rest import KubeApiError, request_json
from ingressfed.kube.source import KubeSource
from ingressfed.model import ClusterStatus

__all__ = ["FEDERATED_CLUSTERS", "Registry", "status_patch"]

log = logging.getLogger(__name__)

FEDERATED_CLUSTERS = Resource(f"/apis/{GROUP}/{VERSION}/{PLURAL}", "FederatedCluster")


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_patch(
    health: ClusterHealth | None,
    *,
    message: str,
    region: str,
    zone: str,
    placement: Placement | None = None,
) -> dict[str, Any]:
    """The ``status`` of a FederatedCluster; the Ready condition's reason is the printed STATUS.

    ``placement`` is where geo answers place the member (``location`` null when unknown) and what
    said so: ``declared`` (spec.location), ``region`` or ``zone`` (the built-in table), ``unknown``.
    """
    status = health.status if health is not None else ClusterStatus.NOT_READY
    probe = _iso(health.last_probe_time) if health else None
    transition = _iso(health.last_transition_time) if health else None
    why = health.reason if health is not None else "NotProbed"
    common: dict[str, Any] = {"message": message[:1000] or why}
    if probe:
        common["lastProbeTime"] = probe
    if transition:
        common["lastTransitionTime"] = transition
    ready = {
        "type": "Ready",
        "status": "True" if status is ClusterStatus.READY else "False",
        "reason": str(status),
    }
    offline = {
        "type": "Offline",
        "status": "True" if status is ClusterStatus.OFFLINE else "False",
        "reason": why,
    }
    placement = placement or member_location(declared=None, region=region, zone=zone)
    loc = placement.location
    return {
        "status": {
            "observedRegion": region,
            "observedZone": zone,
            "location": {"lat": loc.lat, "lon": loc.lon} if loc is not None else None,
            "locationSource": placement.source,
            "conditions": [ready | common, offline | common],
        }
    }


class Registry:
    """Watches FederatedClusters; keeps ``source`` in step; writes probe results to their status."""

    def __init__(
        self,
        host: ApiClient,
        source: KubeSource,
        *,
        options: InformerOptions = DEFAULT_OPTIONS,
        refresh: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        may_write: Callable[[], bool] = lambda: True,
    ) -> None:
        self._host = host
        self._may_write = may_write  # only the leader writes FederatedCluster status
        self._source = source
        self._options = options
        self._refresh = refresh
        self._clock = clock
        self._specs: dict[str, MemberSpec] = {}
        self._next: dict[str, MemberSpec] = {}
        self._dirty = asyncio.Event()
        self._status_due: set[str] = set()
        self._status_wake = asyncio.Event()
        self._written: dict[str, tuple[str, float]] = {}  # name -> (status key, when written)
        self.informer = Informer(host, FEDERATED_CLUSTERS, self, options=options)
        if source.prober is not None:
            source.prober.on_health = self.health_changed

    @property
    def specs(self) -> dict[str, MemberSpec]:
        return dict(self._specs)

    # WatchHandler
    def relist_started(self) -> None:
        self._next = {}

    def relisted_page(self, objects: Sequence[Mapping[str, Any]]) -> None:
        for obj in objects:
            spec = self._map(obj)
            if spec is not None:
                self._next[spec.name] = spec

    def relist_finished(self) -> None:
        self._specs, self._next = self._next, {}
        self._dirty.set()

    def changed(self, event: EventType, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata")
        name = meta.get("name") if isinstance(meta, Mapping) else None
        spec = self._map(obj) if event != "DELETED" else None
        if spec is not None:
            self._specs[spec.name] = spec
        elif isinstance(name, str):
            self._specs.pop(name, None)
        self._dirty.set()

    def failed(self, error: KubeApiError) -> None:
        self._source.problems.report("", Problem(ObjectRef("FederatedCluster", "", ""), str(error)))

    def _map(self, obj: Mapping[str, Any]) -> MemberSpec | None:
        mapped = member_from_resource(obj)
        for p in mapped.problems:
            self._source.problems.report(p.ref.name, p)
        return mapped.value

    # status write-back
    def health_changed(self, name: str, health: ClusterHealth) -> None:
        self._status_due.add(name)
        self._status_wake.set()

    async def run(self, *, iterations: int | None = None) -> None:
        """Watch the registry and apply it to the source until cancelled."""
        async with asyncio.TaskGroup() as tg:
            watch = tg.create_task(self.informer.run(iterations=iterations))
            sync = tg.create_task(self._sync_loop())
            status = tg.create_task(self._status_loop())
            await watch
            sync.cancel()
            status.cancel()

    async def _sync_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await self._source.sync_members(self._specs.values())
            for name in [n for n in self._written if n not in self._specs]:
                del self._written[name]

    async def _status_loop(self) -> None:
        while True:
            await self._status_wake.wait()
            self._status_wake.clear()
            due, self._status_due = self._status_due, set()
            for name in sorted(due):
                await self.write_status(name)

    async def write_status(self, name: str) -> None:
        """Patch the member's status if its content changed (or ``refresh`` passed)."""
        if name not in self._specs or self._source.prober is None or not self._may_write():
            return
        prober = self._source.prober
        health = prober.health(name)
        cluster = self._source.store.cluster(name)
        region = cluster.region if cluster is not None else ""
        zone = cluster.zone if cluster is not None else ""
        # The same rule the Store applied (declared, else the table for the region or zone).
        placement = member_location(declared=self._specs[name].location, region=region, zone=zone)
        body = status_patch(
            health, message=prober.message(name), region=region, zone=zone, placement=placement
        )
        content = (
            repr([{k: v for k, v in c.items() if k != "lastProbeTime"} for c in body["status"]["conditions"]])
            + f"{region}/{zone}/{placement}"
        )
        now = self._clock()
        last = self._written.get(name)
        if last is not None and last[0] == content and now - last[1] < self._refresh:
            return
        path = f"{FEDERATED_CLUSTERS.path}/{name}/status"
        try:
            await request_json(
                self._host, "PATCH", path, body=body, content_type="application/merge-patch+json"
            )
        except KubeApiError as exc:
            log.warning("cannot write status of FederatedCluster %s: %s", name, exc, extra={"cluster": name})
            return
        self._written[name] = (content, now)
