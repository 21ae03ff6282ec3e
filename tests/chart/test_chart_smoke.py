"""Run the three processes exactly as the chart starts them — same subcommands, same flags, the
rendered config — on loopback, and check the wiring end to end: the proxy and the DNS server follow
the controller's feed with the chart's token and serve what the controller computed.

Only what a pod would get from Kubernetes is replaced: mounted paths point into a temporary
directory, the feed URL (a Service name) points at the controller's loopback port, and listeners bind
127.0.0.1 on free ports instead of 0.0.0.0.
"""

from __future__ import annotations

import base64
import http.server
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rdatatype
import pytest
import yaml

from tests.chart.test_chart import CHART, HELM, NAMESPACE, RELEASE, _run_helm
from tests.fakes.ports import free_ports

WAIT_SECONDS = 60.0


class _Backend(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello from {self.server.server_address[0]} for {self.headers.get('Host')}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def backend() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _values(tmp_path: Path) -> Path:
    values = {
        "federation": {"name": "federation", "zone": "example.com", "globalAddresses": ["127.0.0.1"]},
        "dns": {"provider": "embedded", "options": {"nameservers": ["ns-fed1.example.com"]}},
        "source": {"kind": "static", "file": "/etc/ingressfed/objects/objects.yaml"},
        "clusters": [
            {"name": "cluster-us-east1-b", "region": "us-east1", "zone": "us-east1-b"},
            {"name": "cluster-europe-west1-b", "region": "europe-west1", "zone": "europe-west1-b"},
        ],
        "leaderElection": {"enabled": False},
        "controller": {"replicas": 1},
        "proxy": {"healthCheck": {"path": "/", "interval": 1, "timeout": 0.5}},
    }
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def _objects(backend_port: int) -> dict[str, Any]:
    return {
        "services": [
            {"cluster": "cluster-us-east1-b", "namespace": "default", "name": "k8shserver",
             "readyEndpoints": 1, "addresses": ["127.0.0.11"]},
            {"cluster": "cluster-europe-west1-b", "namespace": "default", "name": "k8shserver",
             "readyEndpoints": 1, "addresses": ["127.0.0.12"]},
        ],
        "ingresses": [
            {"cluster": "cluster-us-east1-b", "namespace": "default", "name": "k8shserver",
             "rules": [{"host": "k8shserver.example.com", "path": "/", "pathType": "Prefix"}],
             "addresses": ["127.0.0.1"], "port": backend_port},
        ],
    }  # fmt: skip


def _wait(what: str, check: Any, procs: list[subprocess.Popen[bytes]], logs: Path) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    last: Exception | None = None
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                pytest.fail(f"{what}: a process exited with {p.returncode}\n{_tail(logs)}")
        try:
            result = check()
        except Exception as exc:  # every failure mode just means "not yet"
            last = exc
        else:
            if result:
                return result
        time.sleep(0.2)
    pytest.fail(f"{what}: not reached within {WAIT_SECONDS:.0f}s (last error: {last!r})\n{_tail(logs)}")


def _tail(logs: Path) -> str:
    return "\n".join(f"--- {f.name}\n{f.read_text()[-3000:]}" for f in sorted(logs.glob("*.log")))


def _http(url: str, host: str | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


def test_rendered_commands_serve_end_to_end(tmp_path: Path, backend: int) -> None:
    if not HELM.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"helm not found at {HELM}; run .ci/helm.sh")
        pytest.skip(f"helm not found at {HELM}")
    rendered = _run_helm("template", RELEASE, str(CHART), "-n", NAMESPACE, "-f", str(_values(tmp_path)))
    assert rendered.returncode == 0, rendered.stderr
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap"]
    (token_secret,) = [
        d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"].endswith("feed-token")
    ]
    containers = {
        d["metadata"]["name"].rsplit("-", 1)[1]: d["spec"]["template"]["spec"]["containers"][0]
        for d in docs
        if d["kind"] == "Deployment"
    }
    assert set(containers) == {"controller", "proxy", "dns"}

    # What Kubernetes would mount, laid out in a temporary directory.
    names = ("controller", "proxy", "admin", "dns", "https")
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    config = yaml.safe_load(cm["data"]["config.yaml"])
    config["controller"]["listen"] = f"127.0.0.1:{ports['controller']}"
    config["proxy"]["listen"] = f"127.0.0.1:{ports['proxy']}"
    config["proxy"]["adminListen"] = f"127.0.0.1:{ports['admin']}"
    config["dnsServer"]["listen"] = f"127.0.0.1:{ports['dns']}"
    config["proxy"]["tls"]["listen"] = f"127.0.0.1:{ports['https']}"
    mounts = {
        "/etc/ingressfed/config/config.yaml": tmp_path / "config" / "config.yaml",
        "/etc/ingressfed/feed/token": tmp_path / "feed" / "token",
        "/etc/ingressfed/objects/objects.yaml": tmp_path / "objects" / "objects.yaml",
    }
    for path in mounts.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    config["controller"]["feedTokenFile"] = str(mounts["/etc/ingressfed/feed/token"])
    config["source"]["file"] = str(mounts["/etc/ingressfed/objects/objects.yaml"])
    mounts["/etc/ingressfed/config/config.yaml"].write_text(yaml.safe_dump(config))
    mounts["/etc/ingressfed/feed/token"].write_bytes(base64.b64decode(token_secret["data"]["token"]))
    mounts["/etc/ingressfed/objects/objects.yaml"].write_text(yaml.safe_dump(_objects(backend)))
    feed_url = f"http://{RELEASE}-ingressfed-controller.{NAMESPACE}.svc:9090"

    logs = tmp_path / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str) -> subprocess.Popen[bytes]:
        state = tmp_path / f"state-{name}"
        state.mkdir(exist_ok=True)
        local = {
            **{k: str(v) for k, v in mounts.items()},
            feed_url: f"http://127.0.0.1:{ports['controller']}",
        }
        args = [local.get(a, a).replace("/var/lib/ingressfed", str(state)) for a in containers[name]["args"]]
        with (logs / f"{name}-{len(procs)}.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ingressfed.cli", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
            )
        procs.append(proc)
        return proc

    def stop(proc: subprocess.Popen[bytes]) -> None:
        proc.terminate()
        try:
            proc.wait(timeout=45)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        procs.remove(proc)

    try:
        running = {name: start(name) for name in ("controller", "proxy", "dns")}

        controller = f"http://127.0.0.1:{ports['controller']}"
        _wait("controller ready", lambda: _http(f"{controller}/readyz")[0] == 200, procs, logs)
        # The feed is not open: the token from the chart's Secret is required.
        assert _http(f"{controller}/v1/feed")[0] == 401

        # The DNS server answers from the controller's view, fetched with the token.
        def resolve() -> set[str]:
            query = dns.message.make_query("k8shserver.default.federation.svc.example.com", "A")
            answer = dns.query.udp(query, "127.0.0.1", port=ports["dns"], timeout=1)
            return {rr.address for rrset in answer.answer for rr in rrset if rr.rdtype == dns.rdatatype.A}

        addresses = _wait("DNS answer", resolve, procs, logs)
        assert addresses <= {"127.0.0.11", "127.0.0.12"} and addresses

        # The proxy routes the Ingress host to the cluster serving it, and refuses unknown hosts.
        admin = f"http://127.0.0.1:{ports['admin']}"
        _wait("proxy ready", lambda: _http(f"{admin}/readyz")[0] == 200, procs, logs)
        proxy = f"http://127.0.0.1:{ports['proxy']}/"
        _, headers, body = _wait(
            "proxied request",
            lambda: (r := _http(proxy, host="k8shserver.example.com"))[0] == 200 and r,
            procs,
            logs,
        )
        assert "for k8shserver.example.com" in body
        assert headers.get("X-Served-By-Cluster") == "cluster-us-east1-b"
        assert _http(proxy, host="elsewhere.example.org")[0] == 404
        # Both followers persisted the view they serve, for restarts while the controller is away.
        assert (tmp_path / "state-proxy" / "proxy-feed.json").is_file()
        assert (tmp_path / "state-dns" / "dns-feed.json").is_file()

        # The controller goes away: the data planes keep serving, and a DNS server restarted
        # meanwhile serves the persisted view at once (docs/limits.md).
        stop(running["controller"])
        assert _http(proxy, host="k8shserver.example.com")[0] == 200
        assert resolve() == addresses
        stop(running["dns"])
        start("dns")
        assert _wait("DNS answer from persisted state", resolve, procs, logs) == addresses
    finally:
        for p in list(procs):
            stop(p)
