"""Fixtures: fake member clusters on loopback, objects as the API server holds them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ingressfed.kube.backoff import BackoffPolicy
from ingressfed.kube.informer import InformerOptions
from ingressfed.kube.members import KubeconfigSource, MemberSpec
from tests.fakes.kube.server import FakeKubeAPI

FAST = InformerOptions(
    page_size=50,
    watch_timeout=5,
    read_slack=2.0,
    connect_timeout=1.0,
    list_timeout=5.0,
    backoff=BackoffPolicy(base=0.01, cap=0.1),
)
CRD = Path(__file__).resolve().parents[2] / "ingressfed" / "kube" / "crd.yaml"


async def eventually(check: Callable[[], bool], *, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``check`` until true; fail (not hang) after ``timeout``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not check():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def service(
    name: str,
    *,
    ns: str = "default",
    ip: str | None = "10.0.0.1",
    opt_in: bool = True,
    svc_type: str = "LoadBalancer",
    annotations: dict[str, Any] | None = None,
) -> dict[str, Any]:
    ann = dict(annotations or {})
    if opt_in:
        ann["federation.ingressfed.io/enabled"] = "true"
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "annotations": ann},
        "spec": {"type": svc_type, "ports": [{"port": 80, "protocol": "TCP"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip}] if ip else []}},
    }
    return obj


def endpoint_slice(
    service_name: str, *, ns: str = "default", ready: int = 1, not_ready: int = 0, suffix: str = "abc"
) -> dict[str, Any]:
    endpoints = [{"addresses": [f"10.1.0.{i + 1}"], "conditions": {"ready": True}} for i in range(ready)]
    endpoints += [
        {"addresses": [f"10.2.0.{i + 1}"], "conditions": {"ready": False}} for i in range(not_ready)
    ]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service_name}-{suffix}",
            "namespace": ns,
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"port": 80}],
    }


def node(name: str, region: str, zone: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"topology.kubernetes.io/region": region, "topology.kubernetes.io/zone": zone},
        },
    }


@pytest.fixture
async def clusters(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await clusters(n)`` -> (list of fakes, kubeconfig path); all stopped at the end."""
    started: list[FakeKubeAPI] = []
    path = tmp_path / "kubeconfig"

    async def make(n: int, *, prefix: str = "c") -> tuple[list[FakeKubeAPI], Path]:
        fakes = []
        for i in range(n):
            fake = FakeKubeAPI(name=f"{prefix}{i}", bookmark_interval=0.5)
            await fake.start()
            started.append(fake)
            fake.write_kubeconfig(path, context=fake.name)
            fakes.append(fake)
        return fakes, path

    yield make
    for fake in started:
        await fake.close()


def member(name: str, path: Path, **kw: Any) -> MemberSpec:
    return MemberSpec(name=name, kubeconfig=KubeconfigSource(path=str(path), context=name), **kw)


def crd() -> dict[str, Any]:
    lines = CRD.read_text()
    return yaml.safe_load(lines)
