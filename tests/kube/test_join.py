"""join/unjoin round trips and the get commands, against fake member and host clusters."""

from __future__ import annotations

import argparse
import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ingressfed.kube import commands
from ingressfed.kube.join import JoinError, JoinPlan, connect_dict, join, unjoin
from ingressfed.kube.rest import request_json
from tests.fakes.kube.server import FakeKubeAPI
from tests.kube.conftest import crd


def everything(fake: FakeKubeAPI) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The fake's full object set, keyed by type/namespace/name (content without bookkeeping)."""
    out = {}
    for rt in fake.store.types():
        for obj in fake.store.all_objects(rt):
            meta = obj["metadata"]
            body = {k: v for k, v in obj.items() if k != "metadata"}
            body["labels"] = meta.get("labels")
            out[(rt.key, meta.get("namespace") or "", meta["name"])] = body
    return out


@pytest.fixture
async def host_and_member(tmp_path: Path):
    # join and unjoin are run by a cluster admin (they create accounts and roles); what join creates
    # is then used with RBAC enforced (the account join made must be able to do what it needs).
    host = FakeKubeAPI(name="host", identity="admin")
    member = FakeKubeAPI(name="member", identity="admin")
    await host.start()
    await member.start()
    host.add(crd())
    host.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ingressfed-system"}})
    member.add(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "ClusterIP", "ports": [{"port": 80}]},
        }
    )
    path = host.write_kubeconfig(tmp_path / "kubeconfig", context="host")
    member.write_kubeconfig(path, context="member")
    try:
        yield host, member, path
    finally:
        await member.close()
        await host.close()


async def test_join_then_unjoin_leaves_nothing_behind(host_and_member) -> None:
    host, member, _ = host_and_member
    before_host, before_member = everything(host), everything(member)
    plan = JoinPlan(name="cluster-a", region="us-east1", zone="us-east1-b")
    async with host.api_client() as h, member.api_client() as m:
        await join(plan, m, host=h)
        first_host, first_member = everything(host), everything(member)
        # Idempotent: a second join (a fresh token) creates nothing new anywhere.
        kubeconfig = await join(plan, m, host=h)
        assert set(everything(member)) == set(first_member)
        assert set(everything(host)) == set(first_host)

        created = set(first_member) - set(before_member)
        kinds = {k[0] for k in created}
        assert {
            "namespaces",
            "serviceaccounts",
            "clusterroles.rbac.authorization.k8s.io",
            "clusterrolebindings.rbac.authorization.k8s.io",
        } <= kinds
        ours = {"app.kubernetes.io/managed-by": "ingressfed", "ingressfed.io/cluster": "cluster-a"}
        for key in created:
            assert ours.items() <= (first_member[key]["labels"] or {}).items(), key
        for key in set(first_host) - set(before_host):
            assert ours.items() <= (first_host[key]["labels"] or {}).items(), key

        fc = host.get("federatedclusters.ingressfed.io", "cluster-a")
        assert fc is not None
        assert fc["spec"]["region"] == "us-east1" and fc["spec"]["zone"] == "us-east1-b"
        ref = fc["spec"]["kubeconfigSecretRef"]
        secret = host.get("secrets", ref["name"], ref["namespace"])
        stored = yaml.safe_load(base64.b64decode(secret["data"]["kubeconfig"]))
        assert stored == kubeconfig
        # The stored kubeconfig reaches the member with the new account's own token.
        api = await connect_dict(stored)
        try:
            listing = await request_json(api, "GET", "/api/v1/services")
            assert [i["metadata"]["name"] for i in listing["items"]] == ["web"]
        finally:
            await api.close()
        user = next(r.user for r in reversed(member.requests) if r.path == "/api/v1/services")
        assert user == "system:serviceaccount:ingressfed-system:ingressfed-cluster-a"

        deleted = await unjoin(plan, m, host=h)
        assert deleted
    assert everything(member) == before_member
    assert everything(host) == before_host


async def test_unjoin_keeps_what_join_did_not_create(host_and_member) -> None:
    host, member, _ = host_and_member
    plan = JoinPlan(name="cluster-b", token_seconds=None)  # long-lived token Secret
    async with host.api_client() as h, member.api_client() as m:
        await join(plan, m, host=h)
        # A user's object in the namespace join created, and a same-named object without our labels.
        member.add(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "mine", "namespace": "ingressfed-system"},
                "data": {},
            }
        )
        await unjoin(plan, m, host=h)
        assert member.get("configmaps", "mine", "ingressfed-system") is not None
        assert member.get("namespaces", "ingressfed-system") is not None
        assert member.get("serviceaccounts", "ingressfed-cluster-b", "ingressfed-system") is None
        assert member.get("secrets", "ingressfed-cluster-b-token", "ingressfed-system") is None
        assert host.get("federatedclusters.ingressfed.io", "cluster-b") is None

        member.add(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "ingressfed-cluster-c"},
                "rules": [],
            }
        )
        with pytest.raises(JoinError, match="not created by ingressfed join"):
            await join(JoinPlan(name="cluster-c"), m, host=h)
        await unjoin(JoinPlan(name="cluster-c"), m, host=h)
        assert member.get("clusterroles.rbac.authorization.k8s.io", "ingressfed-cluster-c") is not None


async def test_join_into_local_config_file(host_and_member, tmp_path: Path) -> None:
    _, member, _ = host_and_member
    config = tmp_path / "federation.yaml"
    config.write_text(yaml.safe_dump({"federation": {"name": "federation", "zone": "example.com"}}))
    plan = JoinPlan(name="local", region="europe-west1")
    async with member.api_client() as m:
        await join(plan, m, config_file=config)
        doc = yaml.safe_load(config.read_text())
        entry = doc["clusters"][0]
        assert entry["name"] == "local" and entry["region"] == "europe-west1"
        kc = Path(entry["kubeconfig"]["path"])
        assert kc.stat().st_mode & 0o777 == 0o600
        await unjoin(plan, m, config_file=config)
    assert yaml.safe_load(config.read_text())["clusters"] == []
    assert not kc.exists()
    assert doc["federation"] == {"name": "federation", "zone": "example.com"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ingressfed")
    commands.register(parser.add_subparsers(dest="command"))
    return parser


async def test_cli_join_get_unjoin(host_and_member) -> None:
    host, member, path = host_and_member
    before = everything(member)
    base = ["--kubeconfig", str(path), "--host-cluster-context", "host"]
    args = _parser().parse_args(
        ["join", "cluster-eu", "--cluster-context", "member", *base, "--region", "europe-west1"]
    )
    assert await args.func(args) == 0
    # The controller would write this status; here the test plays it.
    host.patch(
        "federatedclusters.ingressfed.io",
        "cluster-eu",
        {
            "status": {
                "observedRegion": "europe-west1",
                "observedZone": "europe-west1-b",
                "conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}],
            }
        },
        subresource="status",
    )
    member.add(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "shop",
                "namespace": "default",
                "annotations": {
                    "federation.ingressfed.io/dns-names": json.dumps(
                        {
                            "names": ["shop.default.federation.svc.example.com"],
                            "servingClusters": ["cluster-eu"],
                        }
                    )
                },
            },
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
        }
    )

    args = _parser().parse_args(["get", "clusters", "-o", "wide", *base])
    out = io.StringIO()
    assert await commands.run_get(args, out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "AGE", "REGION", "ZONE"]
    assert lines[1].split()[:2] == ["cluster-eu", "Ready"]
    assert lines[1].split()[3:] == ["europe-west1", "europe-west1-b"]

    args = _parser().parse_args(["get", "clusters", "-o", "json", *base])
    out = io.StringIO()
    assert await commands.run_get(args, out=out) == 0
    assert [i["metadata"]["name"] for i in json.loads(out.getvalue())["items"]] == ["cluster-eu"]

    args = _parser().parse_args(["get", "services", *base])
    out = io.StringIO()
    assert await commands.run_get(args, out=out) == 0
    assert out.getvalue().splitlines()[1].split() == [
        "default",
        "shop",
        "shop.default.federation.svc.example.com",
        "cluster-eu",
    ]

    member.delete("services", "shop", "default")
    args = _parser().parse_args(["unjoin", "cluster-eu", "--cluster-context", "member", *base])
    assert await args.func(args) == 0
    assert everything(member).keys() == before.keys()
    assert host.get("federatedclusters.ingressfed.io", "cluster-eu") is None


def test_age_format() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 10, tzinfo=UTC)
    assert commands.format_age("2026-01-09T23:59:15Z", now=now) == "45s"
    assert commands.format_age("2026-01-09T23:48:00Z", now=now) == "12m"
    assert commands.format_age("2026-01-09T21:00:00Z", now=now) == "3h"
    assert commands.format_age("2026-01-03T00:00:00Z", now=now) == "7d"
    assert commands.format_age("garbage", now=now) == "<unknown>"


async def test_unjoin_removes_the_status_annotation_and_keeps_the_users(host_and_member) -> None:
    """Finding 7: the dns-names annotation stayed on member Services after unjoin."""
    host, member, _ = host_and_member
    key = "federation.ingressfed.io/dns-names"
    mine = {"federation.ingressfed.io/enabled": "true", "team": "web"}
    member.add(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "shop",
                "namespace": "default",
                "annotations": {**mine, key: '{"names":[]}'},
            },
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
        }
    )
    member.add(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "site", "namespace": "default", "annotations": {key: '{"names":[]}'}},
            "spec": {"rules": [{"host": "www.example.com"}]},
        }
    )
    plan = JoinPlan(name="cluster-b")
    async with host.api_client() as h, member.api_client() as m:
        await join(plan, m, host=h)
        deleted = await unjoin(plan, m, host=h)
    shop = member.get("services", "shop", "default")
    assert shop["metadata"]["annotations"] == mine
    assert key not in (member.get("ingresses", "site", "default")["metadata"].get("annotations") or {})
    assert any("services/shop" in d for d in deleted) and any("ingresses/site" in d for d in deleted)
    assert "metadata" in member.get("services", "web", "default")  # untouched: it had no annotation
