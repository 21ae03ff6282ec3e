"""The controller against the oldest and the newest Kubernetes the project supports.

The fake API server runs as each version: its ``/version`` and the built-in OpenAPI schemas every
write is checked against (objects planted with ``validate=True``, the controller's own patches).
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from ingressfed.app import start
from ingressfed.config import load_config
from tests.fakes.kube.server import FakeKubeAPI
from tests.fakes.kube.versions import NEWEST, OLDEST, SUPPORTED
from tests.fakes.ports import free_port
from tests.kube.conftest import crd, endpoint_slice, eventually, node, service
from tests.test_run_kubernetes import base_config, write_config

G = "web.default.federation.svc.example.com"
KEY = "federation.ingressfed.io/dns-names"


def test_the_range_is_1_27_to_the_newest_schemas() -> None:
    assert OLDEST == "1.27" and tuple(int(p) for p in NEWEST.split(".")) >= (1, 33)
    chart = yaml.safe_load((Path(__file__).resolve().parents[2] / "charts/ingressfed/Chart.yaml").read_text())
    assert chart["kubeVersion"].startswith(f">={OLDEST}.")


@pytest.mark.parametrize("version", SUPPORTED)
async def test_controller_end_to_end_on(version: str, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    async with (
        FakeKubeAPI(name="host", identity="host", kubernetes_version=version) as host,
        FakeKubeAPI(name="member", kubernetes_version=version) as member,
    ):
        host.write_kubeconfig(kubeconfig, context="host")
        host.add(crd(), validate=True)
        doc = yaml.safe_dump(member.kubeconfig(context="member")).encode()
        host.add(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "member-kubeconfig", "namespace": "ingressfed-system"},
                "data": {"kubeconfig": base64.b64encode(doc).decode()},
            },
            validate=True,
        )
        host.add(
            {
                "apiVersion": "ingressfed.io/v1alpha1",
                "kind": "FederatedCluster",
                "metadata": {"name": "member"},
                "spec": {
                    "kubeconfigSecretRef": {"namespace": "ingressfed-system", "name": "member-kubeconfig"}
                },
            },
            validate=True,
        )
        member.add(node("n1", "us-east1", "us-east1-b"), validate=True)
        member.add(service("web", ip="203.0.113.7"), validate=True)
        member.add(endpoint_slice("web"), validate=True)
        config = base_config(tmp_path, free_port())
        config["source"]["hostKubeconfig"] = {"path": str(kubeconfig), "context": "host"}
        config["leaderElection"] = {
            "enabled": True,
            "leaseDuration": 3,
            "renewDeadline": 2,
            "retryPeriod": 0.5,
        }
        async with start(load_config(write_config(tmp_path, config))) as running:
            await eventually(
                lambda: (
                    running.controller.last is not None
                    and any(r.name == G for r in running.controller.last.records)
                ),
                what="published",
            )
            await eventually(
                lambda: (
                    KEY
                    in (
                        (member.get("services", "web", "default") or {})
                        .get("metadata", {})
                        .get("annotations")
                        or {}
                    )
                ),
                what="status annotation written",
            )
            await eventually(
                lambda: (
                    ((host.get("federatedclusters.ingressfed.io", "member") or {}).get("status") or {}).get(
                        "locationSource"
                    )
                    == "region"
                ),
                what="FederatedCluster status",
            )
            assert host.get("leases", "ingressfed-controller", "ingressfed-system") is not None
        async with host.api_client() as api:
            from kubernetes_asyncio import client

            assert (await client.VersionApi(api).get_code()).git_version.startswith(f"v{version}.")
    assert member.requests and all(r.status < 500 for r in member.requests)
