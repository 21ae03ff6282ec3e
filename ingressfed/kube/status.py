"""Status back to users: an annotation on each federated object, Events for problems.

The controller computes one :class:`ObjectStatus` per federated object and
calls :meth:`StatusWriter.publish` after each reconcile. Only changed
annotations are patched and each problem becomes one Event (again only after
it went away and came back), so a reconcile loop never turns into a write
storm against member API servers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from kubernetes_asyncio.client import ApiClient

from ingressfed.core.desired import DesiredState, ingress_resource, service_resource
from ingressfed.kube.objects import DNS_NAMES_KEY, Problem
from ingressfed.kube.rest import KubeApiError, request_json
from ingressfed.model import IngressObservation, ServiceObservation, Snapshot

__all__ = ["ObjectStatus", "StatusWriter", "annotation_value", "event_body", "object_path", "statuses_from"]

log = logging.getLogger(__name__)

REPORTING_CONTROLLER = "ingressfed.io/controller"
MAX_NOTE = 1024  # keep Events small; the message names the cause and the fix


@dataclass(frozen=True, slots=True)
class ObjectStatus:
    """What the controller published for one federated object in one member cluster.

    ``levels`` optionally maps each published name to the clusters serving it
    (zone, region and global level); ``problems`` are human messages naming
    the cause and the fix (e.g. "no load-balancer address yet").
    """

    cluster: str
    kind: str  # "Service" | "Ingress"
    namespace: str
    name: str
    dns_names: tuple[str, ...] = ()
    serving_clusters: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    levels: tuple[tuple[str, tuple[str, ...]], ...] = ()


def statuses_from(snapshot: Snapshot, state: DesiredState) -> list[ObjectStatus]:
    """One status per federated object per member cluster, from a reconcile's desired state (pure).

    Every copy of a Service (one per cluster) gets the same names and serving clusters; a
    problem tied to a cluster goes only to that cluster's copy.
    """
    problems: dict[tuple[str, str | None], list[str]] = {}
    for p in state.problems:
        problems.setdefault((p.resource, p.cluster), []).append(p.message)
    out: list[ObjectStatus] = []
    objects: list[tuple[str, str, ServiceObservation | IngressObservation]]
    objects = [("Service", service_resource(o.namespace, o.name), o) for o in snapshot.services]
    objects += [("Ingress", ingress_resource(o.namespace, o.name), o) for o in snapshot.ingresses]
    for kind, resource, obs in objects:
        levels = state.published.get(resource, {})
        serving = sorted({c for clusters in levels.values() for c in clusters})
        mine = problems.get((resource, None), []) + problems.get((resource, obs.cluster), [])
        out.append(
            ObjectStatus(
                cluster=obs.cluster,
                kind=kind,
                namespace=obs.namespace,
                name=obs.name,
                dns_names=tuple(sorted(levels)),
                serving_clusters=tuple(serving),
                problems=tuple(dict.fromkeys(mine)),
                levels=tuple(sorted(levels.items())),
            )
        )
    return out


def annotation_value(status: ObjectStatus) -> str:
    """Stable JSON (sorted, compact) so that equal content compares equal."""
    doc: dict[str, object] = {
        "names": sorted(set(status.dns_names)),
        "servingClusters": sorted(set(status.serving_clusters)),
    }
    if status.levels:
        doc["levels"] = {name: sorted(set(clusters)) for name, clusters in sorted(status.levels)}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def object_path(kind: str, namespace: str, name: str) -> str:
    if kind == "Ingress":
        return f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/{name}"
    if kind == "Service":
        return f"/api/v1/namespaces/{namespace}/services/{name}"
    raise ValueError(f"no status write-back for kind {kind!r}")


def _timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_body(
    *, kind: str, namespace: str, name: str, uid: str, note: str, reason: str, instance: str, now: float
) -> dict[str, object]:
    """A core v1 Warning Event about one object (what ``kubectl describe`` lists)."""
    api_version = {"Ingress": "networking.k8s.io/v1", "Gateway": "gateway.networking.k8s.io/v1"}.get(
        kind, "v1"
    )
    involved: dict[str, str] = {"apiVersion": api_version, "kind": kind, "namespace": namespace, "name": name}
    if uid:
        involved["uid"] = uid
    stamp = _timestamp(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{name[:200]}.", "namespace": namespace},
        "involvedObject": involved,
        "reason": reason,
        "message": note[:MAX_NOTE],
        "type": "Warning",
        "source": {"component": "ingressfed"},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "reportingComponent": REPORTING_CONTROLLER,
        "reportingInstance": instance[:128],
    }


EventKey = tuple[str, str, str, str, str]  # cluster, kind, namespace, name, note


class StatusWriter:
    """Writes annotations and Events through each member's client (``client_for(cluster)``)."""

    def __init__(
        self,
        client_for: Callable[[str], ApiClient | None],
        *,
        instance: str | None = None,
        clock: Callable[[], float] = time.time,
        may_write: Callable[[], bool] = lambda: True,
    ) -> None:
        self._client_for = client_for
        # Replicas share the member clusters: only the leader writes (a standby keeps its pending
        # Events and writes them if it takes over).
        self._may_write = may_write
        self._instance = instance or socket.gethostname()
        self._clock = clock
        self._written: dict[tuple[str, str, str, str], str] = {}
        self._emitted: set[EventKey] = set()
        self._pending: dict[EventKey, tuple[str, str]] = {}  # key -> (uid, reason)
        self._published_problems: set[EventKey] = set()
        self.patches = 0
        self.events = 0
        self._latest: list[ObjectStatus] | None = None
        self._wake = asyncio.Event()

    def submit(self, statuses: Iterable[ObjectStatus]) -> None:
        """Hand over the newest statuses from a synchronous reconcile sink; ``run`` writes them.

        Only the latest set matters: a burst of reconciles becomes one publish.
        """
        self._latest = list(statuses)
        self._wake.set()

    async def run(self) -> None:
        """Publish what ``submit`` handed over, until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            latest, self._latest = self._latest, None
            if latest is not None:
                await self.publish(latest)
            elif self._pending:
                await self.flush()  # a problem reported by the source: its Event now, not later

    # ProblemSink for the source: malformed objects become Events on the next flush.
    def report(self, cluster: str, problem: Problem) -> None:
        ref = problem.ref
        if ref.kind not in ("Service", "Ingress") or not ref.namespace or not ref.name:
            log.warning("%s: %s: %s", cluster, ref, problem.reason, extra={"cluster": cluster})
            return
        key = (cluster, ref.kind, ref.namespace, ref.name, problem.reason)
        if key not in self._emitted:
            self._pending[key] = (ref.uid, "InvalidObject")
            # An invalid annotation may change nothing the controller publishes (the default
            # applies), so no reconcile would flush it: wake the writer for it.
            self._wake.set()

    async def publish(self, statuses: Iterable[ObjectStatus]) -> None:
        """Patch changed annotations, emit Events for new problems; errors are logged, not raised.

        A standby writes nothing (the next leader's first reconcile hands over a full set again).
        """
        if not self._may_write():
            return
        current: set[EventKey] = set()
        for st in statuses:
            key = (st.cluster, st.kind, st.namespace, st.name)
            value = annotation_value(st)
            if self._written.get(key) != value and await self._patch(st, value):
                self._written[key] = value
            for note in st.problems:
                ekey = (st.cluster, st.kind, st.namespace, st.name, note)
                current.add(ekey)
                if ekey not in self._emitted:
                    self._pending[ekey] = ("", "CannotPublish")
        # A publish problem that went away is reported again when it comes back.
        gone = self._published_problems - current
        self._emitted -= gone
        self._published_problems = current
        await self.flush()

    async def flush(self) -> None:
        if not self._may_write():
            return  # kept pending: written if this replica takes over
        for ekey, (uid, reason) in list(self._pending.items()):
            cluster, kind, namespace, name, note = ekey
            api = self._client_for(cluster)
            if api is None:
                continue
            body = event_body(
                kind=kind,
                namespace=namespace,
                name=name,
                uid=uid,
                note=note,
                reason=reason,
                instance=self._instance,
                now=self._clock(),
            )
            try:
                await request_json(api, "POST", f"/api/v1/namespaces/{namespace}/events", body=body)
            except KubeApiError as exc:
                log.warning("cannot record event on %s %s/%s: %s", kind, namespace, name, exc)
                if exc.transient:
                    continue  # keep it pending, retry on the next flush
            else:
                self.events += 1
            self._emitted.add(ekey)
            del self._pending[ekey]

    def forget(self, cluster: str) -> None:
        """A member left: drop what we remember writing there."""
        self._written = {k: v for k, v in self._written.items() if k[0] != cluster}
        self._emitted = {k for k in self._emitted if k[0] != cluster}
        self._pending = {k: v for k, v in self._pending.items() if k[0] != cluster}
        self._published_problems = {k for k in self._published_problems if k[0] != cluster}

    async def _patch(self, st: ObjectStatus, value: str) -> bool:
        api = self._client_for(st.cluster)
        if api is None:
            return False
        body = {"metadata": {"annotations": {DNS_NAMES_KEY: value}}}
        try:
            await request_json(
                api,
                "PATCH",
                object_path(st.kind, st.namespace, st.name),
                body=body,
                content_type="application/merge-patch+json",
            )
        except KubeApiError as exc:
            log.warning("cannot annotate %s %s/%s in %s: %s", st.kind, st.namespace, st.name, st.cluster, exc)
            return exc.status == 404  # gone: nothing to retry
        self.patches += 1
        return True
