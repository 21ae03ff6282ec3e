"""The controller's picture of the world, fed by sources, read as Snapshots.

Sources (a static file, Kubernetes informers, probes, the proxy's health
checks) only *record* what they saw here. Any real change bumps
``generation`` and calls ``on_change`` so the controller schedules a
reconcile; a write that changes nothing is silent, so a resync of unchanged
objects costs no reconcile. Used from the event loop only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import TypeVar

from geo.regions import member_location
from ingressfed.gateway.resources import (
    Gateway,
    GatewayClass,
    GatewayObjects,
    HTTPRoute,
    ReferenceGrant,
    ServiceExport,
)
from ingressfed.model import (
    Cluster,
    ClusterStatus,
    Edge,
    IngressObservation,
    Location,
    ServiceObservation,
    Snapshot,
)

__all__ = ["Store"]

log = logging.getLogger(__name__)

ObjKey = tuple[str, str, str]  # cluster, namespace, name
_T = TypeVar("_T")
GatewayObject = GatewayClass | Gateway | HTTPRoute | ReferenceGrant | ServiceExport
GATEWAY_KINDS: tuple[type[GatewayObject], ...] = (
    GatewayClass,
    Gateway,
    HTTPRoute,
    ReferenceGrant,
    ServiceExport,
)


class Store:
    def __init__(self, *, on_change: Callable[[], None] | None = None) -> None:
        self._clusters: dict[str, Cluster] = {}
        # What each member declared (config or FederatedCluster); the Cluster's location is derived.
        self._declared: dict[str, Location | None] = {}
        self._services: dict[ObjKey, ServiceObservation] = {}
        self._ingresses: dict[ObjKey, IngressObservation] = {}
        self._edges: tuple[Edge, ...] = ()
        # Gateway API / MCS objects per kind (written by ingressfed.kube.gateway_watch only)
        self._gateway: dict[type[GatewayObject], dict[ObjKey, GatewayObject]] = {k: {} for k in GATEWAY_KINDS}
        # (cluster, namespace) -> labels, for Gateway listeners that select route namespaces
        self._namespace_labels: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
        self.generation = 0
        self.on_change = on_change
        self._snapshot: Snapshot | None = None

    def _changed(self) -> None:
        self.generation += 1
        self._snapshot = None
        if self.on_change is not None:
            self.on_change()

    # clusters
    def set_cluster(self, cluster: Cluster) -> None:
        """Declare a member; its ``location`` is what it declared (None: derive it from its region)."""
        prev = self._clusters.get(cluster.name)
        self._declared[cluster.name] = cluster.location
        cluster = _placed(cluster, cluster.location)
        if prev is not None:
            # Health is owned by probes; a re-declared cluster keeps what they found.
            cluster = replace(cluster, status=prev.status, data_plane_healthy=prev.data_plane_healthy)
        if prev != cluster:
            self._clusters[cluster.name] = cluster
            self._changed()

    def remove_cluster(self, name: str) -> None:
        removed = self._clusters.pop(name, None) is not None
        self._declared.pop(name, None)
        removed |= _drop_cluster(self._services, name)
        removed |= _drop_cluster(self._ingresses, name)
        for gtable in self._gateway.values():
            removed |= _drop_cluster(gtable, name)
        for key in [k for k in self._namespace_labels if k[0] == name]:
            del self._namespace_labels[key]
            removed = True
        if removed:
            self._changed()

    def cluster(self, name: str) -> Cluster | None:
        return self._clusters.get(name)

    def cluster_names(self) -> list[str]:
        return sorted(self._clusters)

    def set_cluster_status(self, name: str, status: ClusterStatus) -> None:
        self._update_cluster(name, status=status)

    def set_data_plane_health(self, name: str, healthy: bool | None) -> None:
        self._update_cluster(name, data_plane_healthy=healthy)

    def set_cluster_topology(self, name: str, *, region: str, zone: str) -> None:
        self._update_cluster(name, region=region, zone=zone)

    def _update_cluster(self, name: str, **fields: object) -> None:
        prev = self._clusters.get(name)
        if prev is None:
            log.debug("ignoring update for unknown cluster", extra={"cluster": name})
            return
        nxt = replace(prev, **fields)  # type: ignore[arg-type]
        if "region" in fields or "zone" in fields:
            nxt = _placed(nxt, self._declared.get(name))
        if nxt != prev:
            self._clusters[name] = nxt
            self._changed()

    # edges (written by ingressfed.edge.registry only)
    def set_edges(self, edges: Iterable[Edge]) -> None:
        new = tuple(sorted(edges, key=lambda e: e.name))
        if new != self._edges:
            self._edges = new
            self._changed()

    # objects
    def upsert_service(self, obs: ServiceObservation) -> None:
        key = (obs.cluster, obs.namespace, obs.name)
        if self._services.get(key) != obs:
            self._services[key] = obs
            self._changed()

    def delete_service(self, cluster: str, namespace: str, name: str) -> None:
        if self._services.pop((cluster, namespace, name), None) is not None:
            self._changed()

    def upsert_ingress(self, obs: IngressObservation) -> None:
        key = (obs.cluster, obs.namespace, obs.name)
        if self._ingresses.get(key) != obs:
            self._ingresses[key] = obs
            self._changed()

    def delete_ingress(self, cluster: str, namespace: str, name: str) -> None:
        if self._ingresses.pop((cluster, namespace, name), None) is not None:
            self._changed()

    def replace_objects(
        self,
        cluster: str,
        services: Iterable[ServiceObservation] | None = None,
        ingresses: Iterable[IngressObservation] | None = None,
    ) -> None:
        """Make the cluster's objects exactly these (after a relist): nothing lost, nothing doubled."""
        changed = False
        if services is not None:
            changed |= _replace(
                self._services, cluster, {(o.cluster, o.namespace, o.name): o for o in services}
            )
        if ingresses is not None:
            changed |= _replace(
                self._ingresses, cluster, {(o.cluster, o.namespace, o.name): o for o in ingresses}
            )
        if changed:
            self._changed()

    # Gateway API and MCS objects
    def upsert_gateway_object(self, obj: GatewayObject) -> None:
        table = self._gateway[type(obj)]
        key = (obj.meta.cluster, obj.meta.namespace, obj.meta.name)
        if table.get(key) != obj:
            table[key] = obj
            self._changed()

    def delete_gateway_object(
        self, kind: type[GatewayObject], cluster: str, namespace: str, name: str
    ) -> None:
        if self._gateway[kind].pop((cluster, namespace, name), None) is not None:
            self._changed()

    def replace_gateway_objects(
        self, cluster: str, kind: type[GatewayObject], objects: Iterable[GatewayObject]
    ) -> None:
        """Make the cluster's objects of ``kind`` exactly these (after a relist, or [] when the CRD went)."""
        new = {(o.meta.cluster, o.meta.namespace, o.meta.name): o for o in objects}
        if _replace(self._gateway[kind], cluster, new):
            self._changed()

    def set_namespace_labels(self, cluster: str, namespace: str, labels: Mapping[str, str] | None) -> None:
        """A Namespace's labels (None: it is gone)."""
        key = (cluster, namespace)
        value = None if labels is None else tuple(sorted(labels.items()))
        if self._namespace_labels.get(key) != value:
            if value is None:
                del self._namespace_labels[key]
            else:
                self._namespace_labels[key] = value
            self._changed()

    def replace_namespace_labels(self, cluster: str, labels: Mapping[str, Mapping[str, str]]) -> None:
        new = {(cluster, ns): tuple(sorted(v.items())) for ns, v in labels.items()}
        old = {k: v for k, v in self._namespace_labels.items() if k[0] == cluster}
        if old != new:
            for key in old:
                del self._namespace_labels[key]
            self._namespace_labels.update(new)
            self._changed()

    def _gateway_objects(self) -> GatewayObjects:
        def of(kind: type[_T]) -> tuple[_T, ...]:
            table = self._gateway[kind]  # type: ignore[index]
            return tuple(table[k] for k in sorted(table))  # type: ignore[misc]

        return GatewayObjects(
            classes=of(GatewayClass),
            gateways=of(Gateway),
            routes=of(HTTPRoute),
            grants=of(ReferenceGrant),
            exports=of(ServiceExport),
            namespace_labels=tuple(sorted(self._namespace_labels.items())),
        )

    def snapshot(self) -> Snapshot:
        if self._snapshot is None:
            self._snapshot = Snapshot(
                clusters=tuple(self._clusters[k] for k in sorted(self._clusters)),
                services=tuple(self._services[k] for k in sorted(self._services)),
                ingresses=tuple(self._ingresses[k] for k in sorted(self._ingresses)),
                edges=self._edges,
                gateway=self._gateway_objects(),
            )
        return self._snapshot

    def sizes(self) -> dict[str, int]:
        return {
            "clusters": len(self._clusters),
            "services": len(self._services),
            "ingresses": len(self._ingresses),
            "edges": len(self._edges),
        }


def _placed(cluster: Cluster, declared: Location | None) -> Cluster:
    """The cluster with the location the one rule gives (``geo.regions.member_location``)."""
    placement = member_location(declared=declared, region=cluster.region, zone=cluster.zone)
    return (
        cluster if placement.location == cluster.location else replace(cluster, location=placement.location)
    )


def _replace(table: dict[ObjKey, _T], cluster: str, new: dict[ObjKey, _T]) -> bool:
    for key in new:
        if key[0] != cluster:
            raise ValueError(f"object {key} does not belong to cluster {cluster}")
    old = {k: v for k, v in table.items() if k[0] == cluster}
    if old == new:
        return False
    for key in old:
        del table[key]
    table.update(new)
    return True


def _drop_cluster(table: dict[ObjKey, _T], cluster: str) -> bool:
    keys = [k for k in table if k[0] == cluster]
    for key in keys:
        del table[key]
    return bool(keys)
