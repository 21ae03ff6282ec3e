"""`ingressfed run` with an HTTPS listener of the global Gateway: its certificateRefs are read
from the member's Secrets and served by the in-process proxy's TLS listener (by SNI), a route
attached only to the HTTPS listener is served over TLS and is 404 on plain HTTP; a bad Secret and
a cross-namespace reference without a ReferenceGrant give the listener conditions and serve
nothing; the grant makes it served."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from ingressfed.app import start
from ingressfed.config import load_config
from ingressfed.tls.authority import LocalAuthority
from tests.fakes.gateway import install_gateway_api
from tests.fakes.kube.server import FakeKubeAPI
from tests.fakes.ports import free_port, free_ports
from tests.kube.conftest import endpoint_slice, eventually, node, service
from tests.kube.test_tls_secrets import secret
from tests.test_run_kubernetes import base_config, write_config
from tests.tls.test_ingress_tls_run import served_names

GV = "gateway.networking.k8s.io/v1"


def _https(name: str, host: str, ref: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "port": 443,
        "protocol": "HTTPS",
        "hostname": host,
        "tls": {"mode": "Terminate", "certificateRefs": [ref]},
    }


def _objects(backend_port: int) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": GV,
            "kind": "GatewayClass",
            "metadata": {"name": "ingressfed"},
            "spec": {"controllerName": "ingressfed.io/gateway-controller"},
        },
        {
            "apiVersion": GV,
            "kind": "Gateway",
            "metadata": {"name": "global", "namespace": "default"},
            "spec": {
                "gatewayClassName": "ingressfed",
                "listeners": [
                    {"name": "http", "port": 80, "protocol": "HTTP"},
                    _https("secure", "secure.example.com", {"name": "secure-tls"}),
                    _https("bad", "bad.example.com", {"name": "bad-tls"}),
                    _https("shared", "shared.example.com", {"name": "shared-tls", "namespace": "certs"}),
                ],
            },
        },
        {
            "apiVersion": GV,
            "kind": "HTTPRoute",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "parentRefs": [{"name": "global", "sectionName": s} for s in ("secure", "bad", "shared")],
                "rules": [{"backendRefs": [{"name": "web", "port": backend_port}]}],
            },
        },
    ]


GRANT = {
    "apiVersion": "gateway.networking.k8s.io/v1beta1",
    "kind": "ReferenceGrant",
    "metadata": {"name": "gateways-in-default", "namespace": "certs"},
    "spec": {
        "from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "default"}],
        "to": [{"group": "", "kind": "Secret"}],
    },
}


async def _backend() -> tuple[web.AppRunner, int]:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(text=f"backend {request.host} {request.headers.get('X-Forwarded-Proto')}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, runner.addresses[0][1]


async def https_get(port: int, host: str, ca: Path) -> tuple[int, str]:
    """One HTTP/1.1 request over TLS with SNI ``host``, the chain checked against ``ca``."""
    ctx = ssl.create_default_context(cafile=str(ca))
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=host)
    writer.write(f"GET /hello HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body.decode()


def listener(us: FakeKubeAPI, name: str) -> dict[str, tuple[str, str]]:
    status = (us.get("gateways", "global", "default") or {}).get("status") or {}
    for ls in status.get("listeners") or []:
        if ls["name"] == name:
            return {c["type"]: (c["status"], c["reason"]) for c in ls["conditions"]}
    return {}


async def test_https_listener_certificates_served_bad_ones_reported(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    ca = LocalAuthority()
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.ca_pem)
    proxy_port, https_port = free_ports(2)
    runner, backend_port = await _backend()
    try:
        async with FakeKubeAPI() as us:
            us.write_kubeconfig(kubeconfig, context="us")
            us.add(node("n1", "us-east1", "us-east1-b"))
            install_gateway_api(us)
            us.add(secret("secure-tls", ca.issue("secure.example.com"), ns="default"))
            us.add(secret("bad-tls", ca.issue("bad.example.com"), ns="default", kind="Opaque"))
            us.add(secret("shared-tls", ca.issue("shared.example.com"), ns="certs"))
            svc = service("web", ip="127.0.0.1")
            svc["spec"]["ports"] = [{"port": backend_port, "protocol": "TCP"}]
            us.add(svc)
            us.add(endpoint_slice("web", ready=1))
            doc = base_config(tmp_path, free_port())
            doc["federation"]["globalAddresses"] = ["192.0.2.80"]
            doc["clusters"] = [{"name": "us", "kubeconfig": {"path": str(kubeconfig), "context": "us"}}]
            doc["proxy"] = {
                "enabled": True,
                "listen": f"127.0.0.1:{proxy_port}",
                "adminListen": f"127.0.0.1:{free_port()}",
                "tls": {"listen": f"127.0.0.1:{https_port}"},
            }
            doc["gateway"] = {"recheck": 0.2}
            config = load_config(write_config(tmp_path, doc))
            async with start(config), aiohttp.ClientSession() as http:
                for obj in _objects(backend_port):
                    us.add(obj, validate=True)

                names: list[str] | None = None
                for _ in range(200):
                    names = await served_names(https_port, "secure.example.com", ca_file)
                    if names:
                        break
                    await asyncio.sleep(0.05)
                assert names == ["secure.example.com"]
                for _ in range(100):
                    got = await https_get(https_port, "secure.example.com", ca_file)
                    if got[0] == 200:
                        break
                    await asyncio.sleep(0.05)
                assert got == (200, "backend secure.example.com https")
                # The route is attached to the HTTPS listener only: not served on plain HTTP.
                url = f"http://127.0.0.1:{proxy_port}/hello"
                async with http.get(url, headers={"Host": "secure.example.com"}) as resp:
                    assert resp.status == 404

                await eventually(
                    lambda: listener(us, "bad").get("ResolvedRefs") == ("False", "InvalidCertificateRef"),
                    what="bad listener InvalidCertificateRef",
                )
                assert listener(us, "bad")["Programmed"] == ("False", "Invalid")
                assert listener(us, "secure")["Programmed"] == ("True", "Programmed")
                assert listener(us, "shared")["ResolvedRefs"] == ("False", "RefNotPermitted")
                for host in ("bad.example.com", "shared.example.com"):
                    assert await served_names(https_port, host, ca_file) is None
                events = [e for e in us.objects("events", "default") if e["reason"] == "InvalidTLSSecret"]
                assert [(e["involvedObject"]["kind"], "WrongSecretType" in e["message"]) for e in events] == [
                    ("Gateway", True)
                ]

                us.add(GRANT, validate=True)
                for _ in range(200):
                    names = await served_names(https_port, "shared.example.com", ca_file)
                    if names:
                        break
                    await asyncio.sleep(0.05)
                assert names == ["shared.example.com"]
                assert (await https_get(https_port, "shared.example.com", ca_file))[0] == 200
                await eventually(
                    lambda: listener(us, "shared").get("ResolvedRefs") == ("True", "ResolvedRefs"),
                    what="shared listener resolved once granted",
                )
    finally:
        await runner.cleanup()
