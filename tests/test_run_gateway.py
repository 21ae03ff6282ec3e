"""`ingressfed run` with Gateway API inputs: CRDs installed while it runs, HTTPRoute to DNS, the
in-process proxy and status, end to end through a fake API server serving the real v1.6.1 CRDs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from ingressfed.app import start
from ingressfed.config import load_config
from tests.fakes.gateway import install_gateway_api, install_service_export
from tests.fakes.kube.server import FakeKubeAPI
from tests.fakes.ports import free_port, free_ports
from tests.kube.conftest import endpoint_slice, eventually, node, service
from tests.test_run_kubernetes import a_records, base_config, write_config


async def _backend() -> tuple[web.AppRunner, int, list[str]]:
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(f"{request.host}{request.path_qs}")
        return web.Response(text=f"backend saw {request.path_qs}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, port, seen


def _objects(port: int) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GatewayClass",
            "metadata": {"name": "ingressfed"},
            "spec": {"controllerName": "ingressfed.io/gateway-controller"},
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "global", "namespace": "default"},
            "spec": {
                "gatewayClassName": "ingressfed",
                "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
            },
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "parentRefs": [{"name": "global"}],
                "hostnames": ["web.example.com"],
                "rules": [
                    {
                        "matches": [{"path": {"type": "PathPrefix", "value": "/app"}}],
                        "filters": [
                            {
                                "type": "URLRewrite",
                                "urlRewrite": {
                                    "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}
                                },
                            }
                        ],
                        "backendRefs": [{"name": "web", "port": port}],
                    }
                ],
            },
        },
    ]


async def test_httproute_installed_while_running_reaches_dns_proxy_and_status(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    dns_port, proxy_port = free_ports(2)
    runner, backend_port, seen = await _backend()
    try:
        async with FakeKubeAPI() as us:
            us.write_kubeconfig(kubeconfig, context="us")
            us.add(node("n1", "us-east1", "us-east1-b"))
            doc = base_config(tmp_path, dns_port)
            doc["federation"]["globalAddresses"] = ["192.0.2.80"]
            doc["proxy"] = {
                "enabled": True,
                "listen": f"127.0.0.1:{proxy_port}",
                "adminListen": f"127.0.0.1:{free_port()}",
            }
            doc["gateway"] = {"recheck": 0.2}
            doc["clusters"] = [{"name": "us", "kubeconfig": {"path": str(kubeconfig), "context": "us"}}]
            config = load_config(write_config(tmp_path, doc))
            async with start(config), aiohttp.ClientSession() as http:
                # The Service is opted in by a ServiceExport (MCS), not the label.
                install_service_export(us)
                svc = service("web", ip="127.0.0.1", opt_in=False)
                svc["spec"]["ports"] = [{"port": backend_port, "protocol": "TCP"}]
                us.add(svc)
                us.add(endpoint_slice("web", ready=1))
                us.add(
                    {
                        "apiVersion": "multicluster.x-k8s.io/v1alpha1",
                        "kind": "ServiceExport",
                        "metadata": {"name": "web", "namespace": "default"},
                    }
                )
                await asyncio.sleep(0.5)  # the controller runs without the Gateway API CRDs
                install_gateway_api(us)
                for obj in _objects(backend_port):
                    us.add(obj, validate=True)

                for _ in range(200):
                    if await a_records(dns_port, "web.example.com") == {"192.0.2.80"}:
                        break
                    await asyncio.sleep(0.05)
                assert await a_records(dns_port, "web.example.com") == {"192.0.2.80"}

                async def served() -> int:
                    url = f"http://127.0.0.1:{proxy_port}/app/hello?x=1"
                    async with http.get(url, headers={"Host": "web.example.com"}) as resp:
                        return resp.status

                for _ in range(100):
                    if await served() == 200:
                        break
                    await asyncio.sleep(0.05)
                assert await served() == 200
                assert seen[-1] == "web.example.com/hello?x=1"

                def accepted() -> bool:
                    st = (us.get("httproutes", "web", "default") or {}).get("status") or {}
                    return any(
                        c.get("type") == "Accepted" and c.get("status") == "True"
                        for p in st.get("parents") or []
                        for c in p.get("conditions") or []
                    )

                await eventually(accepted, what="HTTPRoute Accepted written back")
                await eventually(
                    lambda: "addresses" in (us.get("gateways", "global", "default") or {}).get("status", {}),
                    what="Gateway status written back",
                )
                await eventually(
                    lambda: "status" in (us.get("serviceexports", "web", "default") or {}),
                    what="ServiceExport condition written back",
                )
                gw = us.get("gateways", "global", "default")["status"]
                assert gw["addresses"] == [{"type": "IPAddress", "value": "192.0.2.80"}]
                export = us.get("serviceexports", "web", "default")["status"]["conditions"]
                assert [(c["type"], c["status"]) for c in export] == [("Valid", "True")]
    finally:
        await runner.cleanup()
