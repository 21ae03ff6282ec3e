"""`ingressfed run` with a member cluster: an Ingress's spec.tls Secret is served by the in-process
proxy's HTTPS listener; a bad Secret leaves a Warning Event on the Ingress."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from ingressfed.app import start
from ingressfed.config import load_config
from ingressfed.tls.authority import LocalAuthority
from tests.fakes.kube.server import FakeKubeAPI
from tests.fakes.ports import free_port
from tests.kube.conftest import eventually, node
from tests.kube.test_tls_secrets import secret
from tests.test_run_kubernetes import base_config, write_config


def ingress(name: str, host: str, secret_name: str) -> dict[str, object]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "annotations": {"federation.ingressfed.io/enabled": "true"},
        },
        "spec": {"rules": [{"host": host}], "tls": [{"hosts": [host], "secretName": secret_name}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}},
    }


async def served_names(port: int, host: str, ca: Path) -> list[str] | None:
    from cryptography import x509

    ctx = ssl.create_default_context(cafile=str(ca))
    try:
        # Bounded: a handshake that stalls (a listener starting or closing) is one failed try, not
        # asyncio's 60 s default per try inside the callers' retry loops.
        _, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=host), timeout=5
        )
    except (ssl.SSLError, ConnectionError, TimeoutError):
        return None
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    san = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return list(san.value.get_values_for_type(x509.DNSName))


async def test_an_ingress_tls_secret_is_served_and_a_bad_one_reported(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    ca = LocalAuthority()
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.ca_pem)
    https_port = free_port()
    async with FakeKubeAPI() as us:
        us.write_kubeconfig(kubeconfig, context="us")
        us.add(node("n1", "us-east1", "us-east1-b"))
        us.add(secret("shop-tls", ca.issue("shop.example.com")))
        one, other = ca.issue("blog.example.com"), ca.issue("blog.example.com")
        us.add(secret("blog-tls", type(one)(one.cert_pem, other.key_pem)))
        doc = base_config(tmp_path, free_port())
        doc["clusters"] = [{"name": "us", "kubeconfig": {"path": str(kubeconfig), "context": "us"}}]
        doc["proxy"] = {
            "enabled": True,
            "listen": f"127.0.0.1:{free_port()}",
            "adminListen": f"127.0.0.1:{free_port()}",
            "tls": {"listen": f"127.0.0.1:{https_port}"},
        }
        config = load_config(write_config(tmp_path, doc))
        async with start(config):
            us.add(ingress("shop", "shop.example.com", "shop-tls"))
            us.add(ingress("blog", "blog.example.com", "blog-tls"))
            names: list[str] | None = None

            async def poll() -> None:
                nonlocal names
                for _ in range(200):
                    names = await served_names(https_port, "shop.example.com", ca_file)
                    if names:
                        return
                    await asyncio.sleep(0.05)

            await poll()
            assert names == ["shop.example.com"]
            await eventually(
                lambda: any(e["reason"] == "InvalidTLSSecret" for e in us.objects("events", "shop"))
            )
            ours = [e for e in us.objects("events", "shop") if e["reason"] == "InvalidTLSSecret"]
            assert [(e["involvedObject"]["name"], "KeyMismatch" in e["message"]) for e in ours] == [
                ("blog", True)
            ]
            assert await served_names(https_port, "blog.example.com", ca_file) is None
