"""FederatedCluster registry in a fake host: members added and removed live, status written back."""

from __future__ import annotations

import asyncio
import base64
from contextlib import AsyncExitStack
from typing import Any

import yaml

from ingressfed.core.health import HealthThresholds
from ingressfed.kube.clients import ClientPool
from ingressfed.kube.probes import Prober
from ingressfed.kube.registry import Registry
from ingressfed.kube.source import KubeSource, LogProblems
from ingressfed.model import ClusterStatus
from ingressfed.store import Store
from tests.fakes.kube.server import FakeKubeAPI
from tests.kube.conftest import FAST, crd, endpoint_slice, eventually, node, service


def register(host: FakeKubeAPI, member: FakeKubeAPI, name: str, **spec: Any) -> None:
    doc = yaml.safe_dump(member.kubeconfig())
    host.add(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{name}-kc", "namespace": "ingressfed-system"},
            "data": {"kubeconfig": base64.b64encode(doc.encode()).decode()},
        }
    )
    host.add(
        {
            "apiVersion": "ingressfed.io/v1alpha1",
            "kind": "FederatedCluster",
            "metadata": {"name": name},
            "spec": {"kubeconfigSecretRef": {"namespace": "ingressfed-system", "name": f"{name}-kc"}, **spec},
        }
    )


def conditions(host: FakeKubeAPI, name: str) -> dict[str, dict[str, Any]]:
    fc = host.get("federatedclusters.ingressfed.io", name) or {}
    return {c["type"]: c for c in (fc.get("status") or {}).get("conditions") or []}


async def test_members_follow_the_registry_and_status_is_written(clusters) -> None:
    (host, m1, m2), _ = await clusters(3, prefix="h")
    host.add(crd())
    host.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ingressfed-system"}})
    for i, m in enumerate((m1, m2)):
        m.add(node("n", "asia-east1", f"asia-east1-{'ab'[i]}"))
        m.add(service("web", ip=f"192.0.2.{i + 1}"))
        m.add(endpoint_slice("web"))
    store = Store()
    problems = LogProblems()
    async with AsyncExitStack() as stack:
        host_api = await stack.enter_async_context(host.api_client(identity="host"))
        clients = await stack.enter_async_context(ClientPool(host=host_api))
        prober = Prober(store, thresholds=HealthThresholds(period=0.1, timeout=0.5))
        source = await stack.enter_async_context(
            KubeSource(store, clients=clients, prober=prober, options=FAST, problems=problems)
        )
        registry = Registry(host_api, source, options=FAST, refresh=0.2)
        task = asyncio.create_task(registry.run())
        try:
            register(host, m1, "asia-a")
            await eventually(
                lambda: {s.cluster for s in store.snapshot().services} == {"asia-a"}, what="asia-a"
            )
            register(host, m2, "asia-b", region="asia-east1", zone="asia-east1-b", weight=200)
            await eventually(lambda: {s.cluster for s in store.snapshot().services} == {"asia-a", "asia-b"})
            assert store.cluster("asia-b").weight == 200

            await eventually(
                lambda: conditions(host, "asia-a").get("Ready", {}).get("reason") == "Ready",
                what="Ready written back",
            )
            ready = conditions(host, "asia-a")["Ready"]
            assert ready["status"] == "True" and ready["lastProbeTime"] and ready["lastTransitionTime"]
            await eventually(
                lambda: (
                    (host.get("federatedclusters.ingressfed.io", "asia-a") or {})
                    .get("status", {})
                    .get("observedZone")
                    == "asia-east1-a"
                ),
                what="observed zone",
            )

            # The member's API server dies: Offline, recorded on the resource; objects stay (core decides).
            await m1.stop()
            await eventually(lambda: store.cluster("asia-a").status is ClusterStatus.OFFLINE)
            await eventually(
                lambda: conditions(host, "asia-a").get("Offline", {}).get("status") == "True",
                what="Offline written back",
            )
            assert conditions(host, "asia-a")["Ready"]["reason"] == "Offline"
            assert "asia-a" in {s.cluster for s in store.snapshot().services}

            # Disabled, then deleted: the member's objects leave the Store.
            host.patch("federatedclusters.ingressfed.io", "asia-b", {"spec": {"disabled": True}})
            await eventually(lambda: store.cluster("asia-b") is None, what="disabled member removed")
            host.delete("federatedclusters.ingressfed.io", "asia-a")
            await eventually(lambda: not store.snapshot().services and store.cluster("asia-a") is None)
            assert source.members == []

            # A broken resource is a problem, not a crash; a valid one after it still works.
            host.add(
                {
                    "apiVersion": "ingressfed.io/v1alpha1",
                    "kind": "FederatedCluster",
                    "metadata": {"name": "Not_A_Label"},
                    "spec": {"kubeconfigSecretRef": {}},
                },
                validate=False,
            )
            await m1.start()
            register(host, m1, "asia-a")
            await eventually(lambda: "asia-a" in {s.cluster for s in store.snapshot().services})
            assert source.members == ["asia-a"]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_missing_kubeconfig_secret_reports_offline(clusters) -> None:
    (host,), _ = await clusters(1, prefix="h")
    host.add(crd())
    host.add(
        {
            "apiVersion": "ingressfed.io/v1alpha1",
            "kind": "FederatedCluster",
            "metadata": {"name": "lost"},
            "spec": {"kubeconfigSecretRef": {"namespace": "ingressfed-system", "name": "nope"}},
        }
    )
    store = Store()
    async with AsyncExitStack() as stack:
        host_api = await stack.enter_async_context(host.api_client(identity="host"))
        clients = await stack.enter_async_context(ClientPool(host=host_api))
        source = await stack.enter_async_context(
            KubeSource(store, clients=clients, prober=Prober(store), options=FAST)
        )
        registry = Registry(host_api, source, options=FAST)
        task = asyncio.create_task(registry.run())
        try:
            await eventually(
                lambda: (c := store.cluster("lost")) is not None and c.status is ClusterStatus.OFFLINE
            )
            await eventually(lambda: conditions(host, "lost").get("Offline", {}).get("status") == "True")
            assert "nope" in conditions(host, "lost")["Offline"]["message"]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
