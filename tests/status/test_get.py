"""``ingressfed get`` as a user types it: against a running controller, and against the host cluster."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from pathlib import Path

import pytest
import yaml

from ingressfed.app import Running
from ingressfed.cli import build_parser
from ingressfed.model import ClusterStatus
from ingressfed.status.commands import run_get
from tests.fakes.kube.server import FakeKubeAPI
from tests.kube.conftest import crd


async def get(*argv: str) -> tuple[int, str]:
    args = build_parser().parse_args(["get", *argv])
    out = io.StringIO()
    code = await run_get(args, out=out)
    return code, out.getvalue()


def at(running: Running) -> list[str]:
    return ["--controller", f"http://127.0.0.1:{running.http_port}"]


async def test_tables_against_a_controller(controller: Running) -> None:
    code, text = await get("clusters", *at(controller))
    assert code == 0
    lines = [line.split() for line in text.splitlines()]
    assert lines[0] == ["NAME", "STATUS", "DATA", "PLANE", "HEALTH", "LAST", "TRANSITION"]
    assert [line[:3] for line in lines[1:]] == [
        ["cluster-europe-west1-b", "Ready", "Unchecked"],
        ["cluster-us-east1-b", "Ready", "Unchecked"],
    ]
    code, text = await get("clusters", "-o", "wide", *at(controller))
    assert code == 0 and "REGION" in text and "europe-west1-b" in text and "50.45,3.82" in text

    code, text = await get("routes", "-o", "wide", "--controller", f"127.0.0.1:{controller.http_port}")
    assert code == 0
    row = text.splitlines()[1].split()
    assert row[:3] == ["web.example.com", "/", "cluster-europe-west1-b,cluster-us-east1-b"]
    assert "cluster-us-east1-b=192.0.2.10:8080" in row[-1]

    code, text = await get("records", *at(controller))
    assert code == 0
    names = {line.split()[0] for line in text.splitlines()[1:]}
    assert "web.default.federation.svc.example.com" in names and "web.example.com" in names


async def test_json_and_yaml_are_lists_of_items(controller: Running) -> None:
    code, text = await get("routes", "-o", "json", *at(controller))
    doc = json.loads(text)
    assert code == 0 and doc["kind"] == "List" and doc["items"][0]["host"] == "web.example.com"
    code, text = await get("clusters", "-o", "yaml", *at(controller))
    doc = yaml.safe_load(text)
    assert code == 0 and [i["name"] for i in doc["items"]] == ["cluster-europe-west1-b", "cluster-us-east1-b"]


async def test_token_from_a_file(
    guarded: Running, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = await get("clusters", *at(guarded))
    assert code == 1 and "401 unauthorized: pass the token with --token-file" in capsys.readouterr().err
    (tmp_path / "t").write_text("wrong\n")
    code, _ = await get("clusters", *at(guarded), "--token-file", str(tmp_path / "t"))
    assert code == 1 and "not accepted" in capsys.readouterr().err
    (tmp_path / "t").write_text("s3cret-token\n")
    code, text = await get("clusters", *at(guarded), "--token-file", str(tmp_path / "t"))
    assert code == 0 and "cluster-us-east1-b" in text
    code, _ = await get("clusters", *at(guarded), "--token-file", str(tmp_path / "missing"))
    assert code == 1 and "cannot be read" in capsys.readouterr().err


async def test_clear_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = await get("routes")
    assert code == 2 and "--controller URL" in capsys.readouterr().err
    code, _ = await get("clusters", "--controller", "http://127.0.0.1:9")
    assert code == 1 and "no controller answers at http://127.0.0.1:9" in capsys.readouterr().err
    code, _ = await get("clusters", "--controller", "ftp://x")
    assert code == 1 and "--controller: 'ftp://x'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["get", "nothing"])


async def test_clusters_from_the_host_cluster_without_a_controller(tmp_path: Path) -> None:
    host = FakeKubeAPI(name="host", identity="admin")  # a person's kubeconfig, not the controller's account
    await host.start()
    try:
        host.add(crd())
        host.add(
            {
                "apiVersion": "ingressfed.io/v1alpha1",
                "kind": "FederatedCluster",
                "metadata": {"name": "cluster-eu"},
                "spec": {
                    "region": "europe-west1",
                    "zone": "europe-west1-b",
                    "kubeconfigSecretRef": {"namespace": "ingressfed-system", "name": "cluster-eu"},
                },
            }
        )
        path = host.write_kubeconfig(tmp_path / "kubeconfig", context="host")
        code, text = await get(
            "clusters", "-o", "wide", "--kubeconfig", str(path), "--host-cluster-context", "host"
        )
    finally:
        await host.close()
    assert code == 0
    lines = [line.split() for line in text.splitlines()]
    assert lines[0] == ["NAME", "STATUS", "AGE", "REGION", "ZONE"]
    assert lines[1][0] == "cluster-eu" and lines[1][-2:] == ["europe-west1", "europe-west1-b"]


async def test_watch_prints_the_rows_that_change(controller: Running) -> None:
    args = build_parser().parse_args(["get", "clusters", "--watch", *at(controller)])
    out = io.StringIO()
    watching = asyncio.ensure_future(run_get(args, out=out))
    try:
        async with asyncio.timeout(10):
            while "cluster-us-east1-b" not in out.getvalue():
                await asyncio.sleep(0.02)
        listed = out.getvalue().splitlines()
        assert len(listed) == 3  # header and two clusters
        controller.store.set_cluster_status("cluster-europe-west1-b", ClusterStatus.OFFLINE)
        async with asyncio.timeout(10):
            while len(out.getvalue().splitlines()) == 3:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # a second, unrelated version must not repeat unchanged rows
        added = out.getvalue().splitlines()[3:]
        assert [line.split()[:4] for line in added] == [
            ["cluster-europe-west1-b", "Offline", "Unchecked", "unhealthy"]
        ]
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
