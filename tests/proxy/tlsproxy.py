"""A proxy with its HTTPS listener over loopback, certificates from a local CA in a directory."""

from __future__ import annotations

import contextlib
import datetime
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ingressfed.proxy.server import ProxyServer
from ingressfed.tls.authority import Issued, LocalAuthority
from ingressfed.tls.settings import TlsSettings
from tests.fakes.tools import tool
from tests.proxy.conftest import BackendServer, routes_for, running_proxy

HOST = "app.example.com"


@dataclass
class HttpsProxy:
    proxy: ProxyServer
    ca: LocalAuthority
    certs: Path
    ca_file: Path

    @property
    def port(self) -> int:
        assert self.proxy.https is not None
        return self.proxy.https.port

    def install(self, name: str, issued: Issued) -> None:
        """Write a pair as the directory source expects it (key first, so a reader never sees a
        new certificate with the old key)."""
        (self.certs / f"{name}.key").write_bytes(issued.key_pem)
        (self.certs / f"{name}.crt").write_bytes(issued.cert_pem)

    def reload(self) -> None:
        https = self.proxy.https
        assert https is not None and https.source is not None
        https.source.load()
        https.catalog.refresh(datetime.datetime.now(datetime.UTC))

    def client_context(self, *, alpn: list[str] | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        if alpn:
            ctx.set_alpn_protocols(alpn)
        return ctx

    def curl(self, *args: str, host: str = HOST) -> list[str]:
        return [
            tool("curl"),
            "-sS",
            "--max-time",
            "20",
            "--cacert",
            str(self.ca_file),
            "--resolve",
            f"{host}:{self.port}:127.0.0.1",
            *args,
        ]

    def url(self, path: str = "/", host: str = HOST) -> str:
        return f"https://{host}:{self.port}{path}"


@contextlib.asynccontextmanager
async def https_proxy(
    servers: dict[str, BackendServer],
    tmp_path: Path,
    *,
    hosts: tuple[str, ...] = (HOST,),
    proxy: dict[str, Any] | None = None,
    **tls: Any,
) -> AsyncIterator[HttpsProxy]:
    """``proxy``: ProxySettings overrides (timeouts, limits); the rest are TlsSettings fields."""
    ca = LocalAuthority()
    certs = tmp_path / "certs"
    certs.mkdir()
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.ca_pem)
    for host in hosts:
        name = host.replace("*", "wildcard")
        (certs / f"{name}.key").write_bytes((issued := ca.issue(host)).key_pem)
        (certs / f"{name}.crt").write_bytes(issued.cert_pem)
    settings = replace(TlsSettings(host="127.0.0.1", port=0, certificate_dir=str(certs)), **tls)
    routes = [routes_for(h, servers) for h in ("app.example.com", "shop.example.com", "localhost")]
    async with running_proxy(servers, routes=routes, tls=settings, **(proxy or {})) as server:
        yield HttpsProxy(server, ca, certs, ca_file)
