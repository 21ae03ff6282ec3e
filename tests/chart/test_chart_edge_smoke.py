"""The edge role run as the chart starts it: a host release's controller and an edge release's proxy
(rendered separately, as two installs in two clusters would be), on loopback. The edge follows the
host's feed with the token from its Secret, serves the Ingress host from its own cluster, and its
health reports make it Live in the controller's registry with the address it announces.

As in test_chart_smoke, only what Kubernetes would provide is replaced: mounted paths point into a
temporary directory, the feed URL points at the controller's loopback port, listeners bind 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.test_chart import CHART, HELM, NAMESPACE, RELEASE, _run_helm
from tests.chart.test_chart_smoke import _http, _objects, _wait, backend
from tests.fakes.ports import free_ports

__all__ = ["backend"]  # the fixture, shared with the host smoke test

FEED_URL = "https://ingressfed.example.net:9090"


def _render(values: dict[str, Any], release: str, tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / f"{release}-values.yaml"
    path.write_text(yaml.safe_dump(values))
    rendered = _run_helm("template", release, str(CHART), "-n", NAMESPACE, "-f", str(path))
    assert rendered.returncode == 0, rendered.stderr
    return [d for d in yaml.safe_load_all(rendered.stdout) if d]


def _local_config(
    docs: list[dict[str, Any]], ports: dict[str, int], token: Path, objects: Path
) -> dict[str, Any]:
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap"]
    config: dict[str, Any] = yaml.safe_load(cm["data"]["config.yaml"])
    config["controller"]["listen"] = f"127.0.0.1:{ports['controller']}"
    config["controller"]["feedTokenFile"] = str(token)
    config["proxy"]["listen"] = f"127.0.0.1:{ports['proxy']}"
    config["proxy"]["adminListen"] = f"127.0.0.1:{ports['admin']}"
    config["proxy"].pop("tls", None)
    config["dnsServer"]["listen"] = f"127.0.0.1:{ports['dns']}"
    config["source"]["file"] = str(objects)
    return config


def test_edge_release_follows_the_host_and_reports(tmp_path: Path, backend: int) -> None:
    if not HELM.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"helm not found at {HELM}; run .ci/helm.sh")
        pytest.skip(f"helm not found at {HELM}")
    clusters = [
        {"name": "cluster-us-east1-b", "region": "us-east1", "zone": "us-east1-b"},
        {"name": "cluster-europe-west1-b", "region": "europe-west1", "zone": "europe-west1-b"},
    ]
    host = _render(
        {
            "federation": {"name": "federation", "zone": "example.com"},
            "source": {"kind": "static", "file": "/etc/ingressfed/objects/objects.yaml"},
            "clusters": clusters,
            "edges": [{"name": "edge-us", "cluster": "cluster-us-east1-b"}],
            "leaderElection": {"enabled": False},
            "controller": {"replicas": 1},
            "proxy": {"enabled": False},
            "dnsServer": {"enabled": False},
        },
        RELEASE,
        tmp_path,
    )
    edge = _render(
        {
            "role": "edge",
            "federation": {"name": "federation", "zone": "example.com"},
            "edge": {"name": "edge-us", "cluster": "cluster-us-east1-b", "feedUrl": FEED_URL,
                     "secret": "ingressfed-edge", "publicAddresses": ["127.0.0.61"], "reportInterval": 1},
            "proxy": {"healthCheck": {"path": "/", "interval": 1, "timeout": 0.5}},
            "dnsServer": {"enabled": False},
        },
        "edge",
        tmp_path,
    )  # fmt: skip
    (token_secret,) = [
        d for d in host if d["kind"] == "Secret" and d["metadata"]["name"].endswith("feed-token")
    ]
    (controller,) = [d for d in host if d["kind"] == "Deployment"]
    (proxy,) = [d for d in edge if d["kind"] == "Deployment"]
    assert proxy["spec"]["template"]["spec"]["automountServiceAccountToken"] is False

    token = tmp_path / "feed" / "token"  # the host's Secret, copied into the edge's Secret
    token.parent.mkdir()
    token.write_bytes(base64.b64decode(token_secret["data"]["token"]))
    objects = tmp_path / "objects.yaml"
    objects.write_text(yaml.safe_dump(_objects(backend)))
    names = ("controller", "proxy", "admin", "dns")
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    configs = {}
    for name, docs in (("host", host), ("edge", edge)):
        path = tmp_path / name / "config.yaml"
        path.parent.mkdir()
        path.write_text(yaml.safe_dump(_local_config(docs, ports, token, objects)))
        configs[name] = path

    logs = tmp_path / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen[bytes]] = []
    controller_url = f"http://127.0.0.1:{ports['controller']}"

    def start(name: str, args: list[str]) -> None:
        state = tmp_path / f"state-{name}"
        state.mkdir()
        local = {
            "/etc/ingressfed/config/config.yaml": str(configs["host" if name == "controller" else "edge"]),
            "/etc/ingressfed/feed/token": str(token),
            FEED_URL: controller_url,
        }
        argv = [local.get(a, a).replace("/var/lib/ingressfed", str(state)) for a in args]
        with (logs / f"{name}.log").open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "ingressfed.cli", *argv], stdout=log, stderr=subprocess.STDOUT
                )
            )

    try:
        start("controller", controller["spec"]["template"]["spec"]["containers"][0]["args"])
        _wait("controller ready", lambda: _http(f"{controller_url}/readyz")[0] == 200, procs, logs)
        start("edge", proxy["spec"]["template"]["spec"]["containers"][0]["args"])
        auth = {"Authorization": "Bearer " + token.read_text().strip()}

        def edge_live() -> dict[str, Any] | None:
            import urllib.request

            req = urllib.request.Request(f"{controller_url}/v1/edges", headers=auth)
            with urllib.request.urlopen(req, timeout=3) as resp:
                rows = {e["name"]: e for e in json.loads(resp.read())["edges"]}
            row = rows.get("edge-us")
            return row if row is not None and row["status"] == "Live" and row["reports"] >= 1 else None

        row = _wait("edge reports and is Live", edge_live, procs, logs)
        assert row["addresses"] == ["127.0.0.61"] and row["cluster"] == "cluster-us-east1-b"
        _, headers, body = _wait(
            "request through the edge",
            lambda: (
                (r := _http(f"http://127.0.0.1:{ports['proxy']}/", host="k8shserver.example.com"))[0] == 200
                and r
            ),
            procs,
            logs,
        )
        assert headers.get("X-Served-By-Cluster") == "cluster-us-east1-b"
        assert "for k8shserver.example.com" in body
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
